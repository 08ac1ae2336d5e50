"""A real fake hook process for fault injection: `python fake_hook.py PORT MODE [TOKEN]`.

Serves the hook's routes (docs/CONTRACTS.md) with a synthetic sample once a second, and misbehaves
as MODE says:
  ok               answers as the contract says
  trickle-samples  GET /samples: status line and headers, then the body one byte a second
  trickle-health   GET /health: the same trickle (the harness's start-up check)
  list-samples     GET /samples answers the JSON `[1, 2, 3]`
  typed-samples    GET /samples: samples whose rss_bytes is "big"
  garbage-after-N  (e.g. garbage-after-8) answers as ok for N s after the first /samples, then
                   typed-samples
  token            requires `Authorization: Bearer TOKEN` on every route
  busy-A-B         (e.g. busy-6-18) GET /samples answers 429 with Retry-After from A s to B s after
                   the first /samples (another caller spent the hook's shared budget), ok otherwise
Prints "ready" when listening. Stdlib only; ends on SIGTERM/SIGINT.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PORT, MODE = int(sys.argv[1]), sys.argv[2]
TOKEN = sys.argv[3] if len(sys.argv) > 3 else ""
STARTED = time.monotonic()
START_WALL = time.time()


def sample(seq: int) -> dict[str, Any]:
    return {"seq": seq, "t_mono": STARTED + seq, "t_wall": START_WALL + seq, "pid": os.getpid(),
            "rss_bytes": 50_000_000 + 1000 * (seq % 7), "vms_bytes": 200_000_000, "tree_rss_bytes": None,
            "tree_procs": 1, "uss_bytes": None, "traced_current_bytes": None, "traced_peak_bytes": None,
            "allocated_blocks": 100_000 + seq % 5, "gc_count_0": 1, "gc_count_1": 0, "gc_count_2": 0,
            "gc_collections_0": 1, "gc_collections_1": 0, "gc_collections_2": 0, "gc_objects": None,
            "open_fds": 10, "threads": 2, "asyncio_tasks": None, "sample_cost_us": 100, "hook_errors": 0}


def last_seq() -> int:
    return int(time.monotonic() - STARTED) + 1


FIRST_POLL: list[float] = []


def garbage_now() -> bool:
    if MODE == "typed-samples":
        return True
    if MODE.startswith("garbage-after-"):
        if not FIRST_POLL:
            FIRST_POLL.append(time.monotonic())
        return time.monotonic() - FIRST_POLL[0] > float(MODE.rsplit("-", 1)[1])
    return False


def busy_now() -> bool:
    if not MODE.startswith("busy-"):
        return False
    if not FIRST_POLL:
        FIRST_POLL.append(time.monotonic())
    start, end = (float(part) for part in MODE.split("-")[1:3])
    return start <= time.monotonic() - FIRST_POLL[0] < end


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any, trickle: bool = False) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not trickle:
            self.wfile.write(body)
            return
        for byte in body:   # one byte a second: every read answers within any per-read timeout
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(1.0)

    def _route(self) -> None:
        if TOKEN and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"error": "missing or wrong token"})
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path, _, query = self.path.partition("?")
        params = dict(part.partition("=")[::2] for part in query.split("&") if part)
        if path == "/health":
            return self._send(200, {"pid": os.getpid(), "last_seq": last_seq(), "tracing": False,
                                    "config": {"token": bool(TOKEN)}, "peers": []},
                              trickle=MODE == "trickle-health")
        if path == "/samples":
            since = int(params.get("since", 0))
            if busy_now():
                body = json.dumps({"error": "budget spent; retry later"}).encode()
                self.send_response(429)
                self.send_header("Content-Type", "application/json")
                self.send_header("Retry-After", "1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return None
            if MODE == "list-samples":
                return self._send(200, [1, 2, 3])
            samples = [sample(seq) for seq in range(max(since + 1, 1), last_seq() + 1)]
            if garbage_now():
                for item in samples:
                    item["rss_bytes"] = "big"
            return self._send(200, {"samples": samples, "last_seq": last_seq(), "first_seq": 1, "dropped": 0},
                              trickle=MODE == "trickle-samples")
        if path.startswith("/snapshots/") or path.startswith("/types/") and self.command == "POST":
            return self._send(200, {"label": path.rsplit("/", 1)[-1], "taken_at": time.time()})
        if path == "/diff":
            return self._send(200, {"base": params.get("base"), "head": params.get("head"),
                                    "total_size_diff": 0, "total_count_diff": 0, "by_size": [], "by_count": []})
        if path == "/types/diff":
            return self._send(200, {"base": params.get("base"), "head": params.get("head"), "by_type": []})
        return self._send(404, {"error": f"no route {path}"})

    do_GET = do_POST = _route


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("ready", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
