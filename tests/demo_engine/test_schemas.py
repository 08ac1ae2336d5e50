"""Request bodies: text that would break storage is refused; a failure is summarised in one line."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from memsoak.demo_engine.schemas import MAX_CONTENT_CHARS, MessageIn, SessionIn, first_error


@pytest.mark.parametrize("body, status, says", [
    ({"content": "nul\x00"}, 422, "NUL"),
    ({"content": "lone \ud800"}, 422, "unicode"),
    ({"content": " \n\t"}, 422, "blank"),
    ({"content": "x" * (MAX_CONTENT_CHARS + 1)}, 413, "content"),
    ({"content": "ok", "enable_tools": "true"}, 422, "enable_tools"),
    ({}, 422, "content"),
])
def test_bad_messages_map_to_a_status_and_one_line(body: dict, status: int, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MessageIn.model_validate(body)
    got_status, message, detail = first_error(list(caught.value.errors()))
    assert got_status == status and says in message and "\n" not in message and detail


def test_good_bodies_keep_aria_extras_out_of_the_way() -> None:
    message = MessageIn.model_validate({"content": "hi", "enable_thinking": True, "trace_id": "t-1"})
    session = SessionIn.model_validate({"agent_id": "a", "metadata": {"k": 1}})
    assert (message.content, message.enable_thinking, message.enable_tools) == ("hi", True, False)
    assert session.agent_id == "a" and session.model is None


def test_invalid_json_is_a_400() -> None:
    status, message, _ = first_error([{"loc": ("body", 3), "msg": "JSON decode error", "type": "json_invalid"}])
    assert status == 400 and "not valid JSON" in message
