"""memsoak-run as a process supervisor: signals, exit status, no orphans, multi-worker uvicorn and
gunicorn (spawned and forked workers)."""
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from hookhelp import ENGINES, MEMSOAK_RUN, free_port, http, port_is_free, start, wait_for


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stop_signal_leaves_no_process_and_frees_the_ports(alloc_engine, signum) -> None:
    members = alloc_engine.tree()
    assert len(members) >= 2  # memsoak-run and the engine
    alloc_engine.proc.send_signal(signum)
    rc = alloc_engine.proc.wait(timeout=30)
    # the engine dies of the forwarded signal (Python re-raises an uncaught SIGINT): 128 + N
    assert rc == 128 + signum
    gone, alive = psutil.wait_procs(members, timeout=10)
    assert not alive
    wait_for(lambda: port_is_free(alloc_engine.hook_port) and port_is_free(alloc_engine.engine_port),
             what="both ports free")


def test_engine_exit_status_is_memsoak_runs(alloc_engine) -> None:
    http(alloc_engine.engine + "/exit?code=3")
    assert alloc_engine.proc.wait(timeout=30) == 3


def test_engine_ignoring_sigterm_is_killed_after_the_grace_period(port: int, tmp_path) -> None:
    script = tmp_path / "stubborn.py"
    ready = tmp_path / "ignoring"
    # The hook answers before the script's first line runs: signal only once SIGTERM is ignored
    # (under load, a SIGTERM sent earlier killed the engine by default and memsoak-run exited 143).
    script.write_text("import pathlib, signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                      "pathlib.Path(sys.argv[1]).touch()\ntime.sleep(120)\n")
    started = start([sys.executable, str(script), str(ready)], port, options=["--grace", "1"])
    wait_for(ready.exists, timeout=60, what="the engine ignoring SIGTERM")
    members = started.tree()
    started.proc.send_signal(signal.SIGTERM)
    assert started.proc.wait(timeout=30) == 128 + signal.SIGKILL
    assert not psutil.wait_procs(members, timeout=10)[1]


def test_command_not_found_and_bad_options_are_one_line_errors() -> None:
    done = subprocess.run([*MEMSOAK_RUN, "--", "no-such-engine-xyz"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 127 and "no-such-engine-xyz" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run(MEMSOAK_RUN, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "-- COMMAND" in done.stderr.splitlines()[-1]


def test_existing_pythonpath_and_sitecustomize_are_kept(port: int, tmp_path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['USER_SITECUSTOMIZE_RAN'] = '1'\n")
    (tmp_path / "userlib.py").write_text("VALUE = 42\n")
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time, userlib
        print("chained", os.environ.get("USER_SITECUSTOMIZE_RAN"), userlib.VALUE, flush=True)
        time.sleep(60)
    """))
    started = start([sys.executable, str(script)], port, env={"PYTHONPATH": str(tmp_path)})
    line = started.proc.stdout.readline().strip()
    assert line == "chained 1 42"
    assert http(started.hook + "/health")[1]["pid"] != started.proc.pid  # the engine, not memsoak-run


@pytest.mark.slow
def test_uvicorn_workers_are_peers_reached_through_the_primary(port: int) -> None:
    app_port = free_port()
    started = start([sys.executable, "-m", "uvicorn", "asgi_app:app", "--app-dir", str(ENGINES),
                     "--host", "127.0.0.1", "--port", str(app_port), "--workers", "2",
                     "--log-level", "warning"], port)
    # uvicorn spawns its workers through multiprocessing, which also starts its resource tracker:
    # a Python process too, so hooked and a peer. Wait for all three, or a worker may be missing.
    health = wait_for(lambda: (lambda h: h if len(h["peers"]) >= 3 else None)(
        http(started.hook + "/health")[1]), timeout=60, what="two worker peers and the resource tracker")
    master = psutil.Process(health["pid"])
    assert {peer["pid"] for peer in health["peers"]} == {child.pid for child in master.children()}
    worker_pids = {peer["pid"] for peer in health["peers"]
                   if "spawn_main" in " ".join(psutil.Process(peer["pid"]).cmdline())}
    assert len(worker_pids) == 2
    for peer in health["peers"]:
        assert port < peer["port"] <= port + 64
    # the primary's tree covers the workers
    sample = wait_for(lambda: (lambda s: s if s["tree_procs"] >= 3 else None)(
        http(started.hook + "/samples?since=0")[1]["samples"][-1]), what="tree of 3")
    assert sample["tree_rss_bytes"] > sample["rss_bytes"]
    # a request served by a worker leaves an asyncio task there, visible through ?pid=
    served_by = int(wait_for(lambda: http(f"http://127.0.0.1:{app_port}/", timeout=5)[1],
                             timeout=60, what="uvicorn serving"))
    assert served_by in worker_pids
    wait_for(lambda: http(started.hook + f"/samples?since=0&pid={served_by}")[1]["samples"][-1]
             ["asyncio_tasks"] >= 1, what="the worker's asyncio task")
    status, snap = http(started.hook + f"/snapshots/one?pid={served_by}", "POST")
    assert status == 200 and (snap["source"] == "sampled" or snap["tracing_started"] is True)
    for peer in health["peers"]:  # each peer also answers on its own port, as itself
        assert http(f"http://127.0.0.1:{peer['port']}/health")[1]["pid"] == peer["pid"]
    assert http(started.hook + "/health?pid=1")[0] == 404
    members = started.tree()
    started.proc.send_signal(signal.SIGTERM)
    assert started.proc.wait(timeout=60) == 0
    assert not psutil.wait_procs(members, timeout=10)[1]
    for peer in health["peers"]:
        assert port_is_free(peer["port"])


@pytest.mark.slow
def test_descendants_left_behind_by_the_engine_are_ended(port: int, tmp_path) -> None:
    script = tmp_path / "spawner.py"
    script.write_text(textwrap.dedent("""
        import subprocess, sys, time
        stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
        child = subprocess.Popen([sys.executable, "-c", stubborn])
        escaped = subprocess.Popen(["sleep", "300"], start_new_session=True)
        print(child.pid, escaped.pid, flush=True)
        time.sleep(3)  # long enough for memsoak-run to notice its descendants
    """))
    started = start([sys.executable, str(script)], port, options=["--grace", "1"], wait=False)
    pids = [int(pid) for pid in started.proc.stdout.readline().split()]
    assert len(pids) == 2
    leftovers = [psutil.Process(pid) for pid in pids]
    assert started.proc.wait(timeout=60) == 0
    assert not psutil.wait_procs(leftovers, timeout=10)[1]


def test_a_busy_hook_port_is_refused_before_starting(port: int) -> None:
    import socket
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = subprocess.run([*MEMSOAK_RUN, "--port", str(port), "--", sys.executable, "-c",
                               "print('engine ran')"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "engine ran" not in done.stdout
    assert f"127.0.0.1:{port} unavailable" in done.stderr and "--port" in done.stderr


def _arbiter_workers(arbiter: psutil.Process) -> set[int]:
    return {child.pid for child in arbiter.children() if child.status() != psutil.STATUS_ZOMBIE}


@pytest.mark.parametrize("preload", [False, True], ids=["import-in-workers", "preload"])
def test_gunicorn_forked_workers_are_peers_reached_through_the_arbiter(port: int, tmp_path,
                                                                        preload: bool) -> None:
    """gunicorn forks its workers (os.fork, no exec): each re-arms its own hook after the fork.

    Without --preload the workers import the app after the fork; with it the arbiter imports the
    app (and builds it) before forking. Both must give: the arbiter's hook is the primary, every
    worker is a peer reachable through ?pid=, the tree RSS covers them, a replaced worker is
    replaced in the peer list too, and SIGTERM to memsoak-run leaves nothing behind.
    """
    app_port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "2",
               "-b", f"127.0.0.1:{app_port}", "--control-socket", str(tmp_path / "gunicorn.ctl"),
               "--log-level", "warning", *(["--preload"] if preload else []), "memsoak.demo_engine.app:app"]
    started = start(command, port, env={"DEMO_LLM_LATENCY_MS": "0"})
    health = wait_for(lambda: (lambda h: h if len(h["peers"]) == 2 else None)(
        http(started.hook + "/health")[1]), timeout=60, what="two gunicorn worker peers")
    arbiter = psutil.Process(health["pid"])
    assert health["primary"] is True and arbiter.ppid() == started.proc.pid  # the arbiter holds PORT
    workers = {peer["pid"] for peer in health["peers"]}
    assert workers == _arbiter_workers(arbiter)
    assert all(port < peer["port"] <= port + 64 for peer in health["peers"])

    # every worker answers through the primary, with its own hook, ring and snapshot store
    for pid in workers:
        status, peer = http(started.hook + f"/health?pid={pid}")
        assert status == 200 and peer["pid"] == pid and peer["ppid"] == arbiter.pid
        assert peer["primary"] is False and peer["errors"]["total"] == 0
        samples = http(started.hook + f"/samples?since=0&pid={pid}")[1]["samples"]
        assert samples and {s["pid"] for s in samples} == {pid}
        status, snap = http(started.hook + f"/snapshots/w{pid}?pid={pid}", "POST")
        assert status == 200 and snap["label"] == f"w{pid}"
        assert http(started.hook + f"/snapshots?pid={pid}")[1]["labels"] == [f"w{pid}"]
    assert http(started.hook + "/snapshots")[1]["labels"] == []  # the arbiter's store is its own

    # the app is served by the workers (the demo engine answers with the pid that served it)
    served = {wait_for(lambda: httpx_get(f"http://127.0.0.1:{app_port}/api/health"), timeout=60,
                       what="gunicorn serving")["pid"] for _ in range(6)}
    assert served <= workers

    # the primary's tree RSS covers the arbiter and both workers
    def tree_sample() -> dict | None:
        last = http(started.hook + "/samples?since=0")[1]["samples"][-1]
        return last if last["tree_procs"] == 3 else None
    sample = wait_for(tree_sample, what="a tree of 3 processes")
    by_psutil = sum(psutil.Process(pid).memory_info().rss for pid in {arbiter.pid, *workers})
    assert abs(sample["tree_rss_bytes"] - by_psutil) <= 0.25 * by_psutil, (sample, by_psutil)
    assert sample["tree_rss_bytes"] > sample["rss_bytes"]

    # a worker killed is replaced by gunicorn (a fork of the long-running arbiter): so is its peer
    killed = min(workers)
    psutil.Process(killed).kill()

    def replaced() -> set[int] | None:
        peers = {peer["pid"] for peer in http(started.hook + "/health")[1]["peers"]}
        return peers if len(peers) == 2 and killed not in peers and peers == _arbiter_workers(arbiter) else None
    (new,) = wait_for(replaced, timeout=60, what="gunicorn's replacement worker as a peer") - workers
    assert http(started.hook + f"/health?pid={new}")[1]["pid"] == new
    assert http(started.hook + f"/health?pid={killed}")[0] == 404

    # SIGTERM to memsoak-run: gunicorn stops its workers, exits 0, nothing is left
    peer_dir = Path(health["config"]["peer_dir"])
    ports = [port, *(peer["port"] for peer in http(started.hook + "/health")[1]["peers"])]
    members = started.tree()
    started.proc.send_signal(signal.SIGTERM)
    assert started.proc.wait(timeout=60) == 0
    assert not psutil.wait_procs(members, timeout=10)[1]
    assert all(port_is_free(p) for p in ports) and not peer_dir.exists()


def httpx_get(url: str) -> dict | None:
    status, body = http(url, timeout=5)
    return body if status == 200 and isinstance(body, dict) else None
