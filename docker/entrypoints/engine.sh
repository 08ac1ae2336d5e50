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
#   ENGINE_PYTHON       the engine's Python, used when memsoak-run is not on PATH but memsoak/profiler/ is
#                       importable (mounted on PYTHONPATH): `python3 -m memsoak.profiler.run` (default python3)
#   DATABASE_URL, DEMO_*  read by the demo engine itself
set -eu
. "$(dirname "$0")/_common.sh"
drop_empty_settings

engine_python=${ENGINE_PYTHON:-python3}
if command -v memsoak-run >/dev/null 2>&1; then
  run=memsoak-run
elif "$engine_python" -c 'import memsoak.profiler.run' >/dev/null 2>&1; then
  run="$engine_python -m memsoak.profiler.run"  # memsoak/profiler/ mounted and on PYTHONPATH, not pip-installed
else
  die "memsoak-run not found and memsoak/profiler/ not importable by $engine_python: install memsoak's profiler into this image or mount it on PYTHONPATH (see docs/docker.md)"
fi

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
echo "memsoak entrypoint: $run $*" >&2
# $run is deliberately unquoted: "python3 -m memsoak.profiler.run" is three words.
exec $run "$@"
