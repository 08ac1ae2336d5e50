#!/bin/sh
# Locust master with memsoak's plugin: the web UI (default) or, with LOCUST_HEADLESS=true, a
# headless distributed soak that waits for LOCUST_EXPECT_WORKERS workers. The master alone polls
# the hook and writes the run directory. Configured only by environment variables; Locust reads
# its own LOCUST_* ones and the plugin its MEMSOAK_* ones:
#
#   LOCUST_HOST          the engine's base URL, e.g. http://engine:8000 (required)
#   MEMSOAK_HOOK_URL     the hook's base URL, e.g. http://engine:9477 (required)
#   MEMSOAK_HOOK_TOKEN   the hook's bearer token
#   MASTER_HEADLESS      "true": no web UI; start at once, run SOAK_DURATION, write the report, exit
#   SOAK_DURATION        (headless) how long, in Locust's format: 30m, 4h, 24h
#   SOAK_WORKERS         (headless) how many workers to wait for before starting (default 1)
#   LOCUST_WEB_HOST/PORT, LOCUST_MASTER_BIND_HOST/PORT, LOCUST_USERS, LOCUST_SPAWN_RATE,
#   LOCUST_LOCUSTFILE: as Locust documents them
set -eu
. "$(dirname "$0")/_common.sh"
drop_empty_settings

need_cmd locust "run this in memsoak's Locust image or pip install memsoak"
need LOCUST_HOST "the engine's base URL"
need MEMSOAK_HOOK_URL "the hook's base URL"
default_locustfile
check_results_dir

if [ "${MASTER_HEADLESS:-false}" = true ]; then
  need SOAK_DURATION "how long the headless soak runs, e.g. 30m or 24h"
  set -- --headless --run-time "$SOAK_DURATION" --expect-workers "${SOAK_WORKERS:-1}" "$@"
fi
exec locust --master "$@"
