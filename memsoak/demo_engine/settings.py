"""The demo engine's settings: one table, one name per setting across flag and environment.

Each setting `llm_latency_ms` is the flag `--llm-latency-ms` and the environment variable
`DEMO_LLM_LATENCY_MS` (except `database_url`, which is `DATABASE_URL` as everywhere else).
A flag wins over the environment, the environment over the default. `__main__` exports the
resolved values back into the environment so that every uvicorn worker builds the same engine.
Bad values raise `SettingsError` with one line naming the fix.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Any, Mapping

LEAK_NAMES = ("session_state", "response_cache", "score_history", "native", "fd", "asyncio_task",
              "lru_cache", "logger", "small_append", "filling_cache", "async_gen")


class SettingsError(ValueError):
    """A setting has a value the engine cannot use; the message names the fix."""


@dataclass(frozen=True)
class Settings:
    api_key: str = "demo-key"
    api_key_header: str = "X-API-Key"
    database_url: str = ""
    llm_latency_ms: float = 20.0
    leaks: str = ""
    # Like real Aria: a per-client token bucket (0 turns it off) and a short duplicate window.
    rate_limit_rps: float = 1000.0
    rate_limit_burst: int = 2000
    duplicate_window_s: float = 5.0
    # The bounded structures a real engine keeps in memory.
    context_messages: int = 20
    cache_entries: int = 1024
    max_live_sessions: int = 2000
    session_idle_s: float = 600.0
    score_history: int = 256
    db_pool_size: int = 4
    # The real Aria protocol (see README "Strict mode"). `strict` presets the settings below to
    # what the real engine does; a setting given explicitly (flag or environment) still wins.
    strict: bool = False
    ws_frames: str = "legacy"          # legacy: token/done | aria: stream_start ... stream_end
    ws_keepalive_s: float = 0.0        # {"type": "pong"} every N s on each socket; 0 = off
    ws_auth_reject: str = "close"      # close: accept, error frame, close 4401 | handshake: refuse
    http_semantics: str = "demo"       # demo: 409 for ended/duplicate | aria: Aria's 404s, reactivation
    rate_limiter: str = "bucket"       # bucket: token bucket per peer IP | aria: Aria's windows | off
    aria_limit_burst_5s: int = 50
    aria_limit_per_minute: int = 300
    aria_limit_per_hour: int = 5000
    rate_limit_clients: int = 4096     # clients the limiter remembers (LRU; Aria's is unbounded)
    ws_token_delay_ms: float = 0.0     # pause between streamed content frames
    ws_stall_every: int = 0            # every Nth streamed reply (per worker) never ends; 0 = none
    ws_stall_max_s: float = 3600.0     # a never-ending reply gives up (close 1011) after this long

    def leak_sizes(self) -> dict[str, int]:
        return parse_leaks(self.leaks)


HELP: dict[str, str] = {
    "api_key": "API key every /api/engine call must send",
    "api_key_header": "header that carries the API key",
    "database_url": "postgresql://... for PostgreSQL; unset or sqlite:///PATH for SQLite",
    "llm_latency_ms": "latency of the fake LLM gateway per completion (async sleep)",
    "leaks": "planted leaks, comma list name[:bytes_per_op] with names " + ", ".join(LEAK_NAMES),
    "rate_limit_rps": "requests per second allowed per client IP (0 = no limit)",
    "rate_limit_burst": "token-bucket burst per client IP",
    "duplicate_window_s": "an identical message in the same session within this window gets 409",
    "context_messages": "sliding context window per session (messages)",
    "cache_entries": "bounded LLM response cache (LRU entries)",
    "max_live_sessions": "sessions kept in memory (LRU; evicted ones reload from storage)",
    "session_idle_s": "a live session unused this long leaves memory (it reloads from storage)",
    "score_history": "scores kept per agent in the agent pool",
    "db_pool_size": "PostgreSQL connections per worker",
    "strict": "speak the real Aria protocol: aria frames, keepalive every 5 s, handshake refusal, "
              "Aria's rate limiter and HTTP semantics (each still overridable)",
    "ws_frames": "WebSocket frames: legacy (token/done) or aria (stream_start, content, stream_end, ...)",
    "ws_keepalive_s": "seconds between keepalive {\"type\": \"pong\"} frames (0 = off; Aria: 30)",
    "ws_auth_reject": "bad WS key: close (accept, then close 4401) or handshake (Aria: refused, HTTP 403)",
    "http_semantics": "demo (409 for ended session or duplicate) or aria (404 as Aria, WS reactivates)",
    "rate_limiter": "bucket (token bucket per peer IP), aria (per X-Forwarded-For, Aria's windows) or off",
    "aria_limit_burst_5s": "aria limiter: POST/PUT/PATCH/DELETE per client in 5 s (then blocked 15 s)",
    "aria_limit_per_minute": "aria limiter: per client per minute (then blocked 30 s)",
    "aria_limit_per_hour": "aria limiter: per client per hour (then blocked 300 s)",
    "rate_limit_clients": "clients the rate limiter keeps (least recently seen dropped first)",
    "ws_token_delay_ms": "delay between streamed content frames",
    "ws_stall_every": "every Nth streamed reply never ends (only keepalives follow); 0 = none",
    "ws_stall_max_s": "a never-ending reply is abandoned (close 1011) after this many seconds",
}

# What `strict` changes: the real engine's behaviour, with a keepalive short enough for tests.
STRICT_PRESET: dict[str, Any] = {
    "ws_frames": "aria", "ws_keepalive_s": 5.0, "ws_auth_reject": "handshake",
    "http_semantics": "aria", "rate_limiter": "aria",
}
CHOICES: dict[str, tuple[str, ...]] = {
    "ws_frames": ("legacy", "aria"), "ws_auth_reject": ("close", "handshake"),
    "http_semantics": ("demo", "aria"), "rate_limiter": ("bucket", "aria", "off"),
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def env_name(name: str) -> str:
    return "DATABASE_URL" if name == "database_url" else "DEMO_" + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _convert(name: str, kind: type, raw: str) -> Any:
    if kind is bool:
        if raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise SettingsError(f"{env_name(name)}/{flag_name(name)}={raw!r} is not a switch; give 1 or 0")
    if name in CHOICES:
        if raw not in CHOICES[name]:
            raise SettingsError(f"{env_name(name)}/{flag_name(name)}={raw!r} is not one of "
                                f"{', '.join(CHOICES[name])}")
        return raw
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(
            f"{env_name(name)}/{flag_name(name)}={raw!r} is not a {kind.__name__}; give a number"
        ) from None
    if kind in (int, float) and value < 0:
        raise SettingsError(f"{env_name(name)}/{flag_name(name)} must be >= 0, got {raw}")
    return value


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the environment, then `overrides` (flags; None values are skipped)."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    values: dict[str, Any] = {}
    for field in fields(Settings):
        kind = type(field.default)
        if overrides.get(field.name) is not None:
            values[field.name] = _convert(field.name, kind, str(overrides[field.name]))
        elif env_name(field.name) in environ:
            values[field.name] = _convert(field.name, kind, environ[env_name(field.name)])
    if values.get("strict"):
        values = {**STRICT_PRESET, **values}  # what was given explicitly wins over the preset
    settings = Settings(**values)
    settings.leak_sizes()  # fail now, not at the first request
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", settings.api_key_header):
        raise SettingsError(f"DEMO_API_KEY_HEADER={settings.api_key_header!r} is not a header name; "
                            "give one such as X-API-Key")
    if settings.context_messages < 1 or settings.cache_entries < 1 or settings.max_live_sessions < 1:
        raise SettingsError("context_messages, cache_entries and max_live_sessions must be >= 1")
    if settings.db_pool_size < 1:
        raise SettingsError("DEMO_DB_POOL_SIZE must be >= 1")
    if min(settings.aria_limit_burst_5s, settings.aria_limit_per_minute, settings.aria_limit_per_hour,
           settings.rate_limit_clients) < 1:
        raise SettingsError("DEMO_ARIA_LIMIT_* and DEMO_RATE_LIMIT_CLIENTS must be >= 1 "
                            "(turn the limiter off with DEMO_RATE_LIMITER=off)")
    return settings


def export_settings(settings: Settings, environ: dict[str, str] | None = None) -> None:
    """Write every setting into the environment, so worker processes rebuild the same Settings."""
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    for field in fields(Settings):
        environ[env_name(field.name)] = str(getattr(settings, field.name))


_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}


def _parse_size(text: str, name: str) -> int:
    digits = text.rstrip("bBkKmMiI")
    unit = text[len(digits):].lower()
    if not digits.isdigit() or unit not in _UNITS:
        raise SettingsError(f"DEMO_LEAKS: size {text!r} of {name!r} is not a byte count; "
                            "use e.g. native:1048576 or native:1MiB")
    return int(digits) * _UNITS[unit]


def parse_leaks(spec: str) -> dict[str, int]:
    """`"native:1MiB,session_state"` -> {"native": 1048576, "session_state": <default>}."""
    from .leaks import DEFAULT_BYTES  # leaks imports nothing of ours but this table

    sizes: dict[str, int] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, _, size = item.partition(":")
        name = name.strip()
        if name not in LEAK_NAMES:
            raise SettingsError(f"DEMO_LEAKS: unknown leak {name!r}; choose from {', '.join(LEAK_NAMES)}")
        if size.strip() and name in ("fd", "logger"):
            raise SettingsError(f"DEMO_LEAKS: {name!r} leaks one {'descriptor' if name == 'fd' else 'logger'} "
                                f"per {'session' if name == 'fd' else 'message'} and takes no size; "
                                f"write just {name!r}")
        sizes[name] = _parse_size(size.strip(), name) if size.strip() else DEFAULT_BYTES[name]
    return sizes


def knobs() -> tuple[Any, ...]:
    """Every setting as a memsoak.knobs.Knob (flag, environment variable, default, meaning), for the
    settings table. Imports memsoak: never called by the engine (its image installs memsoak/demo_engine/ and
    memsoak/profiler/ alone); `Settings` and `HELP` above stay the one definition."""
    from memsoak.knobs import Knob

    out = []
    for field in fields(Settings):
        choices = f" (one of {', '.join(CHOICES[field.name])})" if field.name in CHOICES else ""
        out.append(Knob(field.name, type(field.default), field.default, HELP[field.name] + choices,
                        secret=field.name == "api_key", cli=flag_name(field.name), env=env_name(field.name),
                        conf=False))
    return tuple(out)
