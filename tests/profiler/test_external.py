"""--pid mode: an existing process sampled from outside through the same HTTP API."""
import subprocess
import sys

import psutil

from hookhelp import MEMSOAK_RUN, _RUNNING, free_port, http, port_is_free, wait_for


def test_pid_mode_samples_from_outside_and_refuses_snapshots(port: int) -> None:
    target = subprocess.Popen([sys.executable, "-c",
                               "import threading, time\n"
                               "for _ in range(3): threading.Thread(target=time.sleep, args=(60,)).start()\n"
                               "data = bytearray(50_000_000); time.sleep(60)"])
    _RUNNING.append(target)
    watcher = subprocess.Popen([*MEMSOAK_RUN, "--pid", str(target.pid), "--port", str(port),
                                "--interval", "0.2"], stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    _RUNNING.append(watcher)
    hook = f"http://127.0.0.1:{port}"
    wait_for(lambda: http(hook + "/samples?since=0", timeout=2)[1]["samples"][-1]["rss_bytes"]
             > 50_000_000, what="the target's RSS")
    sample = http(hook + "/samples?since=0")[1]["samples"][-1]
    assert sample["pid"] == target.pid and sample["threads"] == 4
    assert sample["open_fds"] >= 3 and sample["tree_procs"] == 1
    for name in ("allocated_blocks", "gc_count_0", "traced_current_bytes", "asyncio_tasks"):
        assert sample[name] is None, name
    health = http(hook + "/health")[1]
    assert health["mode"] == "external" and health["pid"] == target.pid
    status, answer = http(hook + "/snapshots/x", "POST")
    assert status == 409 and "memsoak-run" in answer["error"]
    assert http(hook + "/diff?base=a&head=b")[0] == 409 and http(hook + "/types")[0] == 409
    assert "process_resident_memory_bytes" in http(hook + "/metrics")[1]
    target.kill()
    target.wait(timeout=10)
    assert watcher.wait(timeout=30) == 0  # the target is gone: memsoak-run stops by itself
    assert "exited" in watcher.stderr.read()
    assert port_is_free(port)


def test_pid_mode_with_a_wrong_pid_is_a_one_line_error() -> None:
    pid = 4_000_000
    while psutil.pid_exists(pid):
        pid -= 1
    done = subprocess.run([*MEMSOAK_RUN, "--pid", str(pid), "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and f"no process with pid {pid}" in done.stderr
    assert "Traceback" not in done.stderr
