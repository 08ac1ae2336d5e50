"""procinfo reads /proc itself so the hook needs no psutil in the engine: it must agree with psutil."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from memsoak.profiler import probes, procinfo, sampler
from memsoak.profiler.config import HookConfig

pytestmark = pytest.mark.skipif(not procinfo.has_procfs(), reason="needs /proc")

# a child that holds 3 extra threads, 5 extra open files and 40 MB of its own, then waits
CHILD = textwrap.dedent("""
    import sys, threading, time
    stop = threading.Event()
    for _ in range(3):
        threading.Thread(target=stop.wait, daemon=True).start()
    files = [open(sys.executable, "rb") for _ in range(5)]
    held = bytearray(40 * 1024 * 1024)
    for i in range(0, len(held), 4096):
        held[i] = 1
    print("ready", flush=True)
    time.sleep(60)
""")


@pytest.fixture()
def child():
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "an argument with spaces", "naïve"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def test_procfs_agrees_with_psutil_on_another_process(child) -> None:
    ours, theirs = procinfo.process(child.pid), psutil.Process(child.pid)
    assert isinstance(ours, procinfo.ProcFS)
    memory, expected = ours.memory_info(), theirs.memory_info()
    assert memory.rss == expected.rss and memory.vms == expected.vms   # an idle process: same pages
    assert memory.rss > 40 * 1024 * 1024
    assert ours.num_fds() == theirs.num_fds() >= 3 + 5
    assert ours.num_threads() == theirs.num_threads() == 4
    assert ours.cmdline() == theirs.cmdline() == [sys.executable, "-c", CHILD, "an argument with spaces", "naïve"]
    uss, expected_uss = ours.memory_full_info().uss, theirs.memory_full_info().uss
    assert uss == expected_uss and uss > 40 * 1024 * 1024
    assert not ours.is_zombie() and procinfo.alive(child.pid)


def test_a_zombie_and_a_reaped_process_are_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.02)
    assert procinfo.process(proc.pid).is_zombie()   # exited, not yet reaped
    assert not procinfo.alive(proc.pid)
    proc.wait(10)
    assert not procinfo.alive(proc.pid)
    with pytest.raises(OSError):
        procinfo.process(proc.pid).memory_info()


def test_a_command_name_with_spaces_and_parentheses_does_not_shift_the_stat_fields(tmp_path) -> None:
    # /proc/PID/stat puts the name in parentheses; a name holding ") S 1 (" must not be split on
    odd = tmp_path / "x) S 1 (y"
    odd.symlink_to(sys.executable)
    proc = subprocess.Popen([str(odd), "-c", "import threading, time\n"
                             "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
                             "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert procinfo.process(proc.pid).num_threads() == 2
        assert not procinfo.process(proc.pid).is_zombie()
    finally:
        proc.kill()
        proc.wait(10)


def test_the_psutil_fallback_gives_the_same_probes(monkeypatch, child) -> None:
    on_proc = procinfo.process(child.pid)
    monkeypatch.setattr(procinfo, "PROC", "/nonexistent-proc")   # a system without /proc
    fallback = procinfo.process(child.pid)
    assert not isinstance(fallback, procinfo.ProcFS)
    for probe in (probes.memory, probes.uss, probes.open_fds):
        assert probe(fallback) == probe(on_proc), probe
    assert fallback.num_threads() == on_proc.num_threads() == 4
    assert fallback.cmdline() == on_proc.cmdline()
    assert procinfo.alive(child.pid)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert not procinfo.alive(child.pid)


def test_the_in_process_probes_read_this_process_without_psutil() -> None:
    table = sampler.in_process_probes(HookConfig(uss=True))
    values = {name: probe() for name, probe in table.items()}
    me = psutil.Process()
    assert abs(values["memory"]["rss_bytes"] - me.memory_info().rss) < 16 * 1024 * 1024
    assert values["uss"]["uss_bytes"] > 0
    assert abs(values["open_fds"]["open_fds"] - me.num_fds()) <= 2
    assert values["threads"]["threads"] == me.num_threads() - probes.hook_thread_counter()()
