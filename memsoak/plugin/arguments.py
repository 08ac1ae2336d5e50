"""memsoak's Locust arguments: the plugin's own plus every analysis setting of `reports.SETTINGS`.

One name everywhere (docs/CONTRACTS.md): setting `rss_limit_mb` is `--rss-limit-mb`, environment
`MEMSOAK_RSS_LIMIT_MB`, `rss-limit-mb = 512` in locust.conf, and `settings.rss_limit_mb` in run.json.
Every default is typed, because the web form converts what is typed to the type of the default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from locust import events

from reports.settings import SETTINGS, Setting

QUICK_RUN_TIME_S = 300  # --quick: the original spec's 5-minute smoke soak


@dataclass(frozen=True)
class PluginArg(Setting):
    """A plugin-only argument: named like the analysis settings (same flag and env var rule)."""

    secret: bool = False


PLUGIN_ARGS: tuple[PluginArg, ...] = (
    PluginArg("hook_url", str, "http://127.0.0.1:9477", "URL of the profiler hook started by memsoak-run"),
    PluginArg("hook_token", str, "", "Bearer token of the hook (MEMSOAK_HOOK_TOKEN)", secret=True),
    PluginArg("sample_interval_s", float, 1.0, "How often the master pulls new samples from the hook, s"),
    PluginArg("baseline_s", float, -1.0,
              "When the tracemalloc baseline is taken, s after start; negative = --warmup-s when set, "
              "else 25% of --run-time within 5..300 s (60 s without a run time)"),
    PluginArg("checkpoint_interval_s", float, -1.0,
              "Seconds between tracemalloc checkpoints after the baseline; negative = one checkpoint "
              "halfway to the end (every 600 s without a run time); 0 = baseline and final only. Each "
              "snapshot costs the engine memory (on the demo engine ~0.7 MB heap, ~26 MB RSS), a step "
              "the report removes at the snapshot events: few checkpoints are better than many"),
    PluginArg("engine_lost_polls", int, 5, "Failed polls in a row after which the engine counts as lost"),
    PluginArg("results_dir", str, "results", "Where run directories are created"),
    PluginArg("run_id", str, "", "Run directory name (empty: YYYYmmdd-HHMMSS-<short>)"),
    PluginArg("quick", bool, False, "5-minute smoke soak: --run-time 300 unless set"),
)


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
            group.add_argument(arg.flag, type=arg.type, default=arg.default, env_var=arg.env_var,
                               help=_escape(f"{arg.help} (default {arg.default!r})"), include_in_web_ui=True,
                               is_secret=arg.secret)
    for setting in SETTINGS:
        analysis.add_argument(setting.flag, type=setting.type, default=setting.default,
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
    from locust import argument_parser

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
