"""`memsoak-run [options] -- COMMAND ...`: run an engine with the hook in every Python process.

COMMAND starts in its own process group with a sitecustomize directory first on PYTHONPATH (the
existing PYTHONPATH kept after it, an existing sitecustomize chained to), and the options exported
as MEMSOAK_* variables. Multi-worker servers: the first process to bind --port is the primary and
its tree_rss_bytes covers the whole tree; every other hooked process binds the next free port in
PORT+1..PORT+64, registers in a peer directory (MEMSOAK_PEER_DIR, created and removed here), and is
listed in the primary's /health "peers" and reachable through the primary with `?pid=N`.
SIGINT/SIGTERM/SIGHUP are forwarded to the process group; after --grace seconds the group gets
SIGKILL. memsoak-run exits with COMMAND's status (128+N when it died of signal N), after killing any
descendant left behind. `--pid PID` samples an existing process from outside instead.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

import psutil

from . import memray_support
from .config import _LIMITS, ALLOC_MODES, HookConfig, load_config
from .config import fields as config_fields

BOOT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boot")
HOOK_PATH = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line naming the flag (not argparse's usage block), exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(
        prog="memsoak-run",
        description="Run COMMAND with memsoak's hook in every Python process it starts.",
        epilog="example: memsoak-run --port 9477 -- uvicorn app:app --workers 2")
    # The hook's own settings: each flag, its variable, default and meaning from its HookConfig field.
    for field in config_fields(HookConfig):
        knob = field.metadata["knob"]
        if not knob["cli"]:
            continue
        if field.type == "bool":
            parser.add_argument(knob["cli"], action="store_true", help=f"{knob['help']} ({knob['env']}=1)")
            continue
        default = "" if field.default is None else f", default {field.default}"
        limits = f", {knob['range'][0]}..{knob['range'][1]}" if knob["range"] else ""
        kind = {"choices": ALLOC_MODES} if field.name == "alloc_mode" else {"type": knob["parse"]}
        parser.add_argument(knob["cli"], help=f"{knob['help']} ({knob['env']}{default}{limits})", **kind)
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds between forwarding a stop signal and SIGKILL (default 10)")
    parser.add_argument("--memray", metavar="FILE", help="run under memray, write FILE and reports next to it")
    parser.add_argument("--memray-mode", choices=memray_support.MODES, default="malloc",
                        help="how memray's leaks view avoids pymalloc false leaks (default malloc)")
    parser.add_argument("--memray-aggregate", action="store_true",
                        help="memray's aggregated capture format: small files for long soaks")
    parser.add_argument("--pid", type=int, help="sample this existing process from outside (no COMMAND)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if args.pid is None and not args.command:
        parser.error("nothing to run: give `-- COMMAND ...` or --pid PID")
    if args.pid is not None and args.command:
        parser.error("--pid samples an existing process: give either --pid or `-- COMMAND`, not both")
    if args.pid is not None and args.memray:
        parser.error("--memray needs COMMAND (memray cannot attach here): drop --pid")
    if args.port is not None and not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: must be 0..65535")
    if args.interval is not None and args.interval <= 0:
        parser.error(f"--interval {args.interval}: must be > 0 seconds")
    if args.tracemalloc_frames is not None and args.tracemalloc_frames < 0:
        parser.error("--tracemalloc-frames must be >= 0 (0 = off)")
    if args.alloc_mode == "sampled" and (args.tracemalloc_frames or 0) > 0:
        parser.error(f"--tracemalloc-frames {args.tracemalloc_frames} starts tracemalloc, which --alloc-mode "
                     "sampled does not read (and pays for): drop it, or use --alloc-mode tracemalloc")
    for flag, name in (("--sample-bytes", "sample_bytes"), ("--sample-frames", "sample_frames")):
        low, high = _LIMITS[name]
        if getattr(args, name) is not None and not low <= getattr(args, name) <= high:
            parser.error(f"{flag} {getattr(args, name)}: must be within {low}..{high}")
    if not (0.0 <= args.grace <= 3600.0):   # NaN fails both
        parser.error(f"--grace {args.grace}: must be 0..3600 seconds between the stop signal and SIGKILL")
    if args.memray and os.path.exists(args.memray):
        parser.error(f"--memray {args.memray} exists and memray will not overwrite it: "
                     "remove it or choose another path")
    return args


def hook_env(args: argparse.Namespace) -> dict[str, str]:
    """The MEMSOAK_* variables the options stand for (unset options keep the environment's).

    Each flag's variable is the one its HookConfig field declares (memsoak/profiler/config.py), so the flag
    and the hook cannot disagree on a name."""
    env: dict[str, str] = {}
    for field in config_fields(HookConfig):
        knob = field.metadata["knob"]
        value = getattr(args, field.name, None) if knob["cli"] else None
        if value is None or value is False:
            continue
        env[knob["env"]] = "1" if value is True else str(value)
    return env


def child_env(args: argparse.Namespace, peer_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(hook_env(args))
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = BOOT_DIR + (os.pathsep + existing if existing else "")
    env["MEMSOAK_HOOK_PATH"] = HOOK_PATH
    env["MEMSOAK_PEER_DIR"] = peer_dir
    if args.memray:
        env.update(memray_support.env_for(args.memray, args.memray_mode, os.getpid(),
                                          args.memray_aggregate))
    return env


class _Stop:
    def __init__(self) -> None:
        self.signal: int | None = None
        self.kill_at: float | None = None


def _kill_leftovers(known: dict[int, float], grace: float) -> None:
    """Descendants that outlived COMMAND (reparented, or in another session): TERM, then KILL."""
    alive = []
    for pid, created in known.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created:  # not a recycled pid
                proc.terminate()
                alive.append(proc)
        except psutil.Error:
            continue
    _gone, still = psutil.wait_procs(alive, timeout=grace)
    for proc in still:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(still, timeout=5)


def _end_group(pgid: int, grace: float) -> None:
    """COMMAND is gone; its process group may not be (workers): TERM, wait, then KILL."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except OSError:
        return  # no process left in the group
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except OSError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Any:
    """preexec_fn: the engine gets SIGKILL when memsoak-run dies, even by kill -9 (Linux
    PR_SET_PDEATHSIG): an orphaned engine would hold its ports and memory. Elsewhere: no-op."""
    def arm() -> None:
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:   # memsoak-run died before prctl took effect
            os._exit(1)
    return arm if sys.platform.startswith("linux") else None


def port_in_use(host: str, port: int) -> str | None:
    """Why the hook could not have `port` as the primary, or None when it can bind it."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the hook binds
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def _remove_stale_peer_dirs() -> None:
    """Peer directories of memsoak-runs that were SIGKILLed (they could not clean up)."""
    pattern = re.compile(r"^memsoak-peers-(\d+)-")
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        match = pattern.match(name)
        if match and not psutil.pid_exists(int(match.group(1))):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def run_command(args: argparse.Namespace) -> int:
    config = load_config(**{k: v for k, v in {"host": args.host, "port": args.port}.items()
                            if v is not None})
    busy = port_in_use(config.host, config.port)
    if busy:
        # a hook on the next port would leave the harness talking to whatever holds this one
        print(f"memsoak-run: hook port {config.host}:{config.port} unavailable ({busy}): stop what "
              "holds it or choose another --port", file=sys.stderr)
        return USAGE_ERROR
    _remove_stale_peer_dirs()
    peer_dir = tempfile.mkdtemp(prefix=f"memsoak-peers-{os.getpid()}-")
    stop = _Stop()
    try:
        try:
            child = subprocess.Popen(args.command, env=child_env(args, peer_dir), start_new_session=True,
                                     preexec_fn=_die_with_parent(os.getpid()))
        except OSError as error:
            print(f"memsoak-run: cannot start {args.command[0]!r}: {error.strerror or error}",
                  file=sys.stderr)
            return 127 if isinstance(error, FileNotFoundError) else 126

        def forward(signum: int, _frame: Any) -> None:
            stop.signal = signum
            if stop.kill_at is None:
                stop.kill_at = time.monotonic() + args.grace
            try:
                os.killpg(child.pid, signum)
            except OSError:
                pass

        # a signal memsoak-run was started ignoring (nohup: SIGHUP) stays ignored for the engine too
        previous = {sig: signal.signal(sig, forward) for sig in FORWARDED
                    if signal.getsignal(sig) is not signal.SIG_IGN}
        known: dict[int, float] = {}
        next_scan = 0.0
        try:
            while child.poll() is None:
                if time.monotonic() >= next_scan:  # ~1 ms a scan: every 2 s keeps it out of the bench
                    next_scan = time.monotonic() + 2.0
                    try:
                        for proc in psutil.Process(child.pid).children(recursive=True):
                            known.setdefault(proc.pid, proc.create_time())
                    except psutil.Error:
                        pass
                if stop.kill_at is not None and time.monotonic() > stop.kill_at:
                    try:
                        os.killpg(child.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    stop.kill_at = time.monotonic() + 3600
                try:
                    child.wait(timeout=0.25)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            _end_group(child.pid, min(args.grace, 5.0))
            _kill_leftovers(known, min(args.grace, 5.0))
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        status = child.returncode
        if args.memray:
            _render_memray(args.memray)
        return 128 - status if status < 0 else status
    finally:
        shutil.rmtree(peer_dir, ignore_errors=True)


def _render_memray(file: str) -> None:
    found = memray_support.captures(file)
    if not found:
        print(f"memsoak-run: no memray capture at {file}: did a Python process start?", file=sys.stderr)
    for capture in found:
        for name, outcome in memray_support.render(capture).items():
            print(f"memsoak-run: memray {name}: {outcome}", file=sys.stderr)


def run_pid(args: argparse.Namespace) -> int:
    from .external import ExternalHook

    overrides = {k: v for k, v in {"port": args.port, "host": args.host, "token": args.token,
                                   "interval": args.interval, "uss": args.uss or None}.items()
                 if v is not None}
    try:
        hook = ExternalHook(args.pid, load_config(**overrides))
    except psutil.Error:
        print(f"memsoak-run: no process with pid {args.pid} (or no right to read it): check the pid",
              file=sys.stderr)
        return USAGE_ERROR
    try:
        error = hook.start()
    except OSError as bind_error:
        error = f"cannot bind the hook: {bind_error}"
    if error:
        print(f"memsoak-run: {error}", file=sys.stderr)
        return USAGE_ERROR
    print(f"memsoak-run: sampling pid {args.pid} from outside; hook on "
          f"http://{hook.host}:{hook.port}", file=sys.stderr, flush=True)
    stopped: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _f: stopped.append(signum)) for sig in FORWARDED}
    try:
        while not stopped and hook.alive():
            time.sleep(0.2)
    finally:
        hook.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not stopped:
        print(f"memsoak-run: pid {args.pid} exited; stopping", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.pid is not None:
        return run_pid(args)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
