"""The hook's HTTP API (routes in docs/CONTRACTS.md) on its own thread and port.

A stdlib ThreadingHTTPServer, independent of the engine's web framework: it answers while the
engine's event loop is stuck. Handler threads are named `memsoak-http-*` (excluded from the thread
count), are daemons, and a request that stalls times out. A `?pid=N` naming another process of the
tree is forwarded to that peer's hook. Every handler failure becomes a JSON 500 and one count under
`http` in the error table: nothing propagates into the engine.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from . import peers
from .sampler import ErrorCounts
from .snapshots import AllocTrackingOff, SnapshotStore, TypeCensusStore, UnknownLabel

LABEL = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_TOP = 1000
# Bounded cost for ANY local caller (no token needed on loopback): /samples answers at most
# SAMPLES_PAGE_MAX samples (page forward with since=last seq), and the samples served per second and
# the memory routes (snapshots, diffs, censuses: the GIL held for seconds) draw on token buckets
# shared by all callers. The harness needs ~1 sample/s and a handful of memory calls per run; a
# caller beyond the budget gets 429 with Retry-After at the cost of parsing its request line.
SAMPLES_PAGE_DEFAULT = 1000
SAMPLES_PAGE_MAX = 5000
SAMPLES_BUDGET = (20_000, 2_000.0)   # burst, samples per second
MEMORY_BUDGET = (10, 0.25)           # burst, memory-route calls per second (one per 4 s)


class Budget:
    """A token bucket: `take(n)` spends n tokens or answers how long until it could."""

    def __init__(self, burst: float, per_s: float) -> None:
        self.burst, self.per_s = float(burst), float(per_s)
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self, n: float = 1.0) -> float:
        """0.0 when spent; else the seconds to wait (nothing spent)."""
        if n <= 0:
            return 0.0
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_s)
            self.stamp = now
            n = min(n, self.burst)
            if self.tokens >= n:
                self.tokens -= n
                return 0.0
            return (n - self.tokens) / self.per_s


class OverBudget(Exception):
    def __init__(self, what: str, wait_s: float) -> None:
        super().__init__(f"{what} budget spent (shared by every caller of this hook): retry in "
                         f"{wait_s:.1f} s, or page with a smaller limit")
        self.wait_s = wait_s


class Backend(Protocol):
    pid: int
    host: str
    token: str | None
    peer_dir: str | None
    errors: ErrorCounts
    snapshots: SnapshotStore | None
    censuses: TypeCensusStore | None

    def health(self) -> dict[str, Any]: ...
    def samples(self, since: int, limit: int) -> dict[str, Any]: ...
    def metrics(self) -> tuple[str, bytes]: ...


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restarted engine must rebind while old sockets sit in TIME_WAIT
    backend: Backend
    _counter = 0
    samples_budget: Budget
    memory_budget: Budget

    def process_request(self, request: Any, client_address: Any) -> None:
        _Server._counter += 1
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  name=f"memsoak-http-{_Server._counter}", daemon=True)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # broken pipes from impatient clients are not the engine's problem


def _int_param(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name, [None])[0]
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}={raw!r} is not an integer: pass e.g. {name}={default}")
    return min(max(value, low), high)


def _samples_to_send(backend: Any, since: int, limit: int) -> int:
    """What an answer will hold (its cost), known before decoding a sample; `limit` when unknown."""
    ring = getattr(backend, "ring", None)
    try:
        first, last = int(ring.first_seq), int(ring.last_seq)
    except (AttributeError, TypeError, ValueError):
        return limit
    return max(0, min(limit, last - max(since, first - 1)))


def _label(raw: str) -> str:
    label = urllib.parse.unquote(raw)
    if not LABEL.match(label):
        raise ApiError(400, f"bad label {label!r}: use 1-64 of letters, digits, '_', '.', '-'")
    return label


class Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30
    server_version = "memsoak-hook"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the engine's stderr is the engine's

    # Why the next two override the stdlib: CPython 3.11's type attribute cache keeps a reference to
    # the name of every recent attribute lookup (up to 4096), even a name built afresh per call.
    # http.server looks up getattr(self, 'do_' + command) per request, and its Date header goes
    # through email.utils.formatdate -> datetime.timetuple(), which looks up time.struct_time by a
    # fresh name: measured with /samples polled at 1 Hz on an idle engine, these (and urlsplit's
    # 128-entry cache, avoided in _dispatch) grew the traced heap ~20 KB/min for minutes, which a
    # soak reads as the engine's Python heap growing. Dispatch here is by a fixed table instead.
    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return  # parse_request already answered with the error
            method = {"GET": self.do_GET, "POST": self.do_POST}.get(self.command)
            if method is None:
                self.send_error(501, f"unsupported method ({self.command!r}): use GET or POST")
                return
            method()
            self.wfile.flush()
        except TimeoutError:  # a client that stalls mid-request: drop the connection
            self.close_connection = True

    def date_time_string(self, timestamp: float | None = None) -> str:
        year, month, day, hour, minute, second, weekday, _yday, _dst = time.gmtime(timestamp)
        return (f"{self.weekdayname[weekday]}, {day:02d} {self.monthname[month]} {year} "
                f"{hour:02d}:{minute:02d}:{second:02d} GMT")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        backend = self.server.backend
        try:
            # not urlsplit(): it keeps the last 128 distinct URLs in an lru_cache, and every poll
            # (?since=N) is a new one
            path, _sep, raw_query = self.path.partition("?")
            query = urllib.parse.parse_qs(raw_query.partition("#")[0])
            if not self._authorized(backend, query):
                raise ApiError(401, "missing or wrong token: send 'Authorization: Bearer TOKEN' "
                                    "or ?token=TOKEN (MEMSOAK_HOOK_TOKEN)")
            if "pid" in query and self._forward(backend, method, path, query):
                return
            if method == "POST" and int(self.headers.get("Content-Length") or 0):
                self.rfile.read(int(self.headers["Content-Length"]))
            self._route(backend, method, path.rstrip("/") or "/", query)
        except ApiError as error:
            self._json(error.status, {"error": str(error)})
        except OverBudget as error:
            self._send(429, "application/json", json.dumps({"error": str(error)}).encode(),
                       {"Retry-After": str(max(1, int(error.wait_s + 0.999)))})
        except UnknownLabel as error:
            self._json(404, {"error": error.message})
        except AllocTrackingOff as error:
            self._json(409, {"error": error.message})
        except Exception as error:
            backend.errors.add("http", error)
            self._json(500, {"error": f"hook failed: {type(error).__name__}: {error}"[:300]})

    def _authorized(self, backend: Backend, query: dict[str, list[str]]) -> bool:
        if not backend.token:
            return True
        header = self.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else query.get("token", [""])[0]
        import hmac  # only with a token: hashlib & co stay out of the engine otherwise
        return hmac.compare_digest(given.encode(), backend.token.encode())

    def _forward(self, backend: Backend, method: str, path: str,
                 query: dict[str, list[str]]) -> bool:
        raw = query["pid"][0]
        if raw == str(backend.pid):
            return False
        peer = next((p for p in peers.list_peers(backend.peer_dir, backend.pid)
                     if str(p["pid"]) == raw), None)
        if peer is None:
            raise ApiError(404, f"no hooked process with pid {raw} in this tree: see /health peers")
        rest = [(key, value) for key, values in query.items() if key not in ("pid", "token")
                for value in values]
        target = path + ("?" + urllib.parse.urlencode(rest) if rest else "")
        status, content_type, body = peers.forward(backend.host, peer["port"], method, target,
                                                   backend.token)
        self._send(status, content_type or "application/json", body)
        return True

    def _route(self, backend: Backend, method: str, path: str, query: dict[str, list[str]]) -> None:
        parts = path.strip("/").split("/")
        top = _int_param(query, "top", 20, 1, MAX_TOP)
        if method == "GET" and path == "/health":
            return self._json(200, backend.health())
        if method == "GET" and path == "/samples":
            since = _int_param(query, "since", 0, -1, 2**62)
            limit = _int_param(query, "limit", SAMPLES_PAGE_DEFAULT, 1, SAMPLES_PAGE_MAX)
            wait_s = self.server.samples_budget.take(_samples_to_send(backend, since, limit))
            if wait_s:
                raise OverBudget("/samples", wait_s)
            return self._json(200, backend.samples(since, limit))
        if method == "GET" and path == "/metrics":
            content_type, body = backend.metrics()
            return self._send(200, content_type, body)
        if parts[0] in ("snapshots", "diff", "types"):
            return self._memory_route(backend, method, parts, query, top)
        raise ApiError(404, f"no route {method} {path}: see docs/CONTRACTS.md (hook HTTP API)")

    def _memory_route(self, backend: Backend, method: str, parts: list[str],
                      query: dict[str, list[str]], top: int) -> None:
        if backend.snapshots is None or backend.censuses is None:
            raise ApiError(409, "snapshots, diffs and type censuses need the hook inside the engine "
                                "(--pid mode samples from outside): run the engine under memsoak-run")
        if parts == ["snapshots"] and method == "GET":
            return self._json(200, {"labels": backend.snapshots.labels()})
        wait_s = self.server.memory_budget.take(1)
        if wait_s:
            raise OverBudget("snapshot/diff/census", wait_s)
        if len(parts) == 2 and parts[0] == "snapshots" and method == "POST":
            return self._json(200, backend.snapshots.take(_label(parts[1])))
        if parts == ["diff"] and method == "GET":
            base, head = self._pair(query, "/diff")
            return self._json(200, backend.snapshots.diff(base, head, top))
        if parts == ["types"] and method == "GET":
            return self._json(200, backend.censuses.current(top))
        if parts == ["types", "diff"] and method == "GET":
            base, head = self._pair(query, "/types/diff")
            return self._json(200, backend.censuses.diff(base, head, top))
        if len(parts) == 2 and parts[0] == "types" and method == "POST":
            return self._json(200, backend.censuses.take(_label(parts[1])))
        raise ApiError(404, f"no route {method} /{'/'.join(parts)}: see docs/CONTRACTS.md")

    @staticmethod
    def _pair(query: dict[str, list[str]], route: str) -> tuple[str, str]:
        if "base" not in query or "head" not in query:
            raise ApiError(400, f"{route} needs both labels: {route}?base=L1&head=L2")
        return _label(query["base"][0]), _label(query["head"][0])

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, "application/json", json.dumps(payload).encode())

    def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class HookServer:
    """Binds at construction (so the caller learns at once whether the port was free)."""

    def __init__(self, backend: Backend, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_BoundServer", (_Server,), {"address_family": family})
        self._server = server_class((host, port), Handler)
        self._server.backend = backend
        self._server.samples_budget = Budget(*SAMPLES_BUDGET)
        self._server.memory_budget = Budget(*MEMORY_BUDGET)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="memsoak-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        try:
            if self._thread is not None and self._thread.is_alive():
                self._server.shutdown()  # waits at most one poll_interval
        finally:
            self._server.server_close()

    def close_inherited(self) -> None:
        """In a forked child: drop our copy of the parent's listening socket, touch nothing else."""
        try:
            self._server.socket.close()
        except OSError:
            pass
