"""The in-process hook: config, sampler, ring, snapshot stores and HTTP server, started once.

`install()` is idempotent per process and never raises: a refused or failed start returns a handle
with `started = False` and `error` set, after one line on stderr, and the engine runs on unhooked.
Lifecycle: the sampler and the server are daemon threads; `atexit` stops both and removes this
process's peer file; `os.register_at_fork` re-arms a forked child with its own hook (its own ring,
thread and port), after closing the child's copy of the parent's listening socket.
"""
from __future__ import annotations

import atexit
import errno
import os
import sys
import threading
import time
from typing import Any

# tracemalloc's C half (what tracemalloc.py re-exports): is_tracing/start/get_traceback_limit without
# tracemalloc.py, pickle and fnmatch in the engine's heap; snapshots import tracemalloc when they need it
import _tracemalloc

from . import alloc_sampler, engine_code, metrics, peers, procinfo
from .config import PEER_PORT_SPAN, HookConfig, is_loopback, load_config
from .ring import SampleRing
from .sampler import FLOAT_FIELDS, SAMPLE_FIELDS, ErrorCounts, Sampler, in_process_probes
from .server import HookServer
from .snapshots import SnapshotStore, TypeCensusStore

HOOK_VERSION = "0.1.0"


def _say(message: str) -> None:
    try:
        print(f"memsoak hook: {message}", file=sys.stderr, flush=True)
    except Exception:
        pass


def bind_server(backend: Any, config: HookConfig, span: int) -> HookServer:
    """The configured port, else the next free one in PORT+1..PORT+span (0 = any free port)."""
    candidates = [config.port] if config.port == 0 else \
        [p for p in range(config.port, config.port + span + 1) if p <= 65535]
    last: OSError | None = None
    for port in candidates:
        try:
            return HookServer(backend, config.host, port)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            last = error
    raise OSError(errno.EADDRINUSE, f"ports {candidates[0]}..{candidates[-1]} all busy "
                                    f"({last}): set MEMSOAK_HOOK_PORT to a free port")


def refusal(config: HookConfig) -> str | None:
    if not is_loopback(config.host) and not config.token:
        return (f"refusing to bind {config.host} without a token: set MEMSOAK_HOOK_TOKEN "
                f"(memsoak-run --token) or bind 127.0.0.1; hook not started")
    return None


class Hook:
    """One process's hook; `port`, `started`, `error`, `stop()` are its public handle."""

    mode = "in-process"

    def __init__(self, config: HookConfig) -> None:
        self.config = config
        self.pid = os.getpid()
        self.host = config.host
        self.token = config.token
        self.peer_dir = config.peer_dir
        self.port: int | None = None
        self.primary = False
        self.started = False
        self.error: str | None = None
        self.started_at = time.time()
        self._cmdline: list[str] | None = None
        self._packages: list[str] | None = None
        self.errors = ErrorCounts()
        self.ring = SampleRing(SAMPLE_FIELDS, FLOAT_FIELDS, config.capacity)
        self.snapshots: SnapshotStore | None = SnapshotStore(config.peer_dir, config.trim_after_snapshot)
        self.censuses: TypeCensusStore | None = TypeCensusStore(config.peer_dir)
        self.sampler = Sampler(self.ring, in_process_probes(config), config.interval, self.errors)
        self.server: HookServer | None = None
        self.alloc_mode = "off"          # what runs: sampled, tracemalloc or off (set by start)
        self.alloc_note: str | None = None  # why the requested mode is not the one running
        self._peer_file: str | None = None
        self._render_metrics = metrics.make_renderer(self.ring.latest, lambda: self.errors.by_probe)

    def start(self) -> "Hook":
        self.error = refusal(self.config)
        if self.error:
            _say(self.error)
            return self
        try:
            self.server = bind_server(self, self.config, PEER_PORT_SPAN)
        except OSError as error:
            self.error = f"not started: cannot bind {self.config.host}:{self.config.port}: {error}"
            _say(self.error)
            return self
        self.port = self.server.port
        self.primary = self.config.port in (0, self.port)
        if not self.primary and not self.peer_dir:  # install() in code: nobody else will say it
            _say(f"port {self.config.port} busy, serving on {self.port}")
        self._start_alloc_tracking()  # after our imports: they stay untraced / unsampled
        self.sampler.sample_once()  # a first sample before anyone can ask
        self.sampler.start()
        self.server.start()
        if self.peer_dir:
            try:
                self._peer_file = peers.register(self.peer_dir, self.pid, self.port, self.primary)
            except OSError as error:
                self.errors.add("peers", error)
        self.started = True
        return self

    def _start_alloc_tracking(self) -> None:
        """The run's allocation mode: sampled (the default), tracemalloc, or off; one line on fallback."""
        mode = self.config.requested_alloc_mode()
        if mode == "sampled":
            reason = alloc_sampler.start(self.config.sample_bytes, self.config.sample_frames)
            if reason is not None:
                self.alloc_note = (f"allocation sampler unavailable ({reason}); using tracemalloc "
                                   "mode: snapshots start tracemalloc at 1 frame")
                _say(self.alloc_note)
                mode = "tracemalloc"
        if mode == "tracemalloc" and self.config.tracemalloc_frames > 0 and not _tracemalloc.is_tracing():
            _tracemalloc.start(self.config.tracemalloc_frames)
        self.alloc_mode = mode
        if self.snapshots is not None:
            self.snapshots.source = mode
            self.snapshots._sample_frames = self.config.sample_frames
        if mode == "sampled":  # the heap series: the tracker's estimate of the live sampled heap
            self.sampler.probes["tracemalloc"] = _sampled_heap

    def stop(self) -> None:
        """Stop sampling and serving; safe to call twice and from atexit."""
        if not self.started:
            return
        self.started = False
        peers.unregister(self._peer_file)
        self.sampler.stop()
        if self.alloc_mode == "sampled":
            alloc_sampler.stop()
        if self.server is not None:
            try:
                self.server.stop()
            except Exception:
                pass
        for store in (self.snapshots, self.censuses):
            if store is not None:
                store.close()

    def _engine_packages(self, cmdline: list[str]) -> list[str]:
        """Read once (entry points are parsed from disk): see memsoak/profiler/engine_code.py."""
        if self._packages is None:
            try:
                self._packages = engine_code.engine_packages(cmdline)
            except Exception as error:   # never let /health fail on it
                self.errors.add("engine_packages", error)
                self._packages = []
        return self._packages

    def health(self) -> dict[str, Any]:
        tracing = _tracemalloc.is_tracing()
        # read once (psutil, the fallback off Linux, reads it in text mode, which leaves names
        # alive in CPython's type attribute cache at each call: docs/hook.md, "the hook's own footprint")
        cmdline = self._cmdline
        if cmdline is None:
            try:
                cmdline = procinfo.process(self.pid).cmdline()
            except Exception:   # OSError, psutil.Error: not readable here
                cmdline = list(sys.argv)
            self._cmdline = cmdline
        return {
            "pid": self.pid, "ppid": os.getppid(), "hook_version": HOOK_VERSION,
            "python": sys.version.split()[0], "started_at": self.started_at, "mode": self.mode,
            "port": self.port, "primary": self.primary, "config": self.config.public(),
            "errors": self.errors.as_dict(), "last_seq": self.ring.last_seq,
            "ring": {"capacity": self.ring.capacity, "bytes": self.ring.nbytes},
            "tracing": tracing,
            "tracemalloc_frames": _tracemalloc.get_traceback_limit() if tracing else 0,
            "alloc_mode": self.alloc_mode, "alloc_note": self.alloc_note,
            "alloc_sampler": alloc_sampler.stats() if self.alloc_mode == "sampled" else None,
            "cmdline": cmdline, "engine_packages": self._engine_packages(cmdline),
            "peers": peers.list_peers(self.peer_dir, self.pid),
        }

    def samples(self, since: int, limit: int) -> dict[str, Any]:
        return self.ring.since(since, limit)

    def metrics(self) -> tuple[str, bytes]:
        return metrics.CONTENT_TYPE, self._render_metrics()


def _sampled_heap() -> dict[str, Any]:
    """traced_current_bytes in sampled mode: estimated live bytes of the sampled heap (O(1))."""
    return {"traced_current_bytes": alloc_sampler.live_bytes(), "traced_peak_bytes": None}


_lock = threading.Lock()
_hook: Hook | None = None
_overrides: dict[str, Any] = {}
_fork_handler_registered = False


def install(**overrides: Any) -> Hook:
    """Start the hook in this process (once); keyword overrides take the HookConfig field names."""
    global _hook, _overrides, _fork_handler_registered
    with _lock:
        if _hook is not None and _hook.pid == os.getpid() and (_hook.started or _hook.error):
            return _hook
        _overrides = dict(overrides)
        try:
            _hook = Hook(load_config(**overrides)).start()
        except Exception as error:  # never into the engine
            _say(f"not started: {type(error).__name__}: {error}")
            failed = Hook.__new__(Hook)
            failed.started, failed.error, failed.port, failed.pid = False, str(error), None, os.getpid()
            _hook = failed
            return failed
        if not _fork_handler_registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_rearm_after_fork)
            atexit.register(_stop_at_exit)
            _fork_handler_registered = True
        return _hook


def current() -> Hook | None:
    return _hook if _hook is not None and _hook.pid == os.getpid() else None


def _stop_at_exit() -> None:
    hook = current()
    if hook is not None:
        hook.stop()


def _rearm_after_fork() -> None:
    """Child of a fork: the parent's threads are gone and its socket must not be held open here."""
    global _hook, _lock
    _lock = threading.Lock()  # the parent may have held it at fork time
    inherited, _hook = _hook, None
    try:
        if inherited is not None and inherited.server is not None:
            inherited.server.close_inherited()
        if inherited is not None and inherited.started:
            install(**_overrides)
    except Exception as error:
        _say(f"not re-armed after fork: {type(error).__name__}: {error}")
