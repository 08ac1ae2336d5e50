"""The locustfiles memsoak ships: `locust -f locustfiles` loads every `.py` here not starting with `_`.

`chat.py` holds the REST chat user, `stream.py` the WebSocket streaming user. Modules starting with
`_` are helpers (Locust skips them when loading the directory); `_mix_sweep.py` is the opt-in load
shape that sweeps the action mix: `locust -f locustfiles,locustfiles/_mix_sweep.py`.
"""
