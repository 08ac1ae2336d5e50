"""memsoak/demo_engine/settings.py: one name per setting across flag and env; bad values are one-line errors.

Named test_demo_settings because tests/reports has a test_settings.py and test dirs are not packages.
"""
from __future__ import annotations

import pytest

from memsoak.demo_engine.leaks import DEFAULT_BYTES
from memsoak.demo_engine.settings import (LEAK_NAMES, Settings, SettingsError, env_name, export_settings,
                                  flag_name, load_settings, parse_leaks)


def test_defaults_match_the_contract() -> None:
    settings = load_settings(environ={})
    assert (settings.api_key, settings.api_key_header, settings.database_url) == ("demo-key", "X-API-Key", "")
    assert settings.llm_latency_ms == 20.0 and settings.leak_sizes() == {}


def test_environment_then_flags_win_in_that_order() -> None:
    environ = {"DEMO_API_KEY": "from-env", "DEMO_LLM_LATENCY_MS": "7", "DATABASE_URL": "sqlite:////tmp/x.db"}
    from_env = load_settings(environ=environ)
    assert (from_env.api_key, from_env.llm_latency_ms, from_env.database_url) == ("from-env", 7.0, "sqlite:////tmp/x.db")
    flagged = load_settings({"api_key": "from-flag", "llm_latency_ms": None}, environ=environ)
    assert (flagged.api_key, flagged.llm_latency_ms) == ("from-flag", 7.0)


def test_names_are_the_same_everywhere() -> None:
    assert (env_name("llm_latency_ms"), flag_name("llm_latency_ms")) == ("DEMO_LLM_LATENCY_MS", "--llm-latency-ms")
    assert env_name("database_url") == "DATABASE_URL"


def test_exported_settings_rebuild_the_same_settings() -> None:
    settings = Settings(api_key="k", leaks="native:4096,fd", rate_limit_rps=0.0, context_messages=3)
    environ: dict[str, str] = {}
    export_settings(settings, environ)
    assert load_settings(environ=environ) == settings


@pytest.mark.parametrize("environ, names", [
    ({"DEMO_LLM_LATENCY_MS": "fast"}, "DEMO_LLM_LATENCY_MS"),
    ({"DEMO_RATE_LIMIT_BURST": "-1"}, "DEMO_RATE_LIMIT_BURST"),
    ({"DEMO_LEAKS": "native,teleport"}, "teleport"),
    ({"DEMO_LEAKS": "native:lots"}, "native:1MiB"),
    ({"DEMO_LEAKS": "fd:100"}, "takes no size"),
    ({"DEMO_API_KEY_HEADER": "X Api Key"}, "DEMO_API_KEY_HEADER"),
    ({"DEMO_CONTEXT_MESSAGES": "0"}, "context_messages"),
])
def test_bad_values_raise_one_line_naming_the_fix(environ: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=environ)
    assert names in str(caught.value) and "\n" not in str(caught.value)


def test_leak_spec_takes_defaults_sizes_and_units() -> None:
    assert parse_leaks("") == {}
    assert parse_leaks(" native:2MiB , session_state:1k,fd ") == {
        "native": 2 * 1024 * 1024, "session_state": 1024, "fd": 0}
    assert parse_leaks(",".join(LEAK_NAMES)) == DEFAULT_BYTES


def test_strict_presets_the_real_protocol_and_explicit_settings_still_win() -> None:
    plain = load_settings(environ={})
    assert (plain.ws_frames, plain.ws_keepalive_s, plain.rate_limiter, plain.http_semantics,
            plain.ws_auth_reject) == ("legacy", 0.0, "bucket", "demo", "close")
    strict = load_settings(environ={"DEMO_STRICT": "1"})
    assert (strict.strict, strict.ws_frames, strict.ws_keepalive_s, strict.rate_limiter,
            strict.http_semantics, strict.ws_auth_reject) == (True, "aria", 5.0, "aria", "aria", "handshake")
    assert (strict.aria_limit_burst_5s, strict.aria_limit_per_minute, strict.aria_limit_per_hour) == (50, 300, 5000)
    mixed = load_settings({"strict": "true", "ws_keepalive_s": "30"}, environ={"DEMO_RATE_LIMITER": "off"})
    assert (mixed.ws_frames, mixed.ws_keepalive_s, mixed.rate_limiter) == ("aria", 30.0, "off")
    environ: dict[str, str] = {}
    export_settings(mixed, environ)
    assert load_settings(environ=environ) == mixed


@pytest.mark.parametrize("environ, names", [
    ({"DEMO_STRICT": "maybe"}, "DEMO_STRICT"),
    ({"DEMO_WS_FRAMES": "tokens"}, "legacy, aria"),
    ({"DEMO_RATE_LIMITER": "aria2"}, "bucket, aria, off"),
    ({"DEMO_ARIA_LIMIT_BURST_5S": "0"}, "DEMO_RATE_LIMITER=off"),
])
def test_bad_strict_values_raise_one_line(environ: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=environ)
    assert names in str(caught.value) and "\n" not in str(caught.value)
