"""What the hook leaves in the engine's heap for good: few objects for its garbage collector to walk.

Every container the hook's modules create stays tracked by the engine's garbage collector, and each
full collection walks all of them. On an engine that churns small objects that is a measurable part
of the hook's cost (docs/hook.md, "the hook's own footprint"): before this test, starting the hook
in a stdlib HTTP engine added ~5,700 tracked objects under pyenv's 3.11.7 (dataclasses + inspect, importlib.metadata,
tracemalloc.py + pickle, hmac + hashlib); then ~3,000, most of them psutil's; now ~900, with /proc read
directly on Linux (memsoak/profiler/procinfo.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# imported by nothing the hook runs in sampled mode without a token; each was once, for good
NOT_IMPORTED = ("dataclasses", "inspect", "importlib.metadata", "tracemalloc", "pickle", "hmac", "hashlib",
                *(("psutil",) if os.path.exists("/proc/self/statm") else ()))
# measured: 921 under pyenv's 3.11.7, 2,708 in a venv of Debian's 3.11.2 (which has not loaded typing
# and contextlib at start; the hook imports them). Before procinfo: 3,015 and 4,557; before that 5,716
MAX_TRACKED = 3200

ENGINE = textwrap.dedent("""
    import gc, json, socket, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer   # the engine's own imports

    def get(port, path):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(f"GET {path} HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n".encode())
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        assert data.split(b" ", 2)[1] == b"200", data[:200]

    def settled():
        gc.collect()
        return len(gc.get_objects())

    before, modules = settled(), set(sys.modules)
    if sys.argv[1] == "hook":
        from memsoak import profiler
        hook = profiler.install(port=0, interval=0.05)
        assert hook.started and hook.alloc_mode == "sampled", (hook.error, hook.alloc_mode)
        # what the harness calls; /metrics (a Prometheus scrape) loads prometheus_client when it is
        # installed, the user's choice
        for path in ("/health", "/samples?since=0", "/health"):
            get(hook.port, path)
        time.sleep(0.3)   # a few samples taken
    print(json.dumps({"added": settled() - before, "modules": sorted(set(sys.modules) - modules)}))
""")


def _run(tmp_path, mode: str) -> dict:
    script = tmp_path / "engine.py"
    script.write_text(ENGINE)
    done = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "MEMSOAK_HOOK_TOKEN": ""})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_hook_adds_few_tracked_objects_and_no_heavy_modules(tmp_path) -> None:
    baseline = _run(tmp_path, "plain")
    hooked = _run(tmp_path, "hook")
    assert abs(baseline["added"]) < 50, baseline   # the measurement itself adds nothing
    heavy = [name for name in NOT_IMPORTED if name in hooked["modules"]]
    assert not heavy, f"the hook imported {heavy}: they stay in the engine's heap"
    assert 500 < hooked["added"] <= MAX_TRACKED, hooked["added"]
