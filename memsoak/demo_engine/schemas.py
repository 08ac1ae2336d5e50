"""Request bodies of the chat API and the one-line summary of a validation failure.

Text fields refuse what would break storage further down (NUL characters, which PostgreSQL
rejects, and lone surrogates, which cannot be encoded), so a bad body is a 4xx, never a 500.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, field_validator

MAX_CONTENT_CHARS = 100_000


def clean_text(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return text


ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_text)]


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # Aria accepts more fields; we ignore them
    agent_id: ShortText | None = None
    model: ShortText | None = None
    title: Annotated[str, Field(max_length=500), AfterValidator(clean_text)] | None = None
    session_type: ShortText | None = None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    content: Annotated[str, Field(min_length=1, max_length=MAX_CONTENT_CHARS), AfterValidator(clean_text)]
    enable_thinking: StrictBool = False
    enable_tools: StrictBool = False

    @field_validator("content")
    @classmethod
    def _not_blank(cls, content: str) -> str:
        if not content.strip():
            raise ValueError("must not be blank")
        return content


def first_error(errors: list[dict[str, Any]]) -> tuple[int, str, list[dict[str, Any]]]:
    detail = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in errors]
    if any(e["type"] == "json_invalid" for e in detail):
        return 400, "request body is not valid JSON; send a JSON object", detail
    first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
    where = ".".join(part for part in first["loc"] if part != "body") or "body"
    status = 413 if first.get("type") == "string_too_long" and where == "content" else 422
    return status, f"invalid field {where}: {first['msg']}", detail
