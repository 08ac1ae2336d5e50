"""The chat users' mix settings: validation names the flag to fix, header templates are checked."""
from __future__ import annotations

import types

import pytest

from memsoak.locustfiles._mix import MIX_KNOBS, MixError, MixOptions, env_var, parse_extra_headers


def options(**overrides: object) -> types.SimpleNamespace:
    values = {spec.name: spec.default for spec in MIX_KNOBS}
    values.update(overrides)
    return types.SimpleNamespace(**values)


def test_defaults_are_valid_and_typed() -> None:
    mix = MixOptions.from_parsed(options())
    assert mix.end_ratio == pytest.approx(1 / 3)
    assert mix.api_base == "/api/engine/chat"
    for spec in MIX_KNOBS:
        assert isinstance(spec.default, spec.type)  # the web form converts input to the default's type


def test_env_var_names_follow_the_memsoak_convention() -> None:
    assert env_var("think-max-s") == "MEMSOAK_THINK_MAX_S"
    spec = next(k for k in MIX_KNOBS if k.name == "think_max_s")
    assert (spec.flag, spec.env_var, spec.conf_key) == ("--think-max-s", "MEMSOAK_THINK_MAX_S", "think-max-s")


@pytest.mark.parametrize("overrides, flag", [
    ({"messages_min": 5, "messages_max": 2}, "--messages-min"),
    ({"think_min_s": 3.0, "think_max_s": 1.0}, "--think-min-s"),
    ({"end_ratio": 1.5}, "--end-ratio"),
    ({"read_back_ratio": -0.1}, "--read-back-ratio"),
    ({"ws_path": "/ws/chat"}, "--ws-path"),
    ({"extra_headers": "no colon here"}, "--extra-headers"),
    ({"extra_headers": "X-A: {nope}"}, "--extra-headers"),
])
def test_bad_settings_name_the_flag(overrides: dict, flag: str) -> None:
    with pytest.raises(MixError, match=flag):
        MixOptions.from_parsed(options(**overrides))


def test_extra_headers_are_templated_per_user() -> None:
    mix = MixOptions.from_parsed(options(extra_headers="X-Tenant: acme; X-User: u-{user_index}-w{worker_index}",
                                         api_key_header="Authorization", api_key="Bearer k"))
    first, second = mix.headers(1, 0), mix.headers(2, 3)
    assert first == {"Authorization": "Bearer k", "X-Tenant": "acme", "X-User": "u-1-w0"}
    assert second["X-User"] == "u-2-w3"


def test_uuid_template_differs_between_users() -> None:
    pairs = parse_extra_headers("X-Request-Owner: {uuid}")
    mix = MixOptions.from_parsed(options(extra_headers="X-Request-Owner: {uuid}"))
    assert pairs == (("X-Request-Owner", "{uuid}"),)
    assert mix.headers(1, 0)["X-Request-Owner"] != mix.headers(2, 0)["X-Request-Owner"]


def test_frame_roles_default_to_real_and_documented_frames_and_must_not_overlap() -> None:
    from types import SimpleNamespace

    from memsoak.locustfiles._mix import MixError, MixOptions, volatile_headers, parse_extra_headers
    mix = MixOptions.from_parsed(None)
    assert {"token", "content"} == mix.ws_token_frames and {"done", "stream_end"} == mix.ws_end_frames
    assert {"pong", "stream_start", "thinking", "tool_call"} <= mix.ws_ignore_frames
    with pytest.raises(MixError, match="'pong' is in both"):
        MixOptions.from_parsed(SimpleNamespace(ws_token_frames="token,pong"))
    with pytest.raises(MixError, match="--ws-reply-timeout-s must be positive"):
        MixOptions.from_parsed(SimpleNamespace(ws_reply_timeout_s=0))
    assert volatile_headers(parse_extra_headers("X-Forwarded-For: 10.0.0.{user_index}; X-Req: {uuid}")) == ["X-Req"]
