"""The chat users' mix settings as plain data: names, defaults, validation, header templates.

No Locust import here, so the settings can be checked (and unit-tested) anywhere; `_options.py`
registers them as Locust arguments. Every knob that shapes the load (session lifecycle, think time,
message size, paths, auth) is one entry of MIX_KNOBS.
"""
from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass
from typing import Any

from memsoak.knobs import Knob

IGNORED_FRAMES = ("pong", "ping", "stream_start", "iteration_start", "iteration_end", "thinking",
                  "tool_call", "tool_result", "usage")
# Each knob is a Locust argument (memsoak/knobs.py naming: --think-max-s, MEMSOAK_THINK_MAX_S,
# think-max-s in locust.conf); MixOptions below is the typed object they are parsed into once.
MIX_KNOBS: tuple[Knob, ...] = (
    Knob("api_base", str, "/api/engine/chat", "Base path of the chat REST API (sessions live under it)"),
    Knob("ws_path", str, "/ws/chat/{id}", "WebSocket path of the streaming endpoint; {id} is the session id"),
    Knob("api_key_header", str, "X-API-Key", "Name of the header that carries the API key"),
    Knob("api_key", str, "demo-key", "API key sent in --api-key-header (and as ?api_key= on WebSockets)", secret=True),
    Knob("extra_headers", str, "",
         "Extra headers 'Name: value; Name2: value'; values may use {user_index}, {worker_index} (fixed per "
         "user) and {uuid}, {rand} (new on every request: never in a header the engine keys state on, such "
         "as X-Forwarded-For)"),
    Knob("agent_id", str, "", "agent_id sent when creating a session (empty: omitted)"),
    Knob("model", str, "", "model sent when creating a session (empty: omitted)"),
    Knob("messages_min", int, 2, "Fewest messages a session sends"),
    Knob("messages_max", int, 6, "Most messages a session sends"),
    Knob("think_min_s", float, 0.5, "Shortest think time between two messages, seconds"),
    Knob("think_max_s", float, 2.0, "Longest think time between two messages, seconds"),
    Knob("words_min", int, 3, "Fewest words in a message"),
    Knob("words_max", int, 60, "Most words in a message"),
    Knob("read_back_ratio", float, 0.3, "Probability that a session is read back (GET) after its messages"),
    Knob("end_ratio", float, 1 / 3, "Probability that a session is ended (DELETE) rather than left open"),
    # The streaming protocol (StreamUser). The defaults cover both the frames the real Aria engine
    # sends (aria_engine/streaming.py: stream_start, content, stream_end, a keepalive pong, ...) and
    # the ones its docstring documents (token, done).
    Knob("ws_token_frames", str, "token,content", "WebSocket frame types that carry answer text (first one: TTFT)"),
    Knob("ws_end_frames", str, "done,stream_end", "WebSocket frame types that end a reply"),
    Knob("ws_error_frames", str, "error", "WebSocket frame types that are an error answer (a failed reply)"),
    Knob("ws_ignore_frames", str, ",".join(IGNORED_FRAMES),
         "WebSocket frame types read and ignored (keepalives, progress); any other type is logged once"),
    Knob("ws_reply_timeout_s", float, 120.0,
         "Deadline for one streamed reply, from sending the message to its end frame; keepalives do not "
         "reset it. A reply that has not ended by then is a failure"),
)
BY_NAME: dict[str, Knob] = {k.name: k for k in MIX_KNOBS}


def env_var(name: str) -> str:
    """The environment variable of a mix knob ("think-max-s" or "think_max_s")."""
    return BY_NAME[name.replace("-", "_")].env_var


class MixError(ValueError):
    """A user-mix setting that cannot work; the message names the fix."""


@dataclass(frozen=True)
class MixOptions:
    api_base: str
    ws_path: str
    api_key_header: str
    api_key: str
    extra_headers: tuple[tuple[str, str], ...]
    agent_id: str
    model: str
    messages_min: int
    messages_max: int
    think_min_s: float
    think_max_s: float
    words_min: int
    words_max: int
    read_back_ratio: float
    end_ratio: float
    ws_token_frames: frozenset[str] = frozenset({"token", "content"})
    ws_end_frames: frozenset[str] = frozenset({"done", "stream_end"})
    ws_error_frames: frozenset[str] = frozenset({"error"})
    ws_ignore_frames: frozenset[str] = frozenset(IGNORED_FRAMES)
    ws_reply_timeout_s: float = 120.0

    @classmethod
    def from_parsed(cls, options: Any) -> "MixOptions":
        def get(name: str) -> Any:
            default = BY_NAME[name.replace("-", "_")].default
            return getattr(options, name.replace("-", "_"), default) if options is not None else default

        mix = cls(
            api_base=str(get("api-base")).rstrip("/"),
            ws_path=str(get("ws-path")),
            api_key_header=str(get("api-key-header")).strip(),
            api_key=str(get("api-key")),
            extra_headers=parse_extra_headers(str(get("extra-headers"))),
            agent_id=str(get("agent-id")),
            model=str(get("model")),
            messages_min=int(get("messages-min")),
            messages_max=int(get("messages-max")),
            think_min_s=float(get("think-min-s")),
            think_max_s=float(get("think-max-s")),
            words_min=int(get("words-min")),
            words_max=int(get("words-max")),
            read_back_ratio=float(get("read-back-ratio")),
            end_ratio=float(get("end-ratio")),
            ws_token_frames=frame_types(get("ws-token-frames")),
            ws_end_frames=frame_types(get("ws-end-frames")),
            ws_error_frames=frame_types(get("ws-error-frames")),
            ws_ignore_frames=frame_types(get("ws-ignore-frames")),
            ws_reply_timeout_s=float(get("ws-reply-timeout-s")),
        )
        mix.validate()
        return mix

    def validate(self) -> None:
        for low, high, lo_flag, hi_flag in [
                (self.messages_min, self.messages_max, "--messages-min", "--messages-max"),
                (self.think_min_s, self.think_max_s, "--think-min-s", "--think-max-s"),
                (self.words_min, self.words_max, "--words-min", "--words-max")]:
            if low < 0 or high < low:
                raise MixError(f"{lo_flag} must be >= 0 and <= {hi_flag} (got {low} and {high})")
        if self.words_min < 1:
            raise MixError("--words-min must be at least 1")
        for value, name in [(self.read_back_ratio, "read-back-ratio"), (self.end_ratio, "end-ratio")]:
            if not 0.0 <= value <= 1.0:
                raise MixError(f"--{name} must be between 0 and 1 (got {value})")
        if "{id}" not in self.ws_path:
            raise MixError(f"--ws-path must contain {{id}} (got {self.ws_path!r})")
        if not self.api_key_header:
            raise MixError("--api-key-header must not be empty")
        if not self.ws_reply_timeout_s > 0:
            raise MixError(f"--ws-reply-timeout-s must be positive (got {self.ws_reply_timeout_s})")
        for flag, kinds in (("--ws-token-frames", self.ws_token_frames), ("--ws-end-frames", self.ws_end_frames)):
            if not kinds:
                raise MixError(f"{flag} must name at least one frame type")
        roles = {"--ws-token-frames": self.ws_token_frames, "--ws-end-frames": self.ws_end_frames,
                 "--ws-error-frames": self.ws_error_frames, "--ws-ignore-frames": self.ws_ignore_frames}
        seen: dict[str, str] = {}
        for flag, kinds in roles.items():
            for kind in sorted(kinds):
                if kind in seen:
                    raise MixError(f"frame type {kind!r} is in both {seen[kind]} and {flag}: "
                                   f"give each type one role")
                seen[kind] = flag

    def headers(self, user_index: int, worker_index: int) -> dict[str, str]:
        """The headers of one user: the API key plus the extra headers with their templates filled."""
        values = {"user_index": user_index, "worker_index": worker_index,
                  "uuid": uuid.uuid4().hex, "rand": "".join(random.choices(string.ascii_lowercase, k=8))}
        headers = {self.api_key_header: self.api_key}
        for name, template in self.extra_headers:
            headers[name] = template.format(**values)
        return headers


_TEMPLATE_FIELDS = {"user_index", "worker_index", "uuid", "rand"}


VOLATILE_FIELDS = {"uuid", "rand"}


def volatile_headers(pairs: tuple[tuple[str, str], ...]) -> list[str]:
    """Names of extra headers whose value changes with every request ({uuid}, {rand})."""
    out = []
    for name, value in pairs:
        fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        if fields & VOLATILE_FIELDS:
            out.append(name)
    return out


def frame_types(text: Any) -> frozenset[str]:
    """'token, content' -> {"token", "content"}."""
    return frozenset(filter(None, (part.strip() for part in str(text).split(","))))


def parse_extra_headers(text: str) -> tuple[tuple[str, str], ...]:
    """'A: 1; B: u-{user_index}' -> (("A", "1"), ("B", "u-{user_index}")), templates checked now."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, value = part.partition(":")
        if not sep or not name.strip():
            raise MixError(f"--extra-headers entry {part!r} must look like 'Name: value'")
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            raise MixError(f"--extra-headers value {value!r} is not a valid template: {exc}") from None
        if unknown := fields - _TEMPLATE_FIELDS:
            raise MixError(f"--extra-headers value {value!r} uses {sorted(unknown)}; "
                           f"allowed: {sorted(_TEMPLATE_FIELDS)}")
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)
