"""memsoak's Locust plugin: importing it registers the arguments and the event listeners.

The locustfiles import it (`import memsoak.plugin`); nothing else is needed. See `listeners.py` for
what runs when, `soak.py` for one run's measuring loop, `webui.py` for the Memory tab.
"""
from memsoak.plugin import arguments, listeners  # noqa: F401  (registration happens on import)
