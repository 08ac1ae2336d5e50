#!/bin/sh
# Prometheus for the monitoring profile, scraping the hook's /metrics with its bearer token.
# Prometheus cannot read a secret from the environment, so this writes the token to a private
# file and renders the scrape config from docker/prometheus/prometheus.yml.in. Configured only by
# environment variables (runs in the busybox-based prom/prometheus image and natively):
#
#   MEMSOAK_HOOK_TARGET   host:port of the hook (compose: engine:9477)
#   MEMSOAK_HOOK_TOKEN    its bearer token
#   PROMETHEUS_TEMPLATE   the config template (default: beside this script)
#   PROMETHEUS_RUNTIME_DIR where the rendered config and token file go (default /tmp/memsoak-prometheus)
#   PROMETHEUS_DATA       the TSDB directory (default /prometheus)
#   PROMETHEUS_BIN        the prometheus binary (default prometheus)
#   PROMETHEUS_LISTEN     its web address (default 0.0.0.0:9090)
set -eu
. "$(dirname "$0")/_common.sh"

need MEMSOAK_HOOK_TARGET "host:port of the hook, e.g. engine:9477"
need MEMSOAK_HOOK_TOKEN "the hook's bearer token"
template=${PROMETHEUS_TEMPLATE:-$(dirname "$0")/../prometheus/prometheus.yml.in}
[ -r "$template" ] || die "PROMETHEUS_TEMPLATE '$template' is not readable: mount docker/prometheus into the container"
runtime=${PROMETHEUS_RUNTIME_DIR:-/tmp/memsoak-prometheus}
bin=${PROMETHEUS_BIN:-prometheus}
need_cmd "$bin" "run this in the prom/prometheus image or set PROMETHEUS_BIN"

mkdir -p "$runtime"
(umask 077 && printf '%s' "$MEMSOAK_HOOK_TOKEN" > "$runtime/hook-token")
sed -e "s|@HOOK_TARGET@|$MEMSOAK_HOOK_TARGET|" -e "s|@TOKEN_FILE@|$runtime/hook-token|" \
  "$template" > "$runtime/prometheus.yml"

exec "$bin" --config.file="$runtime/prometheus.yml" \
  --storage.tsdb.path="${PROMETHEUS_DATA:-/prometheus}" \
  --web.listen-address="${PROMETHEUS_LISTEN:-0.0.0.0:9090}" "$@"
