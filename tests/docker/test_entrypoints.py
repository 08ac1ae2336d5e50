"""The compose stack's entrypoint scripts, run natively on loopback: the stand-in for `docker compose`.

No Docker engine here, so the very scripts the images run (docker/entrypoints/*.sh) are started as
plain processes with the environment compose would give them: a real PostgreSQL, the demo engine
under the hook with a token, a headless Locust master and TWO workers as separate processes. The
run must yield one run directory whose requests.json adds up to what the workers themselves counted
(tests/docker/request_counter_locustfile.py counts on each worker), a report, and hook metrics that
the Grafana dashboard can graph. The headless `soak` script runs too, as a local runner, and the
master in web UI mode (`docker compose up`) runs a test started and stopped from the UI.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "docker" / "entrypoints"
COUNTER = Path(__file__).with_name("request_counter_locustfile.py")
# Several worker stats reports (every 3 s) and hook polls; the counts asserted need no more.
RUN_TIME_S = 12
BAD_CONFIG = 13
# A short demo soak may pass, leak, be inconclusive or too short to judge (18: an 8 s soak has
# ~9 samples); never RSS limit, engine lost, bad configuration, invalid load, interrupted or
# measurement failed (11, 12, 13, 16, 17, 19).
OUTCOME_CODES = {0, 10, 15, 18}


def free_port() -> int:
    # tests/conftest.py's helper is not importable by name from here (conftest modules are not
    # packages); same three lines.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def blank_optional_settings() -> dict[str, str]:
    """Every optional setting compose passes as `${NAME:-}`, blank, as compose does when .env
    leaves it blank: the scripts must treat that as "memsoak's default"."""
    text = (REPO / "docker-compose.yml").read_text()
    return {name: "" for name in re.findall(r"^\s+([A-Z0-9_]+): \$\{[A-Z0-9_]+:-\}\s*$", text, re.M)}


def base_env(**extra: str) -> dict[str, str]:
    """The test's environment minus anything memsoak/Locust would read, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEMSOAK_", "LOCUST_", "DEMO_", "ENGINE_", "SOAK_", "MASTER_"))
           and k != "DATABASE_URL"}
    # The scripts call `python`, `locust`, `memsoak-run`: the ones installed beside this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def start(script: str, env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([str(SCRIPTS / script)], env=env, cwd=cwd, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the process group (the script exec'd into its program), SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (engine workers)
    except ProcessLookupError:
        pass


def http_get(url: str, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, token: str = "", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited {proc.returncode}: {log.read_text()[-2000:]}"
        try:
            if http_get(url, token)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not up after {timeout} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def database_url(postgres_url: str) -> Iterator[str]:
    """A database of its own on the shared test cluster, dropped afterwards."""
    import psycopg

    name = f"memsoak_docker_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def engine(database_url: str, tmp_path_factory) -> Iterator[dict[str, str]]:
    """docker/entrypoints/engine.sh as compose runs it: demo engine under the hook, token, PostgreSQL."""
    work = tmp_path_factory.mktemp("engine")
    token = secrets.token_urlsafe(16)
    settings = {"engine_port": str(free_port()), "hook_port": str(free_port()), "token": token,
                "api_key": secrets.token_urlsafe(8)}
    env = base_env(**blank_optional_settings(), ENGINE_HOST="127.0.0.1", ENGINE_PORT=settings["engine_port"],
                   MEMSOAK_HOOK_HOST="127.0.0.1", MEMSOAK_HOOK_PORT=settings["hook_port"],
                   MEMSOAK_HOOK_TOKEN=token, DATABASE_URL=database_url,
                   DEMO_API_KEY=settings["api_key"], DEMO_API_KEY_HEADER="X-API-Key",
                   DEMO_LLM_LATENCY_MS="5")
    log = work / "engine.log"
    proc = start("engine.sh", env, log, work)
    try:
        wait_until_up(f"http://127.0.0.1:{settings['engine_port']}/api/health", proc, log)
        wait_until_up(f"http://127.0.0.1:{settings['hook_port']}/health", proc, log, token)
        yield {**settings, "log": str(log)}
    finally:
        stop(proc)


def load_env(engine: dict[str, str], results: Path, **extra: str) -> dict[str, str]:
    """What compose's x-load-env gives the master, the workers and the soak."""
    settings = {"LOCUST_HOST": f"http://127.0.0.1:{engine['engine_port']}",
                "MEMSOAK_HOOK_URL": f"http://127.0.0.1:{engine['hook_port']}",
                "MEMSOAK_HOOK_TOKEN": engine["token"], "MEMSOAK_API_KEY": engine["api_key"],
                "MEMSOAK_API_KEY_HEADER": "X-API-Key", "MEMSOAK_RESULTS_DIR": str(results),
                "LOCUST_USERS": "6", "LOCUST_SPAWN_RATE": "6",
                # Shared 2-core machines stall processes for seconds: be generous before calling
                # the engine lost (a waiting margin; nothing asserted depends on it).
                "MEMSOAK_ENGINE_LOST_POLLS": "30"}
    return base_env(**{**blank_optional_settings(), **settings, **extra})


def test_engine_runs_the_demo_on_postgresql_behind_a_token(engine: dict[str, str]) -> None:
    status, body = http_get(f"http://127.0.0.1:{engine['engine_port']}/api/health")
    assert status == 200 and json.loads(body)["storage"] == "postgresql"
    hook = f"http://127.0.0.1:{engine['hook_port']}"
    assert http_get(f"{hook}/health")[0] == 401
    status, body = http_get(f"{hook}/health", engine["token"])
    assert status == 200 and json.loads(body)["config"]["token"] is True


def test_dashboard_metrics_are_all_in_the_live_hooks_metrics(engine: dict[str, str]) -> None:
    dashboard = json.loads((REPO / "docker/grafana/dashboards/memsoak.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\b((?:process|memsoak|python)_[a-z_]+)\b", target["expr"])}
    # tracemalloc's gauge appears only while tracing, asyncio's once the hook has seen the engine's
    # loop (a sample or two after start): poll a bounded while for everything else.
    missing: set[str] = queried
    deadline = time.monotonic() + 30
    while missing and time.monotonic() < deadline:
        status, body = http_get(f"http://127.0.0.1:{engine['hook_port']}/metrics", engine["token"])
        assert status == 200
        exposed = {line.split("{")[0].split()[0] for line in body.decode().splitlines()
                   if line and not line.startswith("#")}
        missing = queried - exposed - {"memsoak_tracemalloc_traced_bytes"}
        time.sleep(0.5)
    assert not missing, f"the dashboard graphs metrics the hook does not export: {missing}"


def prometheus_scrapes(engine: dict[str, str], tmp_path: Path) -> None:
    web = f"127.0.0.1:{free_port()}"
    env = base_env(MEMSOAK_HOOK_TARGET=f"127.0.0.1:{engine['hook_port']}", MEMSOAK_HOOK_TOKEN=engine["token"],
                   PROMETHEUS_RUNTIME_DIR=str(tmp_path / "run"), PROMETHEUS_DATA=str(tmp_path / "data"),
                   PROMETHEUS_LISTEN=web)
    log = tmp_path / "prometheus.log"
    proc = start("prometheus.sh", env, log, tmp_path)
    query = f"http://{web}/api/v1/query?query=" + "process_resident_memory_bytes%7Bjob%3D%22memsoak-hook%22%7D"
    result: list = []
    try:
        deadline = time.monotonic() + 90
        while not result and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                status, body = http_get(query)
                result = json.loads(body)["data"]["result"] if status == 200 else []
            except OSError:
                pass
            time.sleep(1)
        # Every query of the Grafana dashboard must be valid PromQL (results may still be empty).
        dashboard = json.loads((REPO / "docker/grafana/dashboards/memsoak.json").read_text())
        bad = {}
        for target in (t for panel in dashboard["panels"] for t in panel["targets"]):
            status, body = http_get(f"http://{web}/api/v1/query?query=" + urllib.parse.quote(target["expr"]))
            if status != 200 or json.loads(body)["status"] != "success":
                bad[target["expr"]] = body[:200]
    finally:
        stop(proc)
    assert result and float(result[0]["value"][1]) > 0, log.read_text()[-2000:]
    assert not bad, bad
    token_file = tmp_path / "run" / "hook-token"
    assert token_file.read_text() == engine["token"] and token_file.stat().st_mode & 0o077 == 0
    assert engine["token"] not in (tmp_path / "run" / "prometheus.yml").read_text()
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "config", str(tmp_path / "run" / "prometheus.yml")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def master_and_two_workers(engine: dict[str, str], tmp_path: Path) -> None:
    results, counters = tmp_path / "results", tmp_path / "counters"
    counters.mkdir()
    locustfile = f"{REPO / 'memsoak' / 'locustfiles'},{COUNTER}"
    master_port = str(free_port())
    env = load_env(engine, results, LOCUST_LOCUSTFILE=locustfile, MEMSOAK_TEST_COUNTER_DIR=str(counters),
                   LOCUST_MASTER_BIND_HOST="127.0.0.1", LOCUST_MASTER_BIND_PORT=master_port,
                   LOCUST_MASTER_NODE_HOST="127.0.0.1", LOCUST_MASTER_NODE_PORT=master_port)
    master_log = tmp_path / "master.log"
    master = start("locust-master.sh", {**env, "MASTER_HEADLESS": "true",
                                        "SOAK_DURATION": f"{RUN_TIME_S}s", "SOAK_WORKERS": "2"},
                   master_log, tmp_path)
    workers = [start("locust-worker.sh", env, tmp_path / f"worker{i}.log", tmp_path) for i in (1, 2)]
    try:
        code = master.wait(timeout=RUN_TIME_S + 180)
        for worker in workers:
            worker.wait(timeout=60)
    finally:
        for proc in (master, *workers):
            stop(proc)
    log = master_log.read_text()
    assert code in OUTCOME_CODES, f"master exit {code}: {log[-3000:]}"
    assert [w.returncode for w in workers] == [0, 0], [(tmp_path / f"worker{i}.log").read_text()[-2000:]
                                                       for i in (1, 2)]

    run_dirs = [p for p in results.iterdir() if p.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    run_dir = run_dirs[0]
    master_table = json.loads((run_dir / "requests.json").read_text())
    master_counts = Counter({f"{row['method']} {row['name']}": row["num_requests"] for row in master_table})

    per_worker = [json.loads(p.read_text()) for p in sorted(counters.glob("*.json"))]
    assert len(per_worker) == 2, "both workers must have written their own counts"
    assert len({w["client_id"] for w in per_worker}) == 2
    for worker in per_worker:
        assert sum(worker["requests"].values()) > 0, "a worker that sent nothing: load was not shared"
    worker_counts = sum((Counter(w["requests"]) for w in per_worker), Counter())
    assert sum(master_counts.values()) > 0
    assert master_counts == worker_counts, (master_counts, worker_counts)
    master_failures = sum(row["num_failures"] for row in master_table)
    assert master_failures == sum(sum(w["failures"].values()) for w in per_worker)

    rows = [json.loads(line) for line in (run_dir / "series.jsonl").read_text().splitlines() if line]
    assert rows and all(row["rss_bytes"] for row in rows)
    assert rows[-1]["requests_total"] <= sum(master_counts.values())
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["hook_url"].endswith(f":{engine['hook_port']}")
    assert engine["token"] not in json.dumps(run_json), "the hook token must not be written to run.json"
    report = json.loads((run_dir / "report.json").read_text())
    assert report  # the verdict itself is memsoak/reports/' business; here: one report came out of the stack


def http_post(url: str, form: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def web_ui_master(engine: dict[str, str], tmp_path: Path) -> None:
    """`docker compose up`: the master serves the UI, a worker joins, a run started and stopped
    from the UI leaves its own run directory."""
    results = tmp_path / "results"
    master_port, web_port = str(free_port()), str(free_port())
    env = load_env(engine, results, LOCUST_MASTER_BIND_HOST="127.0.0.1", LOCUST_MASTER_BIND_PORT=master_port,
                   LOCUST_MASTER_NODE_HOST="127.0.0.1", LOCUST_MASTER_NODE_PORT=master_port,
                   LOCUST_WEB_HOST="127.0.0.1", LOCUST_WEB_PORT=web_port, MASTER_HEADLESS="false",
                   LOCUST_LOCUSTFILE=f"{REPO / 'memsoak' / 'locustfiles'},{COUNTER}", MEMSOAK_TEST_COUNTER_DIR=str(tmp_path))
    master_log = tmp_path / "master.log"
    master = start("locust-master.sh", env, master_log, tmp_path)
    worker = start("locust-worker.sh", env, tmp_path / "worker.log", tmp_path)
    web = f"http://127.0.0.1:{web_port}"
    try:
        wait_until_up(f"{web}/", master, master_log)
        stats = lambda: json.loads(http_get(f"{web}/stats/requests")[1])  # noqa: E731
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stats().get("workers"):
            time.sleep(0.5)
        status, body = http_post(f"{web}/swarm", {"user_count": "2", "spawn_rate": "2",
                                                  "host": env["LOCUST_HOST"]})
        assert status == 200 and json.loads(body)["success"], body
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(row["num_requests"] for row in stats()["stats"]):
            time.sleep(0.5)
        assert http_post(f"{web}/stop", {})[0] == 200
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not list(results.glob("*/requests.json")):
            time.sleep(0.5)
    finally:
        stop(master)
        stop(worker)
    (requests_json,) = results.glob("*/requests.json")
    in_report = sum(row["num_requests"] for row in json.loads(requests_json.read_text()))
    (worker_counts,) = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    sent = sum(worker_counts["requests"].values())
    # Not equality: a run stopped from the UI is reported at test_stop, before the workers' last
    # stats report (every 3 s) reaches the master, so the report can miss the last seconds.
    assert 0 < in_report <= sent, (in_report, sent, master_log.read_text()[-3000:])


def headless_soak(engine: dict[str, str], tmp_path: Path) -> None:
    results = tmp_path / "results"
    log = tmp_path / "soak.log"
    proc = start("soak.sh", load_env(engine, results, SOAK_DURATION="8s", LOCUST_USERS="2"), log, tmp_path)
    try:
        code = proc.wait(timeout=180)
    finally:
        stop(proc)
    assert code in OUTCOME_CODES, log.read_text()[-3000:]
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    for name in ("run.json", "series.jsonl", "requests.json", "report.json"):
        assert (run_dir / name).is_file(), f"{name} missing from {sorted(os.listdir(run_dir))}"
    assert json.loads((run_dir / "report.json").read_text())["exit_code"] == code


# The four runs against the engine share nothing but it and mostly wait (run times, scrapes), so
# one module fixture drives them at once and each test reads its own (re-raising its assertion).
RUNS = {"prometheus": prometheus_scrapes, "master_and_workers": master_and_two_workers,
        "web_ui": web_ui_master, "soak": headless_soak}
HAVE_PROMETHEUS = shutil.which("prometheus") is not None


@pytest.fixture(scope="module")
def runs(engine: dict[str, str], tmp_path_factory) -> Iterator[dict[str, Future]]:
    names = [name for name in RUNS if HAVE_PROMETHEUS or name != "prometheus"]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        yield {name: pool.submit(RUNS[name], engine, tmp_path_factory.mktemp(name)) for name in names}


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_PROMETHEUS,
                    reason="no prometheus binary (apt-get install prometheus) for the monitoring profile's script")
def test_prometheus_script_scrapes_the_hook_with_its_token(runs: dict[str, Future]) -> None:
    runs["prometheus"].result(timeout=600)


@pytest.mark.slow
def test_master_and_two_workers_make_one_report_whose_counts_add_up(runs: dict[str, Future]) -> None:
    runs["master_and_workers"].result(timeout=600)


@pytest.mark.slow
def test_web_ui_master_runs_a_test_started_and_stopped_from_the_ui(runs: dict[str, Future]) -> None:
    """`docker compose up`: the master serves the UI, a worker joins, a run started and stopped
    from the UI leaves its own run directory."""
    runs["web_ui"].result(timeout=600)


@pytest.mark.slow
def test_headless_soak_script_leaves_a_run_directory(runs: dict[str, Future]) -> None:
    runs["soak"].result(timeout=600)


def test_engine_script_falls_back_to_a_mounted_profiler(tmp_path: Path) -> None:
    """No memsoak-run on PATH (memsoak/profiler/ mounted into a foreign image): `python3 -m memsoak.profiler.run`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A wrapper, not a symlink: a symlinked venv interpreter in another directory finds no
    # pyvenv.cfg beside it and runs as the base Python, without the venv's packages (psutil).
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    engine_port, hook_port = free_port(), free_port()
    env = base_env(PATH=f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", PYTHONPATH=str(REPO),
                   ENGINE_COMMAND=f"python3 -m memsoak.demo_engine --host 127.0.0.1 --port {engine_port}",
                   MEMSOAK_HOOK_PORT=str(hook_port))
    log = tmp_path / "engine.log"
    proc = start("engine.sh", env, log, tmp_path)
    try:
        wait_until_up(f"http://127.0.0.1:{hook_port}/health", proc, log)
        status, body = http_get(f"http://127.0.0.1:{hook_port}/health")
        assert "memsoak.demo_engine" in " ".join(json.loads(body)["cmdline"])
        wait_until_up(f"http://127.0.0.1:{engine_port}/api/health", proc, log)
    finally:
        stop(proc)
    assert "-m memsoak.profiler.run" in log.read_text()


@pytest.mark.parametrize("script, env, named", [
    ("locust-master.sh", {"MEMSOAK_HOOK_URL": "http://127.0.0.1:1"}, "LOCUST_HOST"),
    ("soak.sh", {"LOCUST_HOST": "http://127.0.0.1:1", "MEMSOAK_HOOK_URL": "http://127.0.0.1:1"},
     "SOAK_DURATION"),
    ("locust-master.sh", {"LOCUST_HOST": "http://127.0.0.1:1", "MEMSOAK_HOOK_URL": "http://127.0.0.1:1",
                          "MASTER_HEADLESS": "true"}, "SOAK_DURATION"),
    ("engine.sh", {"MEMSOAK_HOOK_HOST": "0.0.0.0"}, "MEMSOAK_HOOK_TOKEN"),
    ("prometheus.sh", {"MEMSOAK_HOOK_TARGET": "engine:9477"}, "MEMSOAK_HOOK_TOKEN"),
])
def test_missing_setting_is_one_line_naming_it(script: str, env: dict[str, str], named: str,
                                               tmp_path: Path) -> None:
    result = subprocess.run([str(SCRIPTS / script)], env=base_env(**env), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == BAD_CONFIG, result.stderr
    assert result.stderr.count("\n") == 1 and named in result.stderr and ".env" in result.stderr


def test_unwritable_results_dir_is_refused_before_the_soak(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = base_env(LOCUST_HOST="http://127.0.0.1:1", MEMSOAK_HOOK_URL="http://127.0.0.1:1",
                   SOAK_DURATION="1s", MEMSOAK_RESULTS_DIR=str(blocker / "results"))
    result = subprocess.run([str(SCRIPTS / "soak.sh")], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == BAD_CONFIG and "results" in result.stderr and "HOST_UID" in result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="no shellcheck (apt-get install shellcheck)")
def test_scripts_are_clean_posix_sh() -> None:
    # POSIX sh, not bash: the same scripts run in python:slim, the Locust image, busybox-based
    # prom/prometheus and whatever base a real engine's image has.
    scripts = sorted(str(p) for p in SCRIPTS.glob("*.sh"))
    result = subprocess.run(["shellcheck", "-s", "sh", "-x", *scripts], capture_output=True, text=True,
                            cwd=SCRIPTS)
    assert result.returncode == 0, result.stdout
