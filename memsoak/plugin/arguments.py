"""memsoak's Locust arguments: the plugin's own plus every analysis setting of `reports.SETTINGS`.

One name everywhere (docs/CONTRACTS.md): setting `rss_limit_mb` is `--rss-limit-mb`, environment
`MEMSOAK_RSS_LIMIT_MB`, `rss-limit-mb = 512` in locust.conf, and `settings.rss_limit_mb` in run.json.
Every default is typed, because the web form converts what is typed to the type of the default.
"""
from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from locust import argument_parser, events

from memsoak.knobs import ANY_NUMBER, Knob, knob, knobs_of
from memsoak.contract import QUICK_RUN_S as QUICK_RUN_TIME_S  # noqa: F401  (--quick's run time, for importers)
from memsoak.reports.settings import SETTINGS, AnalysisSettings, resolve

Setting = Knob   # the spec type of every argument here (memsoak/knobs.py)


@dataclass(frozen=True)
class RunSettings:
    """The plugin's own arguments, typed: one field per knob (flag, env var, locust.conf key by
    Locust's rule). The analysis settings the run also applies live (rss_limit_mb, top_n) are
    `analysis`, parsed by the analysis's own `resolve`, defined once in memsoak/reports/settings.py."""

    hook_url: str = knob("http://127.0.0.1:9477", "URL of the profiler hook started by memsoak-run")
    hook_token: str = knob("", "Bearer token of the hook (MEMSOAK_HOOK_TOKEN)", secret=True)
    sample_interval_s: float = knob(1.0, "How often the master pulls new samples from the hook, s",
                                    (0.0, 3600.0, False))
    baseline_s: float = knob(
        -1.0, "When the tracemalloc baseline is taken, s after start; negative = --warmup-s when set, "
              "else 25% of --run-time within 5..300 s (60 s without a run time)", ANY_NUMBER)
    checkpoint_interval_s: float = knob(
        -1.0, "Seconds between tracemalloc checkpoints after the baseline; negative = one checkpoint "
              "halfway to the end (every 600 s without a run time); 0 = baseline and final only. Each "
              "snapshot costs the engine memory (on the demo engine ~0.7 MB heap, ~26 MB RSS), a step "
              "the report removes at the snapshot events: few checkpoints are better than many", ANY_NUMBER)
    engine_lost_polls: int = knob(5, "Failed polls in a row after which the engine counts as lost",
                                  (1, 100_000, True))
    results_dir: str = knob("results", "Where run directories are created")
    run_id: str = knob("", "Run directory name (empty: YYYYmmdd-HHMMSS-<short>)")
    quick: bool = knob(False, "5-minute smoke soak: --run-time 300 unless set")
    # realeng (issue 14): the live status line
    status_interval_s: float = knob(
        60.0, "Seconds between status lines (elapsed, load, RSS/heap, trend, provisional verdict); 0 = none")
    run_time_s: float | None = None   # Locust's own --run-time (not a memsoak knob)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)

    @classmethod
    def from_options(cls, options: Any) -> "RunSettings":
        """Parsed Locust options (after `validate` found no problem), typed once."""
        values = {spec.name: option(options, spec.name) for spec in PLUGIN_ARGS}
        values = {name: (spec.type(values[name]) if spec.type in (int, float) else values[name])
                  for name, spec in zip(values, PLUGIN_ARGS)}
        run_time = getattr(options, "run_time", None) if options is not None else None
        analysis = resolve({spec.name: option(options, spec.name) for spec in SETTINGS})
        return cls(**values, run_time_s=float(run_time) if run_time else None, analysis=analysis)


PLUGIN_ARGS: tuple[Knob, ...] = knobs_of(RunSettings)
PluginArg = Knob
RUN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


class Unparsed(str):
    """A flag or variable value that did not convert to its type; reported at init with its source
    (argparse would exit 2 naming the flag, even when the environment variable set it)."""


def _lenient(kind: type) -> Any:
    def convert(raw: str) -> Any:
        try:
            return kind(raw)
        except (TypeError, ValueError):
            return Unparsed(raw)
    convert.__name__ = kind.__name__
    return convert


def source_of(spec: Setting, argv: list[str] | None = None) -> str:
    """Where a value came from: the flag on the command line, the environment variable, or a file."""
    argv = sys.argv[1:] if argv is None else argv
    if any(arg == spec.flag or arg.startswith(spec.flag + "=") for arg in argv):
        return spec.flag
    if spec.env_var in os.environ:
        return f"environment variable {spec.env_var}"
    return f"{spec.name.replace('_', '-')} in the config file (or web form)"


def check_value(spec: Setting, value: Any) -> str | None:
    """Why a parsed value is not allowed (one phrase), or None."""
    if isinstance(value, Unparsed):
        return f"is not a{'n' if spec.type is int else ''} {spec.type.__name__}"
    if spec.type in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        return spec.out_of_range(value)
    if spec.name == "results_dir" and not str(value).strip():
        return "is empty: name a directory (default results)"
    if spec.name == "run_id" and value and not RUN_ID.match(str(value)):
        return "must be 1-100 letters, digits, '_', '.', '-' (it names a directory)"
    if spec.name == "hook_url":
        parts = urlsplit(str(value))
        try:
            parts.port
        except ValueError:
            return "has a bad port: use http://HOST:PORT"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "must be http://HOST:PORT (the hook memsoak-run started)"
    return None


def validate(options: Any, argv: list[str] | None = None) -> list[str]:
    """One line per bad memsoak flag, variable or config value, naming where it came from."""
    problems = []
    for spec in (*PLUGIN_ARGS, *SETTINGS):
        value = option(options, spec.name)
        why = check_value(spec, value)
        if why:
            problems.append(f"memsoak: {source_of(spec, argv)} = {str(value)!r} {why}")
    return problems


SECRET_FLAG = re.compile(r"^--?[A-Za-z0-9_-]*(token|key|secret|password|passwd)$", re.IGNORECASE)
REDACTED = "***"


def redact(argv: list[str], secrets: list[str] | tuple[str, ...] = ()) -> list[str]:
    """argv with every secret's value replaced: values of --*token/--*key/--*secret/--*password
    flags (`--flag VALUE` and `--flag=VALUE`), and any known secret value wherever it appears."""
    out: list[str] = []
    hide_next = False
    known = [value for value in secrets if value and len(value) >= 3]
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        flag, sep, _value = arg.partition("=")
        if SECRET_FLAG.match(flag):
            if sep:
                out.append(f"{flag}={REDACTED}")
            else:
                out.append(arg)
                hide_next = True
            continue
        for value in known:
            arg = arg.replace(value, REDACTED)
        out.append(arg)
    return out


def secret_values(options: Any) -> list[str]:
    """The secret option values in use (the hook token, the engine's API key)."""
    names = [arg.name for arg in PLUGIN_ARGS if arg.secret] + ["api_key"]
    return [str(getattr(options, name, "") or "") for name in names if getattr(options, name, "")]


def check_results_dir(path: str) -> str | None:
    """Why run directories cannot be created under `path`, or None. Creates nothing (no run, no
    directory): probes the nearest existing ancestor with a temporary file."""
    target = os.path.abspath(path)
    if os.path.exists(target) and not os.path.isdir(target):
        return f"memsoak: --results-dir {path!r} is a file, not a directory: choose a directory"
    existing = target
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"memsoak: --results-dir {path!r}: {existing} is a file, not a directory: choose a directory"
    probe = os.path.join(existing, f".memsoak-write-test-{os.getpid()}")
    try:
        with open(probe, "w") as handle:
            handle.write("x")
        os.remove(probe)
    except OSError as exc:
        return (f"memsoak: --results-dir {path!r} is not writable ({exc.strerror or exc}): "
                "choose a writable directory")
    return None


def _escape(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help strings with %


@events.init_command_line_parser.add_listener
def _register(parser: Any, **_kwargs: Any) -> None:
    # Straight on the parser: only LocustArgumentParser.add_argument knows include_in_web_ui.
    group = analysis = parser
    for arg in PLUGIN_ARGS:
        if arg.type is bool:
            group.add_argument(arg.flag, action="store_true", default=arg.default, env_var=arg.env_var,
                               help=_escape(arg.help), include_in_web_ui=True)
        else:
            group.add_argument(arg.flag, type=_lenient(arg.type), default=arg.default, env_var=arg.env_var,
                               help=_escape(f"{arg.help} (default {arg.default!r})"), include_in_web_ui=True,
                               is_secret=arg.secret)
    for setting in SETTINGS:
        analysis.add_argument(setting.flag, type=_lenient(setting.type), default=setting.default,
                              env_var=setting.env_var,
                              help=_escape(f"{setting.help} (default {setting.default!r})"),
                              include_in_web_ui=True)


def option(options: Any, name: str) -> Any:
    """A plugin argument or setting from parsed options, falling back to its default."""
    for spec in (*PLUGIN_ARGS, *SETTINGS):
        if spec.name == name:
            return getattr(options, name, spec.default) if options is not None else spec.default
    raise KeyError(name)


def settings_of(options: Any) -> dict[str, Any]:
    """Every memsoak setting and plugin argument as run.json records it (never the token)."""
    values = {spec.name: option(options, spec.name) for spec in (*SETTINGS, *PLUGIN_ARGS)}
    values["hook_token"] = bool(values["hook_token"])
    values["run_time_s"] = getattr(options, "run_time", None)
    return values


def baseline_at_s(options: Any) -> float:
    """Seconds after test start at which the tracemalloc baseline is taken."""
    explicit = float(option(options, "baseline_s"))
    if explicit >= 0:
        return explicit
    warmup = float(option(options, "warmup_s"))
    if warmup >= 0:
        return warmup
    run_time = getattr(options, "run_time", None)
    if run_time:
        # Late enough for the engine's bounded state to fill, early enough to leave a long trend.
        return min(300.0, max(5.0, 0.25 * float(run_time)))
    return 60.0


def checkpoint_every_s(options: Any) -> float:
    """Seconds between checkpoints after the baseline (0: none)."""
    explicit = float(option(options, "checkpoint_interval_s"))
    if explicit >= 0:
        return explicit
    run_time = getattr(options, "run_time", None)
    if run_time:
        # One checkpoint halfway gives two intervals (enough to tell "grew every time" from a
        # one-off) while keeping the snapshots' own memory in the engine small.
        return max(1.0, (float(run_time) - baseline_at_s(options)) / 2)
    return 600.0


def _compute_locust_defaults_once() -> None:
    """Make Locust's `default_args_dict()` compute once per process instead of once per option.

    A Locust worker calls it for EVERY key of every spawn message (`k not in default_args_dict()`,
    each call building Locust's whole parser). With memsoak's ~100 options that blocked workers for
    seconds per spawn message on a busy machine (seen in Docker: 2 workers declared missing at
    start, 0 requests). The result depends only on Locust's own arguments, fixed for the process.
    """
    original = argument_parser.default_args_dict
    if getattr(original, "memsoak_cached", False):
        return
    cached: dict[str, Any] = {}

    def default_args_dict() -> dict[str, Any]:
        if not cached:
            cached.update(original())
        return cached

    default_args_dict.memsoak_cached = True  # type: ignore[attr-defined]
    argument_parser.default_args_dict = default_args_dict


_compute_locust_defaults_once()
