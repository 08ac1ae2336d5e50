"""Hook settings: one frozen record read from the MEMSOAK_* environment, overridable in code.

`memsoak-run` turns its flags into these environment variables, so a hook started by
`sitecustomize` in any process of the engine's tree sees the same settings; `profiler.install()`
takes the same names as keyword overrides. Bad values never raise into the engine: they fall back to
the default and are reported once on stderr.

Not a dataclass: `dataclasses` imports inspect, ast, dis and tokenize, ~1,300 objects that would sit
in the engine's heap for good, walked by every full collection of its garbage collector (on an
engine that churns small objects that is a measurable part of the hook's cost: docs/hook.md).
`fields(HookConfig)` gives what `dataclasses.fields` would (name, type, default, metadata).
"""
from __future__ import annotations

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


def _knob(default: Any, env: str, parse: Any, help: str, cli: str | None = None,
          limits: tuple[Any, Any] | None = None) -> Any:
    """A field that declares one hook setting, in memsoak.knobs' metadata format (the hook imports
    no memsoak module: engine images install memsoak/profiler/ alone). `cli`: memsoak-run's flag;
    `limits`: inclusive range, a value outside warns and keeps the default."""
    meta = {"help": help, "env": env, "parse": parse, "cli": cli, "conf": False,
            "range": (limits[0], limits[1], True) if limits else None}
    return Field(default, {"knob": meta})


class Field:
    """One declared setting: the attributes of dataclasses.Field that memsoak.knobs reads."""

    __slots__ = ("name", "type", "default", "metadata")

    def __init__(self, default: Any, metadata: dict[str, Any]) -> None:
        self.name, self.type, self.default, self.metadata = "", "", default, metadata


class _Frozen:
    """An immutable record of the `Field`s its subclass declares, in declaration order."""

    __knob_fields__: tuple[Field, ...] = ()

    def __init_subclass__(cls) -> None:
        declared = [(name, value) for name, value in vars(cls).items() if isinstance(value, Field)]
        for name, field in declared:
            field.name, field.type = name, cls.__annotations__[name]
            delattr(cls, name)
        cls.__knob_fields__ = tuple(field for _name, field in declared)

    def __init__(self, **values: Any) -> None:
        for field in self.__knob_fields__:
            object.__setattr__(self, field.name, values.pop(field.name, field.default))
        if values:
            raise TypeError(f"{type(self).__name__}() got unexpected settings: {', '.join(values)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, field.name) for field in self.__knob_fields__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{field.name}={getattr(self, field.name)!r}" for field in self.__knob_fields__)
        return f"{type(self).__name__}({shown})"


def fields(record: Any) -> tuple[Field, ...]:
    """The declared settings of a `_Frozen` class or instance, like dataclasses.fields."""
    return record.__knob_fields__


class HookConfig(_Frozen):
    """The hook's settings, typed; each field is declared once with its MEMSOAK_* variable."""

    host: str = _knob(DEFAULT_HOST, "MEMSOAK_HOOK_HOST", str,
                      "Hook bind address; anything but loopback needs a token", "--host")
    port: int = _knob(DEFAULT_PORT, "MEMSOAK_HOOK_PORT", int,
                      f"Hook port; other processes of the engine's tree bind PORT+1..PORT+{PEER_PORT_SPAN}",
                      "--port", (0, 65535))
    token: str | None = _knob(None, "MEMSOAK_HOOK_TOKEN", str,
                              "Bearer token required on every hook request", "--token")
    interval: float = _knob(1.0, "MEMSOAK_INTERVAL", float, "Seconds between samples", "--interval",
                            (0.01, 3600.0))
    capacity: int = _knob(DEFAULT_CAPACITY, "MEMSOAK_RING_CAPACITY", int,
                          "Samples kept in the hook's ring buffer (one hour at 1 s)", None, (10, 10_000_000))
    tracemalloc_frames: int = _knob(0, "MEMSOAK_TRACEMALLOC_FRAMES", int,
                                    "Start tracemalloc with N frames at hook start (0 = off; N > 0 selects "
                                    "the tracemalloc allocation mode unless MEMSOAK_ALLOC_MODE says otherwise)",
                                    "--tracemalloc-frames", (0, 1000))
    uss: bool = _knob(False, "MEMSOAK_USS", _bool, "Sample USS from smaps each sample (costly)", "--uss")
    gc_objects: bool = _knob(False, "MEMSOAK_GC_OBJECTS", _bool,
                             "Count all gc objects each sample (costly)", "--gc-objects")
    trim_after_snapshot: bool = _knob(True, "MEMSOAK_TRIM_AFTER_SNAPSHOT", _bool,
                                      "Return freed memory to the OS (malloc_trim) after each snapshot")
    peer_dir: str | None = _knob(None, "MEMSOAK_PEER_DIR", str,
                                 "Directory where the processes of one engine's tree register their hook "
                                 "(set by memsoak-run)")
    alloc_mode: str | None = _knob(None, "MEMSOAK_ALLOC_MODE", alloc_mode,
                                   "Allocation tracking: sampled, tracemalloc or off (unset: tracemalloc when "
                                   "MEMSOAK_TRACEMALLOC_FRAMES > 0, else sampled)", "--alloc-mode")
    sample_bytes: int = _knob(DEFAULT_SAMPLE_BYTES, "MEMSOAK_SAMPLE_BYTES", int,
                              "Sampled mode: mean bytes between allocation samples", "--sample-bytes",
                              (1024, 1 << 30))
    sample_frames: int = _knob(DEFAULT_SAMPLE_FRAMES, "MEMSOAK_SAMPLE_FRAMES", int,
                               "Sampled mode: stack frames kept per sample", "--sample-frames", (1, 128))

    def requested_alloc_mode(self) -> str:
        if self.alloc_mode is not None:
            return self.alloc_mode
        return "tracemalloc" if self.tracemalloc_frames > 0 else "sampled"

    def public(self) -> dict[str, Any]:
        """The config as /health shows it: never the token itself."""
        # vars(), no tuple built per call: with more than 10 fields a tuple built by resizing left one
        # in CPython's tuple free list per /health (144 B, counted as traced heap growth by
        # tests/profiler/test_hook.py)
        shown = dict(vars(self))
        shown["token"] = bool(self.token)
        return shown


# field name -> (environment variable, parser), and the inclusive ranges, read once from the fields
ENV: dict[str, tuple[str, Any]] = {
    f.name: (f.metadata["knob"]["env"], f.metadata["knob"]["parse"]) for f in fields(HookConfig)}
_LIMITS: dict[str, tuple[Any, Any]] = {
    f.name: f.metadata["knob"]["range"][:2] for f in fields(HookConfig) if f.metadata["knob"]["range"]}


def knobs() -> tuple[Any, ...]:
    """The hook's settings as memsoak.knobs.Knob specs, for the settings table (imports memsoak:
    never called by the hook itself)."""
    from memsoak.knobs import knobs_of
    return knobs_of(HookConfig)


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
