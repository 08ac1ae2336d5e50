"""The locustfiles memsoak ships: `locust -f memsoak/locustfiles` loads every `.py` here not starting with `_`.

`chat.py` holds the REST chat user (ChatUser, weight 3), `stream.py` the WebSocket streaming user
(StreamUser, weight 1); both import `memsoak.plugin`, which registers memsoak's arguments and
listeners. Modules starting with `_` are helpers that Locust skips when loading the directory.

Run against an engine started under `memsoak-run` (hook on 127.0.0.1:9477 by default):

    locust -f memsoak/locustfiles --headless -H http://127.0.0.1:8000 -u 10 -r 5 -t 5m
    locust -f memsoak/locustfiles -H http://127.0.0.1:8000            # web UI, with a Memory tab

The mix-sweep load shape is opt-in (Locust would otherwise use it for every run, and a second shape
file would make it pick one): `locust -f memsoak/locustfiles,memsoak/locustfiles/_mix_sweep.py ...`.
Every setting is a Locust argument, an environment variable `MEMSOAK_<NAME>` and a locust.conf key;
see `locust.conf.example` next to this file.
"""
