"""Hook settings: one dataclass read from the MEMSOAK_* environment, overridable in code.

`memsoak-run` turns its flags into these environment variables, so a hook started by
`sitecustomize` in any process of the engine's tree sees the same settings; `profiler.install()`
takes the same names as keyword overrides. Bad values never raise into the engine: they fall back to
the default and are reported once on stderr.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import sys
from typing import Any, Mapping

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9477
PEER_PORT_SPAN = 64          # other processes of the tree bind PORT+1 .. PORT+64
DEFAULT_CAPACITY = 3600      # one hour at the default interval (see docs/hook.md for bytes)
DEFAULT_SNAPSHOT_FRAMES = 1  # frames used when POST /snapshots has to start tracemalloc
ALLOC_MODES = ("sampled", "tracemalloc", "off")
DEFAULT_SAMPLE_BYTES = 512 * 1024  # mean bytes between allocation samples (docs/hook.md)
DEFAULT_SAMPLE_FRAMES = 32


@dataclasses.dataclass(frozen=True)
class HookConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    interval: float = 1.0
    capacity: int = DEFAULT_CAPACITY
    tracemalloc_frames: int = 0
    uss: bool = False
    gc_objects: bool = False
    trim_after_snapshot: bool = True
    peer_dir: str | None = None
    alloc_mode: str | None = None  # None: tracemalloc when tracemalloc_frames > 0, else sampled
    sample_bytes: int = DEFAULT_SAMPLE_BYTES
    sample_frames: int = DEFAULT_SAMPLE_FRAMES

    def requested_alloc_mode(self) -> str:
        if self.alloc_mode is not None:
            return self.alloc_mode
        return "tracemalloc" if self.tracemalloc_frames > 0 else "sampled"

    def public(self) -> dict[str, Any]:
        """The config as /health shows it: never the token itself."""
        # vars(), not dataclasses.asdict(): fields() builds its tuple by resizing, and with more than
        # 10 fields every call left one tuple in CPython's tuple free list (144 B per /health,
        # counted as traced heap growth by tests/profiler/test_hook.py)
        shown = dict(vars(self))
        shown["token"] = bool(self.token)
        return shown


# field name -> (environment variable, parser)
def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


def alloc_mode(text: str) -> str:
    lowered = text.strip().lower()
    if lowered not in ALLOC_MODES:
        raise ValueError(text)
    return lowered


ENV: dict[str, tuple[str, Any]] = {
    "host": ("MEMSOAK_HOOK_HOST", str),
    "port": ("MEMSOAK_HOOK_PORT", int),
    "token": ("MEMSOAK_HOOK_TOKEN", str),
    "interval": ("MEMSOAK_INTERVAL", float),
    "capacity": ("MEMSOAK_RING_CAPACITY", int),
    "tracemalloc_frames": ("MEMSOAK_TRACEMALLOC_FRAMES", int),
    "uss": ("MEMSOAK_USS", _bool),
    "gc_objects": ("MEMSOAK_GC_OBJECTS", _bool),
    "trim_after_snapshot": ("MEMSOAK_TRIM_AFTER_SNAPSHOT", _bool),
    "peer_dir": ("MEMSOAK_PEER_DIR", str),
    "alloc_mode": ("MEMSOAK_ALLOC_MODE", alloc_mode),
    "sample_bytes": ("MEMSOAK_SAMPLE_BYTES", int),
    "sample_frames": ("MEMSOAK_SAMPLE_FRAMES", int),
}

_LIMITS = {"port": (0, 65535), "interval": (0.01, 3600.0), "capacity": (10, 10_000_000),
           "tracemalloc_frames": (0, 1000), "sample_bytes": (1024, 1 << 30), "sample_frames": (1, 128)}


def load_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> HookConfig:
    """Settings from the environment, then keyword overrides; invalid values warn and default."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (var, parse) in ENV.items():
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError:
            expected = f"one of {', '.join(ALLOC_MODES)}" if name == "alloc_mode" else f"a valid {parse.__name__}"
            _warn(f"ignoring {var}={raw!r}: not {expected}; using the default")
    for name, value in overrides.items():
        if name not in ENV:
            _warn(f"ignoring unknown setting {name!r}; known: {', '.join(ENV)}")
            continue
        values[name] = value
    if values.get("alloc_mode") is not None and values["alloc_mode"] not in ALLOC_MODES:
        _warn(f"ignoring alloc_mode={values['alloc_mode']!r}: one of {', '.join(ALLOC_MODES)}; using the default")
        del values["alloc_mode"]
    for name, (low, high) in _LIMITS.items():
        if name in values and not low <= values[name] <= high:
            _warn(f"ignoring {name}={values[name]!r}: must be within {low}..{high}; using the default")
            del values[name]
    return HookConfig(**values)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn(message: str) -> None:
    try:
        print(f"memsoak hook: {message}", file=sys.stderr, flush=True)
    except Exception:  # a closed stderr must not break the engine
        pass
