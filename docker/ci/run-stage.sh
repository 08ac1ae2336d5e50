#!/usr/bin/env bash
# CI's Docker stage (.ci/run): build and run the compose stack for real on this machine.
#
#   1. Debian's docker.io, docker-compose (v1) and mmdebstrap; dockerd started by hand if none runs
#   2. stand-in base images from Debian packages (docker/ci/build-bases.sh; no registry here)
#   3. the project's images, timed and sized
#   4. the headless soak (`run --rm soak`, 2 minutes, the leak switched on): exit code 10 and a
#      complete report on the host, owned by HOST_UID
#   5. master + 2 workers headless (docker/headless-soak.sh) with a report that takes 30 s longer
#      to write (docker/ci/slow_report.py): the report is complete and the script's exit code is
#      the master's
#   6. the web UI: no hook token in the page source, a run started from the form (token field
#      blank), the Memory table, JSON and PNG, a report on stop
#   7. the real-engine override on a stand-in engine image (docker/ci/stand-in-engine.Dockerfile)
#   8. everything it started is taken down (containers, networks, volumes, dockerd if it started
#      it); images stay as the build cache for the next run on this machine
#
# Skip it locally with MEMSOAK_SKIP_DOCKER=1 (.ci/run); it always runs when CI=true.
# Needs root (apt-get, dockerd). Every step prints its time; the last line is the stage's total.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
stage_started=$(date +%s)
export DOCKER=/usr/bin/docker            # Debian's client, matching Debian's dockerd
export COMPOSE=/usr/bin/docker-compose   # v1: what Debian ships; v2 takes the same arguments
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
# the soak's exit code for a leak, read from the contract (memsoak/contract.py, stdlib only)
LEAK=$(PYTHONPATH="$repo" python3 -c 'from memsoak.contract import EXIT_CODES, LEAK; print(EXIT_CODES[LEAK])')

step_started=$stage_started
step() {
  local now
  now=$(date +%s)
  echo "== docker stage: $* (previous step $(( now - step_started )) s, stage at $(( now - stage_started )) s)"
  step_started=$now
}
fail() { echo "docker stage FAILED: $*" >&2; exit 1; }

step "system packages"
need=0
for tool in /usr/sbin/dockerd /usr/bin/docker-compose /usr/bin/mmdebstrap; do [ -x "$tool" ] || need=1; done
if [ "$need" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io docker-compose mmdebstrap >/dev/null
fi
"$DOCKER" --version
"$COMPOSE" version --short

work=$(mktemp -d /tmp/memsoak-docker-ci.XXXXXX)
project=memsoakci$$
started_dockerd=
files=(-f docker-compose.yml)
compose() { "$COMPOSE" -p "$project" --env-file "$work/env" "${files[@]}" "$@"; }
teardown() {
  local status=$?
  set +e
  echo "== docker stage: teardown"
  if [ -f "$work/env" ]; then
    for f in "-f docker-compose.yml" "-f docker-compose.yml -f docker-compose.real-engine.yml"; do
      # shellcheck disable=SC2086
      "$COMPOSE" -p "$project" --env-file "$work/env" $f --profile soak down -v --remove-orphans >/dev/null 2>&1
    done
  fi
  leftover=$("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$project" 2>/dev/null)
  # shellcheck disable=SC2086  # one id per word
  [ -z "$leftover" ] || "$DOCKER" rm -f $leftover >/dev/null 2>&1
  if [ -n "$started_dockerd" ]; then
    kill "$started_dockerd" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 1; done
  fi
  rm -rf "$work"
  echo "== docker stage took $(( $(date +%s) - stage_started )) s, exit $status"
}
trap teardown EXIT

step "Docker engine"
if ! "$DOCKER" info >/dev/null 2>&1; then
  # No systemd here: start dockerd by hand, as a user of this machine would.
  /usr/sbin/dockerd --storage-driver=overlay2 >"$work/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
  "$DOCKER" info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log"; fail "dockerd did not start"; }
fi
"$DOCKER" info --format 'engine {{.ServerVersion}}, storage {{.Driver}}, cgroup {{.CgroupVersion}}'

step "stand-in base images (docker/ci/build-bases.sh)"
bash docker/ci/build-bases.sh

step "settings (.env.example + CI overrides)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(18))'; }
mkdir -p "$work/results"
chown 1000:1000 "$work/results"
hook_token=$(secret)
ui_port=$(free_port)
{
  cat .env.example
  echo "# --- CI overrides (docker/ci/run-stage.sh) ---"
  echo "POSTGRES_PASSWORD=$(secret)"
  echo "MEMSOAK_HOOK_TOKEN=$hook_token"
  echo "ENGINE_API_KEY=$(secret)"
  echo "GRAFANA_ADMIN_PASSWORD=$(secret)"
  echo "MEMSOAK_IMAGE_TAG=ci"
  echo "PYTHON_IMAGE=memsoak-ci/python:3.11-slim"
  echo "LOCUST_IMAGE=memsoak-ci/locust:2.47.0"
  echo "POSTGRES_IMAGE=memsoak-ci/postgres:16-alpine"
  echo "RESULTS_DIR=$work/results"
  echo "HOST_UID=1000"
  echo "HOST_GID=1000"
  echo "LOCUST_WEB_PUBLISH=127.0.0.1:$ui_port"
  echo "ENGINE_PUBLISH=127.0.0.1:$(free_port)"
  echo "HOOK_PUBLISH=127.0.0.1:$(free_port)"
  echo "LOCUST_USERS=10"
  echo "LOCUST_SPAWN_RATE=5"
} > "$work/env"
chmod 600 "$work/env"

step "build the project's images"
for service_image in engine=memsoak-engine:ci locust-master=memsoak-locust:ci; do
  service=${service_image%%=*} image=${service_image#*=}
  t=$(date +%s)
  compose build -q "$service" || fail "docker-compose build $service"
  size=$("$DOCKER" image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}')
  echo "built $image in $(( $(date +%s) - t )) s, $size"
done

# The newest run directory's name, and a check that a run directory holds a complete report.
newest_run() { find "$work/results" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %f\n' | sort -n | tail -n 1 | cut -d" " -f2; }
run_count() { find "$work/results" -mindepth 1 -maxdepth 1 -type d | wc -l; }
check_report() {  # check_report RUN_DIR EXPECTED_EXIT_CODE
  local dir=$work/results/$1 expected=$2 file
  for file in run.json series.jsonl events.jsonl requests.json report.json report.html summary.md junit.xml; do
    [ -s "$dir/$file" ] || fail "$dir/$file missing or empty"
  done
  owner=$(stat -c %u:%g "$dir/report.html")
  [ "$owner" = 1000:1000 ] || fail "$dir/report.html owned by $owner, not HOST_UID:HOST_GID 1000:1000"
  reported=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["exit_code"])' "$dir/report.json")
  [ "$reported" = "$expected" ] || fail "$dir/report.json says exit code $reported, the container exited $expected"
  echo "report: $dir (report.json exit_code $reported, files owned by $owner)"
}

step "master + 2 workers headless, report delayed 30 s (docker/headless-soak.sh)"
# The engine and PostgreSQL started here stay up for the next steps (a down/up costs ~30 s each).
before=$(run_count)
files=(-f docker-compose.yml -f docker/ci/compose.slow-report.yml)
set +e
SOAK_DURATION=40s SOAK_WORKERS=2 RESULTS_DIR="$work/results" KEEP_STACK=true \
  docker/headless-soak.sh -p "$project" --env-file "$work/env" "${files[@]}" > "$work/master.log" 2>&1
code=$?
set -e
files=(-f docker-compose.yml)
tail -n 15 "$work/master.log"
echo "headless-soak.sh exit code: $code"
[ "$(run_count)" = $((before + 1)) ] || fail "expected exactly one new run directory"
run=$(newest_run)
check_report "$run" "$code"
case $code in 0|"$LEAK") ;; *) fail "the master exited $code: not a verdict (0 pass, $LEAK leak)";; esac
grep -q "^memsoak $run: " "$work/master.log" || fail "the verdict line did not reach the terminal"
python3 - "$work/results/$run" <<'PY' || fail "the master's report is incomplete"
import json, sys, pathlib
run = pathlib.Path(sys.argv[1])
meta = json.loads((run / "run.json").read_text())
assert meta["runner"] == "MasterRunner", meta["runner"]
requests = json.loads((run / "requests.json").read_text())
total = sum(r.get("num_requests", 0) for r in requests) if isinstance(requests, list) else \
    sum(r.get("num_requests", 0) for r in requests.get("rows", requests.get("requests", [])))
assert total > 0, "no requests reached the master"
stop = [json.loads(l) for l in (run / "events.jsonl").read_text().splitlines() if '"stop"' in l]
assert stop, "no stop event"
age = (run / "report.html").stat().st_mtime - (run / "events.jsonl").stat().st_mtime
assert age >= 29, f"report written {age:.0f} s after the stop event: the 30 s delay was not active"
print(f"master report complete: {total} requests from the workers, report written {age:.0f} s after the stop")
PY

compose rm -fs locust-master locust-worker >/dev/null 2>&1

step "web UI: page source, start from the form, Memory tab, report on stop"
MASTER_HEADLESS=false compose up -d --scale locust-worker=2 locust-master locust-worker >/dev/null 2>&1 \
  || fail "compose up (web UI)"
ui=http://127.0.0.1:$ui_port
for _ in $(seq 1 90); do curl -fsS -o "$work/page.html" "$ui/" 2>/dev/null && break; sleep 2; done
[ -s "$work/page.html" ] || fail "the web UI did not answer on $ui"
if grep -qF "$hook_token" "$work/page.html"; then fail "the hook token is in the web UI's page source"; fi
grep -q '"hook_token"' "$work/page.html" || fail "the page has no hook_token field at all (is the plugin loaded?)"
before=$(run_count)
n=0
for _ in $(seq 1 45); do  # both workers connected
  n=$(curl -fsS "$ui/stats/requests" 2>/dev/null \
      | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("workers") or []))' 2>/dev/null || echo 0)
  [ "$n" -ge 2 ] && break
  sleep 2
done
[ "$n" -ge 2 ] || fail "$n of 2 workers connected to the master"
curl -fsS -X POST -d "user_count=6&spawn_rate=3&host=http://engine:8000&hook_token=" "$ui/swarm" > "$work/swarm.json"
grep -q '"success": true' "$work/swarm.json" || fail "starting from the form: $(cat "$work/swarm.json")"
sleep 15
curl -fsS "$ui/memsoak/memory.json" > "$work/memory.json"
python3 - "$work/memory.json" <<'PY' || fail "the Memory table has no live RSS"
import json, sys
rows = {r["signal"]: r["value"] for r in json.load(open(sys.argv[1]))}
assert rows["Engine RSS"].endswith("MB"), rows
print("Memory tab:", ", ".join(f"{k} {v}" for k, v in list(rows.items())[:6]))
PY
curl -fsS "$ui/memsoak/memory.png" -o "$work/memory.png"
[ "$(head -c 4 "$work/memory.png" | tail -c 3)" = PNG ] || fail "memory.png is not a PNG"
curl -fsS "$ui/stats/requests" | grep -q memsoak_memory || fail "/stats/requests has no Memory table"
curl -fsS -X POST "$ui/stop" >/dev/null
for _ in $(seq 1 60); do
  run=$(newest_run)
  [ "$(run_count)" -gt "$before" ] && [ -s "$work/results/$run/report.html" ] && break
  sleep 2
done
[ "$(run_count)" -gt "$before" ] || fail "starting from the web UI made no run directory"
[ -s "$work/results/$run/report.html" ] || fail "no report after stopping from the web UI"
python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["health"]; assert h, "no hook health: the blank token field was sent"' \
  "$work/results/$run/run.json" || fail "the run started from the form did not reach the hook"
echo "web UI run: $work/results/$run (report on stop; token kept from the configuration)"
compose rm -fs locust-master locust-worker >/dev/null 2>&1

step "headless soak: docker-compose run --rm soak, 2 minutes, DEMO_LEAKS=session_state"
# The documented one-line switch plants the demo engine's leak, so the soak has a known answer.
echo "DEMO_LEAKS=session_state" >> "$work/env"
compose up -d engine >/dev/null 2>&1 || fail "restarting the engine with DEMO_LEAKS=session_state"
set +e
SOAK_DURATION=2m compose run --rm soak > "$work/soak.log" 2>&1
code=$?
set -e
tail -n 15 "$work/soak.log"
echo "soak exit code: $code"
run=$(newest_run)
[ -n "$run" ] || fail "the soak left no run directory in $work/results"
check_report "$run" "$code"
[ "$code" = "$LEAK" ] || fail "the soak with the planted leak exited $code, expected $LEAK (leak)"
grep -q "^memsoak $run: LEAK" "$work/soak.log" || fail "the verdict line did not reach the terminal"
sed -i '$d' "$work/env"  # back to the clean default

step "real-engine override with a stand-in engine image"
t=$(date +%s)
"$DOCKER" build -q --build-arg PYTHON_IMAGE=memsoak-ci/python:3.11-slim -t memsoak-ci/stand-in-engine:latest \
  -f docker/ci/stand-in-engine.Dockerfile . >/dev/null || fail "building the stand-in engine image"
{
  echo "ENGINE_IMAGE=memsoak-ci/stand-in-engine:latest"
  echo "ENGINE_COMMAND=python -m demo_engine --host 0.0.0.0 --port 8000"
  echo "ENGINE_USER=1000"
  echo "ENGINE_PYTHON=python3"
} >> "$work/env"
files=(-f docker-compose.yml -f docker-compose.real-engine.yml)
compose build -q engine || fail "building docker/real-engine/Dockerfile FROM the stand-in engine"
echo "real-engine images built in $(( $(date +%s) - t )) s" \
  "($("$DOCKER" image inspect -f '{{.Size}}' memsoak-real-engine:ci | awk '{printf "%d MB", $1/1e6}'))"
set +e
compose up -d engine >/dev/null 2>&1 || fail "starting the real-engine override's engine"
SOAK_DURATION=40s compose run --rm soak > "$work/real.log" 2>&1
code=$?
set -e
tail -n 12 "$work/real.log"
run=$(newest_run)
check_report "$run" "$code"
case $code in 0|"$LEAK") ;; *) fail "the soak on the real-engine override exited $code: not a verdict";; esac
python3 - "$work/results/$run/run.json" <<'PY' || fail "the hook did not run the stand-in engine's command"
import json, sys
health = json.load(open(sys.argv[1]))["health"]
text = json.dumps(health)
assert "demo_engine" in text, text[:300]
print("real-engine override: hook ran the engine's own command:", "demo_engine" in text)
PY
compose down -v >/dev/null 2>&1
files=(-f docker-compose.yml)
step "done"
