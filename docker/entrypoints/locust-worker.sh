#!/bin/sh
# One Locust worker: runs the chat users and reports its stats to the master every few seconds.
# Workers never talk to the hook and write nothing to the run directory. Scale them with
# `docker compose up --scale locust-worker=N`. Configured only by environment variables:
#
#   LOCUST_MASTER_NODE_HOST  the master's address (default locust-master)
#   LOCUST_MASTER_NODE_PORT  default 5557
#   LOCUST_HOST              the engine's base URL (the master also sends it with each spawn)
#   LOCUST_LOCUSTFILE        must load the same user classes as the master (default: memsoak's)
set -eu
. "$(dirname "$0")/_common.sh"
drop_empty_settings

need_cmd locust "run this in memsoak's Locust image or pip install memsoak"
export LOCUST_MASTER_NODE_HOST="${LOCUST_MASTER_NODE_HOST:-locust-master}"
default_locustfile

exec locust --worker "$@"
