"""An Aria-compatible chat engine with planted leaks: the thing memsoak soaks in demos and tests.

Start it with `memsoak-demo-engine` (= `python -m memsoak.demo_engine`) or `uvicorn memsoak.demo_engine.app:app`.
It serves Aria's chat API (sessions, messages, WebSocket streaming, health) over SQLite or
PostgreSQL, keeps the bounded in-memory state a real engine keeps, and, when asked through
`DEMO_LEAKS`, leaks in known places and amounts (see `memsoak.demo_engine.leaks`). It never imports
the profiler: memsoak hooks it from outside with `memsoak-run`.
"""
from .settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings", "create_app"]


def create_app(settings: Settings | None = None):  # type: ignore[no-untyped-def]
    """The ASGI app for `settings` (default: from the environment)."""
    from .app import create_app as build

    return build(settings or load_settings())
