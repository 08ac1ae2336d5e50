"""memsoak/hook.py's two timeouts against a real (slow) HTTP server on loopback.

(Lives here because the hook's owner maintains the client now; mirrors memsoak/hook.py.)
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from memsoak.hook import HookClient, HookError

DELAY_S = 1.0  # every route answers after this long


class _Slow(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        time.sleep(DELAY_S)
        body = json.dumps({"label": "x", "samples": [], "last_seq": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def slow_hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_polls_use_the_short_timeout_and_memory_routes_the_long_one(slow_hook: str) -> None:
    client = HookClient(slow_hook, timeout_s=DELAY_S / 4, slow_timeout_s=30.0)
    try:
        with pytest.raises(HookError, match=r"GET /samples .*did not answer within 0.25 s"):
            client.samples(since=0)
        with pytest.raises(HookError, match="did not answer"):
            client.health()
        assert client.snapshot("base")["label"] == "x"
        assert client.types_snapshot("base")["label"] == "x"
        assert client.diff("base", "head", 5)["label"] == "x"
        assert client.types_diff("base", "head", 5)["label"] == "x"
    finally:
        client.close()


def test_slow_timeout_is_never_shorter_than_the_poll_timeout() -> None:
    assert HookClient("http://127.0.0.1:1", timeout_s=120.0).slow_timeout_s == 120.0
    assert HookClient("http://127.0.0.1:1").slow_timeout_s == 60.0
    assert HookClient("http://127.0.0.1:1").timeout_s == 5.0
