"""The chat user: a realistic session lifecycle against the Aria chat REST API.

Each task is one session: create it, send a number of varied messages with think time between them,
sometimes read it back, then end it or leave it open (one in three ended by default; every range and
ratio is a Locust argument, see `memsoak/locustfiles/_options.py`). Importing `memsoak.plugin` registers the
memory arguments and listeners.
"""
from __future__ import annotations

from locust import task

import memsoak.plugin  # noqa: F401  (registers memsoak's arguments and listeners)
from memsoak.locustfiles._session import ChatSessionUser


class ChatUser(ChatSessionUser):
    """Create a session, talk in it, maybe read it back, end it or leave it open."""

    weight = 3

    @task
    def session(self) -> None:
        self.require_mix()
        session_id = self.create_session()
        if session_id is None:
            return
        count = self.rnd.randint(self.mix.messages_min, self.mix.messages_max)
        for number in range(count):
            if number:
                self.think()
            self.send_message(session_id)
        self.finish_session(session_id)

    def send_message(self, session_id: str) -> None:
        base = self.mix.api_base
        self.call("POST", f"{base}/sessions/{session_id}/messages",
                  f"{base}/sessions/{{id}}/messages", {"content": self.messages.next()})
