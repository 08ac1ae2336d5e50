# Shared by the entrypoints (sourced, POSIX sh). Errors are one line naming the fix, never a trace.

die() {
  echo "memsoak entrypoint: $*" >&2
  exit 13  # bad_config (memsoak/contract.py; tests/memsoak/test_contract.py holds it equal)
}

need() {  # need VAR "what it is": fail early when a required setting is empty
  eval "value=\${$1:-}"
  [ -n "$value" ] || die "$1 is not set: $2 (see .env.example)"
}

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH: $2"
}

# The directory `locust -f` loads: memsoak's installed memsoak/locustfiles/ package unless
# LOCUST_LOCUSTFILE says otherwise (a comma list of files/directories, as Locust takes it).
default_locustfile() {
  if [ -z "${LOCUST_LOCUSTFILE:-}" ]; then
    LOCUST_LOCUSTFILE=$(python -c 'from memsoak import locustfiles; import os; print(os.path.dirname(locustfiles.__file__))' 2>/dev/null) \
      || die "the locustfiles package is not importable: pip install memsoak into this image, or set LOCUST_LOCUSTFILE"
  fi
  export LOCUST_LOCUSTFILE
}

# The run directory's parent must be writable by this (non-root) user, or a 24-hour soak would
# only fail at its first write.
check_results_dir() {
  dir=${MEMSOAK_RESULTS_DIR:-results}
  mkdir -p "$dir" 2>/dev/null || die "cannot create results directory '$dir' as uid $(id -u): create it on the host (mkdir -p results) and make it writable by uid $(id -u), or set HOST_UID in .env"
  [ -w "$dir" ] || die "results directory '$dir' is not writable by uid $(id -u): chmod it on the host or set HOST_UID/HOST_GID in .env to your own ids"
}

# Compose passes every optional setting as ${NAME:-}, so one left blank in .env arrives as an empty
# string; to Locust and the hook an empty string is a value ("" is not a number), not "use the
# default". Dropping the empty ones keeps a single source of defaults: memsoak's own.
drop_empty_settings() {
  for name in $(env | sed -nE 's/^((MEMSOAK|LOCUST|DEMO)_[A-Za-z0-9_]*)=$/\1/p'); do
    unset "$name"
  done
}
