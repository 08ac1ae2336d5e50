"""memsoak's Locust plugin: importing it registers the arguments, and a `MemsoakPlugin` on each
environment that measures when Locust's `init` fires.

The locustfiles import it (`import memsoak.plugin`); nothing else is needed. See `listeners.py` for
the plugin object and what runs when, `soak.py` for one run's measuring loop, `webui.py` for the
Memory tab. Every module of the plugin, and the analysis that writes the report, is imported here,
at start: a broken install fails before any load is sent, not at the end of a 24-hour soak.
"""
from locust import events

from memsoak.plugin import arguments  # noqa: F401  (registers the arguments on import)
from memsoak.plugin.listeners import MemsoakPlugin, register

events.init.add_listener(register)

__all__ = ["MemsoakPlugin", "register"]
