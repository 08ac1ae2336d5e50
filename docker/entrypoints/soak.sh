#!/bin/sh
# A headless soak in one process (Locust's local runner): SOAK_DURATION of load, then the report,
# then an exit code that says pass / leak / RSS limit / engine lost (docs/CONTRACTS.md). The run
# directory lands in MEMSOAK_RESULTS_DIR, which compose mounts from the host's ./results.
# For more load than one process makes, use the headless master with workers (docs/docker.md).
#
#   SOAK_DURATION        how long to load the engine, in Locust's format: 30m, 4h, 24h (required)
#   LOCUST_USERS, LOCUST_SPAWN_RATE   how many chat users, how fast they start
#   LOCUST_HOST, MEMSOAK_HOOK_URL, MEMSOAK_HOOK_TOKEN: as for the master
set -eu
. "$(dirname "$0")/_common.sh"
drop_empty_settings

need_cmd locust "run this in memsoak's Locust image or pip install memsoak"
need LOCUST_HOST "the engine's base URL"
need MEMSOAK_HOOK_URL "the hook's base URL"
need SOAK_DURATION "how long the soak runs, e.g. 30m or 24h"
default_locustfile
check_results_dir

exec locust --headless --run-time "$SOAK_DURATION" "$@"
