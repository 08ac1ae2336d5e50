"""memsoak, the Locust side: the plugin the locustfiles import, the hook client, the `memsoak` CLI.

`memsoak.plugin` registers arguments and listeners with Locust; `memsoak.hook` talks to the profiler
hook over HTTP; `memsoak.cli` dispatches the subcommands in `memsoak/commands/`.
"""
__version__ = "0.1.0"
