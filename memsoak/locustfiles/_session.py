"""What both chat users share: per-user mix and headers, request checking, session create/read/end.

Request names are templated (`/api/engine/chat/sessions/{id}`) so Locust keeps one stats row per
route, not one per session. Any 4xx/429/5xx is a failure whose error names the status, so a report
shows "HTTP 429 Too Many Requests" instead of hiding rate limiting inside a latency figure.
"""
from __future__ import annotations

import dataclasses
import http
import itertools
import logging
import random
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser
from locust.exception import StopUser

from memsoak.locustfiles._content import MessageFactory
import memsoak.locustfiles._options  # noqa: F401  (registers the mix arguments)
from memsoak.locustfiles._mix import MixError, MixOptions

log = logging.getLogger("memsoak.users")
_user_numbers = itertools.count(1)


def status_error(status: int, error: Any = None) -> str | None:
    """The failure text for a status (None when the status is a success)."""
    if status == 0:
        return f"connection error: {type(error).__name__ if error else 'no response'}"
    if status >= 400:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "error"
        return f"HTTP {status} {phrase}"
    return None


class ChatSessionUser(FastHttpUser):
    """Base of the chat users: knows the API, the mix and its own headers. Not run by itself."""

    abstract = True
    # Overrides of MixOptions fields; the mix-sweep shape's user classes set these to skew the
    # action mix of a phase (e.g. many short sessions, or long sessions with many messages).
    profile: ClassVar[dict[str, Any]] = {}

    def on_start(self) -> None:
        self.user_number = next(_user_numbers)
        self.rnd = random.Random()
        self.mix = self.load_mix()
        if self.mix is not None:
            self.messages = MessageFactory(self.mix.words_min, self.mix.words_max)

    def load_mix(self) -> MixOptions | None:
        try:
            mix = MixOptions.from_parsed(self.environment.parsed_options)
            return dataclasses.replace(mix, **self.profile) if self.profile else mix
        except MixError:
            return None  # already reported once at init / test start

    def require_mix(self) -> MixOptions:
        if self.mix is None:
            raise StopUser()
        return self.mix

    def headers(self) -> dict[str, str]:
        worker_index = getattr(self.environment.runner, "worker_index", 0) or 0
        return {"Content-Type": "application/json",
                **self.mix.headers(self.user_number, worker_index)}

    def think(self) -> None:
        self.wait_seconds(self.rnd.uniform(self.mix.think_min_s, self.mix.think_max_s))

    def wait_seconds(self, seconds: float) -> None:
        # A gevent sleep: Locust can kill the user greenlet mid-think when the test stops.
        gevent.sleep(seconds)

    def wait_time(self) -> float:  # between sessions
        if self.mix is None:
            return 1.0
        return self.rnd.uniform(self.mix.think_min_s, self.mix.think_max_s)

    # --- one call each; return the JSON body on success, None on failure -------------------------
    def call(self, method: str, path: str, name: str, body: Any = None) -> Any | None:
        kwargs: dict[str, Any] = {"headers": self.headers(), "name": name, "catch_response": True}
        if body is not None:
            kwargs["json"] = body
        with self.client.request(method, path, **kwargs) as resp:
            error = status_error(resp.status_code, getattr(resp, "error", None))
            if error:
                resp.failure(error)
                return None
            try:
                return resp.json() if resp.content else {}
            except ValueError:
                resp.failure(f"HTTP {resp.status_code} body is not JSON")
                return None

    def create_session(self) -> str | None:
        body: dict[str, Any] = {"title": f"soak {self.user_number}-{self.rnd.randrange(10**6)}"}
        if self.mix.agent_id:
            body["agent_id"] = self.mix.agent_id
        if self.mix.model:
            body["model"] = self.mix.model
        base = self.mix.api_base
        created = self.call("POST", f"{base}/sessions", f"{base}/sessions", body)
        return str(created["id"]) if isinstance(created, dict) and "id" in created else None

    def read_session(self, session_id: str) -> None:
        base = self.mix.api_base
        self.call("GET", f"{base}/sessions/{session_id}", f"{base}/sessions/{{id}}")

    def end_session(self, session_id: str) -> None:
        base = self.mix.api_base
        self.call("DELETE", f"{base}/sessions/{session_id}", f"{base}/sessions/{{id}}")

    def finish_session(self, session_id: str) -> None:
        """Sometimes read the session back; end it or leave it open, by the configured ratios."""
        if self.rnd.random() < self.mix.read_back_ratio:
            self.read_session(session_id)
        if self.rnd.random() < self.mix.end_ratio:
            self.end_session(session_id)
