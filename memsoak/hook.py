"""HTTP client of the profiler hook (routes in docs/CONTRACTS.md), used only on the master.

Small and synchronous, on `requests` (a Locust dependency): under Locust the sockets are
gevent-patched, so a call blocks only the greenlet that makes it. (httpx cannot be used here: its
httpcore imports trio, which fails on gevent's patched `select`.) Every failure is a HookError with one line that names the hook URL.
"""
from __future__ import annotations

import os
from typing import Any

import requests


class HookError(RuntimeError):
    """The hook did not answer as the contract says; the message is one line."""


class HookClient:
    def __init__(self, url: str, token: str = "", timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        # Who is asking: lets a test (or the hook's logs) check that only the master polls.
        headers = {"User-Agent": "memsoak-harness", "X-Memsoak-Harness-Pid": str(os.getpid())}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers.update(headers)

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, **params: Any) -> Any:
        try:
            resp = self._session.request(method, self.url + path, params=params or None,
                                         timeout=self.timeout_s)
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
        return self._call("POST", f"/snapshots/{label}")

    def diff(self, base: str, head: str, top: int) -> dict[str, Any]:
        return self._call("GET", "/diff", base=base, head=head, top=top)

    def types_snapshot(self, label: str) -> dict[str, Any]:
        return self._call("POST", f"/types/{label}")

    def types_diff(self, base: str, head: str, top: int) -> dict[str, Any]:
        return self._call("GET", "/types/diff", base=base, head=head, top=top)
