"""One spec type for every memsoak setting ("knob"), and the generated table of all of them.

Standard library only: the hook inside the engine imports this module, so it must not pull in
Locust, gevent, numpy or the analysis. Each side owns its knobs and parses them once into its own
frozen, typed object:

- the hook (`memsoak.profiler.config.HookConfig`, from MEMSOAK_* in the engine's environment),
- the run (`memsoak.plugin.arguments.RunSettings`, Locust arguments of the plugin),
- the analysis (`memsoak.reports.settings.AnalysisSettings`, also recorded in run.json's `settings`),
- the load mix (`memsoak.locustfiles._mix.MixOptions`, Locust arguments of the users),
- the demo engine (`memsoak.demo_engine.settings.Settings`, DEMO_* and its own flags).

A knob is declared once, as a dataclass field of its side's typed object (`knob(default, help,
...)`), and `knobs_of(cls)` reads the specs back from the fields: name, type, default, flag,
environment variable, locust.conf key, meaning and allowed range. `python -m memsoak.knobs
--markdown` prints the table kept in docs/settings.md (tests/docs checks it is current).
"""
from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any, Callable, Iterable

# Allowed range: (lowest, highest, lowest itself allowed); None = unbounded on that side. A value
# outside is refused with one line, never clamped or silently switched off.
Range = tuple[Any, Any, bool]
POSITIVE: Range = (0.0, None, False)
NON_NEGATIVE: Range = (0.0, None, True)
ANY_NUMBER: Range = (None, None, True)
UNIT_INTERVAL: Range = (0.0, 1.0, True)

DERIVED = "derived"      # flag/env/conf naming follows Locust's rule from the name
_TYPES = {"float": float, "int": int, "str": str, "bool": bool}


@dataclasses.dataclass(frozen=True)
class Knob:
    """One setting: how it is named on each surface, its type, default, meaning and range.

    Naming rule of a Locust argument (plugin, analysis, load mix): name `rss_limit_mb` is the flag
    `--rss-limit-mb`, the environment variable `MEMSOAK_RSS_LIMIT_MB` and the locust.conf key
    `rss-limit-mb`. Other sides give `cli`/`env` explicitly and have no locust.conf key.
    """

    name: str
    type: Any            # int, float, str, bool, or a parser str -> value (its __name__ is shown)
    default: Any
    help: str
    range: Range | None = None
    secret: bool = False
    cli: str | None = DERIVED   # the flag; None = no flag
    env: str | None = DERIVED   # the environment variable; None = none
    conf: bool = True           # a locust.conf key (Locust arguments only)

    @property
    def flag(self) -> str:
        if self.cli == DERIVED:
            return "--" + self.name.replace("_", "-")
        return self.cli or ""

    @property
    def env_var(self) -> str:
        if self.env == DERIVED:
            return "MEMSOAK_" + self.name.upper()
        return self.env or ""

    @property
    def conf_key(self) -> str:
        return self.name.replace("_", "-") if self.conf else ""

    @property
    def type_name(self) -> str:
        return getattr(self.type, "__name__", str(self.type))

    def out_of_range(self, value: Any) -> str | None:
        """Why `value` is not allowed ("must be > 0"), or None when it is."""
        return out_of_range(value, self.range)


def out_of_range(value: Any, limits: Range | None) -> str | None:
    """Why a number is outside `limits` (one phrase), or None."""
    if isinstance(value, float) and (value != value or value in (math.inf, -math.inf)):
        return "must be a finite number"
    low, high, low_ok = limits or ANY_NUMBER
    if low is not None and (value < low or (value == low and not low_ok)):
        if high is not None:
            return f"must be {'>=' if low_ok else '>'} {low:g} and <= {high:g}"
        return f"must be {'>=' if low_ok else '>'} {low:g}"
    if high is not None and value > high:
        return f"must be {'>=' if low_ok else '>'} {low:g} and <= {high:g}" if low is not None else f"must be <= {high:g}"
    return None


def knob(default: Any, help: str, range: Range | None = None, *, parse: Callable[[str], Any] | None = None,
         secret: bool = False, cli: str | None = DERIVED, env: str | None = DERIVED, conf: bool = True) -> Any:
    """A dataclass field that declares a knob: its default plus what `knobs_of` needs."""
    meta = {"help": help, "range": range, "parse": parse, "secret": secret, "cli": cli, "env": env, "conf": conf}
    return dataclasses.field(default=default, metadata={"knob": meta})


def knobs_of(cls: type) -> tuple[Knob, ...]:
    """The knobs declared on a dataclass with `knob(...)` fields, in field order.

    The declaration is the field's `metadata["knob"]`, a plain dict (help, and optionally range,
    parse, secret, cli, env, conf): a side that must not import memsoak (the hook, which engine
    images install as memsoak/profiler/ alone) writes the same dict itself (memsoak/profiler/config.py)."""
    out = []
    # the hook's HookConfig is a dataclass look-alike (memsoak/profiler/config.py says why)
    for field in getattr(cls, "__knob_fields__", None) or dataclasses.fields(cls):
        meta = field.metadata.get("knob")
        if meta is None:
            continue
        kind = meta.get("parse") or _TYPES.get(str(field.type).split("|")[0].strip(), field.type)
        out.append(Knob(field.name, kind, field.default, meta["help"], meta.get("range"), meta.get("secret", False),
                        meta.get("cli", DERIVED), meta.get("env", DERIVED), meta.get("conf", True)))
    return tuple(out)


# --- the table ----------------------------------------------------------------------------------

HEAD = ("flag", "environment variable", "locust.conf key", "default", "meaning")


def show_default(value: Any) -> str:
    if value is None or value == "":
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _range_text(spec: Knob) -> str:
    if spec.range is None or spec.range == ANY_NUMBER:
        return ""
    low, high, low_ok = spec.range
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_ok else '>'} {_number(low)}")
    if high is not None:
        parts.append(f"<= {_number(high)}")
    return f" (range: {' and '.join(parts)})"


def markdown(sides: Iterable[tuple[str, str, Iterable[Knob]]]) -> str:
    """One Markdown table per side: (title, intro, knobs)."""
    out = ["# memsoak settings", "",
           "<!-- generated by `python -m memsoak.knobs --markdown > docs/settings.md`: do not edit by hand -->",
           "",
           "Every setting of every side, read from the code that parses it (memsoak/knobs.py). A Locust",
           "argument (run, analysis, load mix) is set as its flag (`locust`/`memsoak soak`), its environment",
           "variable, or `key = value` in locust.conf; the analysis settings are also recorded in run.json's",
           "`settings` and can be changed afterwards with `memsoak report RUN_DIR --set NAME=VALUE`.", ""]
    for title, intro, specs in sides:
        out += [f"## {title}", "", intro, "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
        for spec in specs:
            flag = f"`{spec.flag}`" if spec.flag else ""
            env = f"`{spec.env_var}`" if spec.env_var else ""
            conf = f"`{spec.conf_key}`" if spec.conf_key else ""
            default = show_default(spec.default)
            out.append("| " + " | ".join(_cell(c) for c in (
                flag, env, conf, f"`{default}`", spec.help + _range_text(spec))) + " |")
        out.append("")
    return "\n".join(out)


def all_sides() -> list[tuple[str, str, tuple[Knob, ...]]]:
    """Every side's knobs, imported from the modules that parse them (Locust included: run this in
    its own process, as `python -m memsoak.knobs`, since importing Locust patches the stdlib)."""
    from memsoak.demo_engine.settings import knobs as demo_knobs
    from memsoak.locustfiles._mix import MIX_KNOBS
    from memsoak.locustfiles._mix_sweep import SWEEP_KNOBS
    from memsoak.plugin.arguments import PLUGIN_ARGS
    from memsoak.profiler.config import knobs as hook_knobs
    from memsoak.reports.settings import SETTINGS

    return [
        ("Run (the Locust plugin)", "Read by the plugin while the soak runs (memsoak/plugin/arguments.py, "
         "`RunSettings`).", PLUGIN_ARGS),
        ("Analysis (the report)", "The verdict's settings (memsoak/reports/settings.py, `AnalysisSettings`); the plugin "
         "applies `rss_limit_mb` and `top_n` live with the same value (and its status line uses "
         "`rate_threshold_mb_per_hour`).", SETTINGS),
        ("Load mix (the users)", "How the chat users load the engine (memsoak/locustfiles/_mix.py, `MixOptions`).",
         MIX_KNOBS),
        ("Load shape (opt-in mix sweep)", "Only with `-f memsoak/locustfiles,memsoak/locustfiles/_mix_sweep.py` "
         "(memsoak/locustfiles/_mix_sweep.py).", SWEEP_KNOBS),
        ("Hook (inside the engine)", "Read from the engine's environment by the hook (memsoak/profiler/config.py, "
         "`HookConfig`); `memsoak-run`'s flags set these variables. Bad values warn once and keep the default.",
         hook_knobs()),
        ("Demo engine", "The demo engine's own settings (memsoak/demo_engine/settings.py, `Settings`): a flag of "
         "`python -m memsoak.demo_engine` wins over the environment variable.", demo_knobs()),
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--markdown"]:
        print("usage: python -m memsoak.knobs --markdown  (prints docs/settings.md)", file=sys.stderr)
        return 2
    print(markdown(all_sides()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
