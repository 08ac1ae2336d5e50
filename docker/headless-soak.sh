#!/bin/sh
# A headless soak with the Locust master and SOAK_WORKERS workers, which cannot lose its report.
#
#   docker/headless-soak.sh                                   # SOAK_DURATION, SOAK_WORKERS from .env
#   SOAK_DURATION=30m SOAK_WORKERS=4 docker/headless-soak.sh
#   docker/headless-soak.sh -f docker-compose.yml -f docker-compose.real-engine.yml   # any compose options
#
# Why not `docker compose up --exit-code-from locust-master`: that stops every container as soon as
# any one exits, and the workers exit first, while the master is still writing the report, so a
# long soak's report (and its verdict) could be lost. Here the stack runs detached, `docker wait`
# waits for the master itself, the master's last lines (the verdict and the report's path) are
# printed, the stack is taken down (volumes kept), and the master's exit code is this script's:
# 0 pass, 10 leak, 11 RSS limit, 12 engine lost, 13 bad configuration (docs/CONTRACTS.md).
# Ctrl-C stops the master gracefully (it writes the report for what ran) and waits for it.
#
#   COMPOSE   the compose command (default: `docker compose` when available, else `docker-compose`)
#   DOCKER    the docker client (default docker)
#   KEEP_STACK=true   leave the engine and PostgreSQL running afterwards (`docker compose down` later)
set -eu
docker=${DOCKER:-docker}
if [ -z "${COMPOSE:-}" ]; then
  if "$docker" compose version >/dev/null 2>&1; then COMPOSE="$docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then COMPOSE="docker-compose"
  else echo "headless-soak: neither 'docker compose' nor 'docker-compose' found: install Docker Compose" >&2; exit 13  # bad_config
  fi
fi
workers=${SOAK_WORKERS:-}
if [ -z "$workers" ] && [ -f .env ]; then
  workers=$(sed -n 's/^SOAK_WORKERS=//p' .env | tail -n 1)
fi
workers=${workers:-2}
export MASTER_HEADLESS=true SOAK_WORKERS="$workers"

# $COMPOSE is unquoted on purpose: "docker compose" is two words.
# shellcheck disable=SC2086
$COMPOSE "$@" up -d --scale locust-worker="$workers" locust-master locust-worker
# shellcheck disable=SC2086
master=$($COMPOSE "$@" ps -q locust-master)
[ -n "$master" ] || { echo "headless-soak: the locust-master container did not start" >&2; exit 13; }  # bad_config

stopping=
# shellcheck disable=SC2317  # called by the trap
on_interrupt() {
  [ -n "$stopping" ] && return
  stopping=1
  echo "headless-soak: stopping the soak; the master writes the report for what ran (up to its stop_grace_period)" >&2
  "$docker" stop --time 600 "$master" >/dev/null &  # returns at once; `docker wait` below waits
}
trap on_interrupt INT TERM

echo "headless-soak: $workers workers, master $master; waiting for it to write the report (Ctrl-C stops early)"
code=
while [ -z "$code" ]; do
  # `docker wait` is interrupted by Ctrl-C (the trap runs): then wait again for the real exit.
  code=$("$docker" wait "$master" 2>/dev/null) || code=
  if [ -z "$code" ] && [ "$("$docker" inspect -f '{{.State.Running}}' "$master" 2>/dev/null)" = false ]; then
    code=$("$docker" inspect -f '{{.State.ExitCode}}' "$master")
  fi
done
trap - INT TERM

# The master prints the verdict last: "memsoak RUN-ID: OUTCOME (exit N)" ... "memsoak: report PATH".
echo "== the master's verdict (exit code $code)"
verdict=$("$docker" logs --tail 200 "$master" 2>&1 | awk '
  /^memsoak [^ :]+: [A-Z]/ { buf = ""; on = 1 }
  on { buf = buf $0 "\n" }
  /^memsoak: report / { on = 0 }
  END { printf "%s", buf }')
if [ -n "$verdict" ]; then
  printf '%s\n' "$verdict"
  run_dir=$(printf '%s\n' "$verdict" | sed -n 's|^memsoak: report /home/locust/results/\([^/ ]*\).*|\1|p')
  [ -z "$run_dir" ] || echo "memsoak: on the host: ${RESULTS_DIR:-./results}/$run_dir/"
else
  echo "headless-soak: the master printed no verdict; its last lines:" >&2
  "$docker" logs --tail 15 "$master" >&2 2>&1
fi
if [ "${KEEP_STACK:-false}" != true ]; then
  # shellcheck disable=SC2086
  $COMPOSE "$@" down >/dev/null 2>&1 || echo "headless-soak: 'down' failed; run it yourself" >&2
fi
exit "$code"
