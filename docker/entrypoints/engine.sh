#!/bin/sh
# Starts the engine under memsoak's hook: `memsoak-run -- ENGINE_COMMAND`. Configured only by
# environment variables, so compose, a plain `docker run` and the native tests run this same file.
#
#   ENGINE_COMMAND      the engine's command line (default: the demo engine on ENGINE_HOST:ENGINE_PORT);
#                       for a real engine e.g. "uvicorn app:app --host 0.0.0.0 --port 8000"
#   ENGINE_HOST/PORT    where the demo engine listens (default 0.0.0.0:8000)
#   MEMSOAK_HOOK_HOST   where the hook listens (default 127.0.0.1; in compose 0.0.0.0)
#   MEMSOAK_HOOK_PORT   default 9477
#   MEMSOAK_HOOK_TOKEN  required whenever the hook listens beyond loopback
#   MEMSOAK_RUN_ARGS    extra memsoak-run options, e.g. "--memray"
#   DATABASE_URL, DEMO_*  read by the demo engine itself
set -eu
. "$(dirname "$0")/_common.sh"

need_cmd memsoak-run "install memsoak's profiler into this image (pip install memsoak, see docs/docker.md)"

hook_host=${MEMSOAK_HOOK_HOST:-127.0.0.1}
case "$hook_host" in
  127.*|localhost|::1) ;;
  *) need MEMSOAK_HOOK_TOKEN "the hook listens on $hook_host, beyond loopback, so it needs a token" ;;
esac

if [ -z "${ENGINE_COMMAND:-}" ]; then
  need_cmd memsoak-demo-engine "set ENGINE_COMMAND to your engine's command line, or install memsoak's demo engine"
  ENGINE_COMMAND="memsoak-demo-engine --host ${ENGINE_HOST:-0.0.0.0} --port ${ENGINE_PORT:-8000}"
fi

# Word-split both settings with shell quoting rules, so "uvicorn app:app --log-config 'my file.ini'"
# reaches the engine as the user wrote it. The hook's host, port and token travel as environment
# variables, not flags: a token on a command line shows up in `ps` and in /health's cmdline.
eval "set -- ${MEMSOAK_RUN_ARGS:-} -- $ENGINE_COMMAND"
export MEMSOAK_HOOK_HOST="$hook_host"
echo "memsoak entrypoint: memsoak-run $*" >&2
exec memsoak-run "$@"
