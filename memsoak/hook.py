"""HTTP client of the profiler hook (routes in docs/CONTRACTS.md), used only on the master.

Small and synchronous, on `requests` (a Locust dependency): under Locust the sockets are
gevent-patched, so a call blocks only the greenlet that makes it. (httpx cannot be used here: its
httpcore imports trio, which fails on gevent's patched `select`.) Every failure is a HookError with one line that names the hook URL.

Two timeouts: polls (/samples, /health) answer in milliseconds, so a short one notices a stuck hook
within one poll; snapshots, diffs and type censuses run inside the engine with the GIL held and take
2-3 s per million traced blocks (docs/hook.md), so they get a long one.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

import requests

from memsoak.contract import MB, SAMPLE_INT_FIELDS, SAMPLE_NUMBER_FIELDS  # noqa: F401


class HookError(RuntimeError):
    """The hook did not answer as the contract says; the message is one line."""


class HookAnswerError(HookError):
    """The hook answered, but not with what the contract says (wrong JSON shape or types)."""


class HookBusy(HookError):
    """The hook answered 429: its budget, shared by every local caller, is spent for now. The
    engine is alive and its ring keeps the samples, so this is not a lost poll."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


MAX_BODY_BYTES = 64 * MB    # no answer of the contract comes near this: a runaway is cut off


def _socket_is_green() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("socket"))


def check_samples(answer: Any) -> dict[str, Any]:
    """An answer of GET /samples as the contract says, or HookAnswerError naming what is wrong."""
    if not isinstance(answer, dict):
        raise HookAnswerError(f"hook GET /samples answered a JSON {type(answer).__name__}, not an object")
    samples = answer.get("samples")
    if not isinstance(samples, list):
        raise HookAnswerError("hook GET /samples answered without a \"samples\" list")
    for sample in samples:
        if not isinstance(sample, dict):
            raise HookAnswerError(f"hook GET /samples: a sample is a JSON {type(sample).__name__}, not an object")
        seq = sample.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise HookAnswerError(f"hook GET /samples: sample seq {str(seq)[:40]!r} is not a non-negative integer")
        for name in SAMPLE_NUMBER_FIELDS:
            value = sample.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise HookAnswerError(f"hook GET /samples: sample {seq} field {name}={str(value)[:40]!r} "
                                      "is not a number")
    for name in ("last_seq", "first_seq", "dropped"):
        value = answer.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise HookAnswerError(f"hook GET /samples: {name}={str(value)[:40]!r} is not an integer")
    return answer


def _object(answer: Any, route: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise HookAnswerError(f"hook {route} answered a JSON {type(answer).__name__}, not an object")
    return answer


class HookClient:
    """Every call has an overall deadline (connect, headers and body together), not only a per-read
    timeout: a hook that trickles one byte a second would otherwise hold a call for ever."""

    def __init__(self, url: str, token: str = "", timeout_s: float = 5.0,
                 slow_timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        # Who is asking: lets a test (or the hook's logs) check that only the master polls.
        headers = {"User-Agent": "memsoak-harness", "X-Memsoak-Harness-Pid": str(os.getpid())}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.timeout_s = timeout_s
        # never shorter than the poll timeout: a caller that raised timeout_s meant it for all calls
        self.slow_timeout_s = max(slow_timeout_s, timeout_s)
        self._session = requests.Session()
        self._session.headers.update(headers)
        self._green = _socket_is_green()

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, slow: bool = False, **params: Any) -> Any:
        waited = self.slow_timeout_s if slow else self.timeout_s
        late = HookError(f"hook {method} {path} at {self.url} did not answer within {waited:g} s")
        if self._green:
            import gevent
            timer = gevent.Timeout(waited, late)
            timer.start()
            try:
                return self._request(method, path, waited, params)
            finally:
                timer.close()
        return self._request(method, path, waited, params)

    def _request(self, method: str, path: str, waited: float, params: dict[str, Any]) -> Any:
        deadline = time.monotonic() + waited
        late = f"hook {method} {path} at {self.url} did not answer within {waited:g} s"
        try:
            resp = self._session.request(method, self.url + path, params=params or None,
                                         timeout=waited, stream=True)
            try:
                chunks, size = [], 0
                while True:
                    if time.monotonic() > deadline:
                        raise HookError(late)
                    chunk = resp.raw.read(65536)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise HookError(f"hook {method} {path} answered more than {MAX_BODY_BYTES >> 20} MB")
                    chunks.append(chunk)
                body = b"".join(chunks)
            finally:
                resp.close()
        except requests.Timeout:
            raise HookError(late) from None
        except (requests.RequestException, OSError) as exc:
            raise HookError(f"hook at {self.url} unreachable ({type(exc).__name__})") from None
        except Exception as exc:   # urllib3's protocol errors while streaming the body
            if isinstance(exc, HookError):
                raise
            raise HookError(f"hook {method} {path} at {self.url} broke off its answer "
                            f"({type(exc).__name__})") from None
        if resp.status_code >= 400:
            try:
                answer = json.loads(body)
                detail = answer.get("error", body) if isinstance(answer, dict) else body
            except ValueError:
                detail = body.decode("utf-8", "replace")
            message = f"hook {method} {path} answered {resp.status_code}: {str(detail)[:200]}"
            if resp.status_code == 429:
                try:
                    retry = float(resp.headers.get("Retry-After") or 1)
                except ValueError:
                    retry = 1.0
                raise HookBusy(message, min(max(retry, 0.0), 60.0))
            raise HookError(message)
        try:
            return json.loads(body)
        except ValueError:
            raise HookAnswerError(f"hook {method} {path} answered non-JSON") from None

    def health(self) -> dict[str, Any]:
        return _object(self._call("GET", "/health"), "GET /health")

    def samples(self, since: int, limit: int = 600) -> dict[str, Any]:
        return check_samples(self._call("GET", "/samples", since=since, limit=limit))

    def snapshot(self, label: str) -> dict[str, Any]:
        return _object(self._call("POST", f"/snapshots/{label}", slow=True), "POST /snapshots")

    def diff(self, base: str, head: str, top: int) -> dict[str, Any]:
        return _object(self._call("GET", "/diff", slow=True, base=base, head=head, top=top), "GET /diff")

    def types_snapshot(self, label: str) -> dict[str, Any]:
        return _object(self._call("POST", f"/types/{label}", slow=True), "POST /types")

    def types_diff(self, base: str, head: str, top: int) -> dict[str, Any]:
        return _object(self._call("GET", "/types/diff", slow=True, base=base, head=head, top=top),
                       "GET /types/diff")
