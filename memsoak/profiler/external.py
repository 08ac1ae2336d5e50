"""`--pid` mode: sample another process from outside and serve the same HTTP API.

For engines that are not Python (or cannot be restarted under memsoak-run): RSS, VMS, tree RSS,
open fds and threads come from /proc through psutil; every in-process field is null, and the
snapshot, diff and type routes answer 409. Reading another user's fds needs the same rights as
`ls /proc/PID/fd`; a denied probe is counted in /health like any probe error.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any

import psutil

from . import metrics, probes
from .config import HookConfig
from .hook import HOOK_VERSION, bind_server, refusal
from .ring import SampleRing
from .sampler import FLOAT_FIELDS, SAMPLE_FIELDS, ErrorCounts, Sampler
from .server import HookServer


class ExternalHook:
    mode = "external"
    snapshots = None
    censuses = None

    def __init__(self, pid: int, config: HookConfig) -> None:
        self.target = psutil.Process(pid)  # NoSuchProcess for a wrong pid: the caller says so
        self.pid = pid
        self.config = config
        self.host, self.token, self.peer_dir = config.host, config.token, None
        self.started_at = time.time()
        self.errors = ErrorCounts()
        self.ring = SampleRing(SAMPLE_FIELDS, FLOAT_FIELDS, config.capacity)
        table = {
            "memory": lambda: probes.memory(self.target),
            "tree": lambda: probes.tree(self.target),
            "open_fds": lambda: probes.open_fds(self.target),
            "threads": lambda: {"threads": self.target.num_threads()},
        }
        if config.uss:
            table["uss"] = lambda: probes.uss(self.target)
        self.sampler = Sampler(self.ring, table, config.interval, self.errors, pid=pid)
        self.server: HookServer | None = None
        self.port: int | None = None
        self._render = metrics.make_renderer(self.ring.latest, lambda: self.errors.by_probe)

    def start(self) -> str | None:
        """Bind and start; returns an error line instead of starting when refused."""
        error = refusal(self.config)
        if error:
            return error
        self.server = bind_server(self, self.config, span=0)
        self.port = self.server.port
        self.sampler.sample_once()
        self.sampler.start()
        self.server.start()
        return None

    def alive(self) -> bool:
        try:
            return self.target.is_running() and self.target.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def stop(self) -> None:
        self.sampler.stop()
        if self.server is not None:
            self.server.stop()

    def health(self) -> dict[str, Any]:
        try:
            cmdline = self.target.cmdline()
            ppid = self.target.ppid()
        except psutil.Error:
            cmdline, ppid = [], None
        return {
            "pid": self.pid, "ppid": ppid, "hook_version": HOOK_VERSION,
            "python": sys.version.split()[0], "started_at": self.started_at, "mode": self.mode,
            "hook_pid": os.getpid(), "port": self.port, "primary": True,
            "config": self.config.public(), "errors": self.errors.as_dict(),
            "last_seq": self.ring.last_seq,
            "ring": {"capacity": self.ring.capacity, "bytes": self.ring.nbytes},
            "tracing": False, "tracemalloc_frames": 0, "cmdline": cmdline, "peers": [],
        }

    def samples(self, since: int, limit: int) -> dict[str, Any]:
        return self.ring.since(since, limit)

    def metrics(self) -> tuple[str, bytes]:
        return metrics.CONTENT_TYPE, self._render()
