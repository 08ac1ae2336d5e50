"""HTTP client of the profiler hook (routes in docs/CONTRACTS.md), used only on the master.

Small and synchronous, on `requests` (a Locust dependency): under Locust the sockets are
gevent-patched, so a call blocks only the greenlet that makes it. (httpx cannot be used here: its
httpcore imports trio, which fails on gevent's patched `select`.) Every failure is a HookError with one line that names the hook URL.

Two timeouts: polls (/samples, /health) answer in milliseconds, so a short one notices a stuck hook
within one poll; snapshots, diffs and type censuses run inside the engine with the GIL held and take
2-3 s per million traced blocks (docs/hook.md), so they get a long one.
"""
from __future__ import annotations

import os
from typing import Any

import requests


class HookError(RuntimeError):
    """The hook did not answer as the contract says; the message is one line."""


class HookClient:
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

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, slow: bool = False, **params: Any) -> Any:
        try:
            resp = self._session.request(method, self.url + path, params=params or None,
                                         timeout=self.slow_timeout_s if slow else self.timeout_s)
        except requests.Timeout:
            waited = self.slow_timeout_s if slow else self.timeout_s
            raise HookError(f"hook {method} {path} at {self.url} did not answer within {waited:g} s") from None
        except requests.RequestException as exc:
            raise HookError(f"hook at {self.url} unreachable ({type(exc).__name__})") from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("error", resp.text)
            except ValueError:
                detail = resp.text
            raise HookError(f"hook {method} {path} answered {resp.status_code}: {str(detail)[:200]}")
        try:
            return resp.json()
        except ValueError:
            raise HookError(f"hook {method} {path} answered non-JSON") from None

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def samples(self, since: int) -> dict[str, Any]:
        return self._call("GET", "/samples", since=since)

    def snapshot(self, label: str) -> dict[str, Any]:
        return self._call("POST", f"/snapshots/{label}", slow=True)

    def diff(self, base: str, head: str, top: int) -> dict[str, Any]:
        return self._call("GET", "/diff", slow=True, base=base, head=head, top=top)

    def types_snapshot(self, label: str) -> dict[str, Any]:
        return self._call("POST", f"/types/{label}", slow=True)

    def types_diff(self, base: str, head: str, top: int) -> dict[str, Any]:
        return self._call("GET", "/types/diff", slow=True, base=base, head=head, top=top)
