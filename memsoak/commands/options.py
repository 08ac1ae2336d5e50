"""`memsoak options`: every memsoak setting with its flag, environment variable, locust.conf key and
default, read from the same tables that register them (so the list cannot drift from the code).

Locust prints `--help` before it loads the locustfiles, so `locust -f memsoak/locustfiles --help` never
shows these; this command does. Locust's own options: `locust --help`.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from typing import Any, Iterable

NAME = "options"
HELP = "list every memsoak setting: flag, environment variable, locust.conf key, default"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (for docs)")


def rows() -> list[tuple[str, str, str, str, str, str]]:
    """(group, flag, env var, conf key, default, help) for every setting Locust registers for memsoak.

    Read from Locust's own parser after the locustfiles registered their arguments, so whatever a
    plugin module or locustfile adds (e.g. the mix-sweep shape's --sweep-phase-s) is listed too.
    """
    import memsoak.locustfiles.chat  # noqa: F401  (registers the plugin's and the users' arguments)
    import memsoak.locustfiles._mix_sweep  # noqa: F401  (the shape's own argument)
    from locust.argument_parser import get_parser
    from memsoak.locustfiles._mix import MIX_KNOBS
    from memsoak.plugin.arguments import PLUGIN_ARGS
    from memsoak.reports.settings import SETTINGS

    groups = {**{a.flag: "plugin" for a in PLUGIN_ARGS}, **{s.flag: "verdict" for s in SETTINGS},
              **{k.flag: "users" for k in MIX_KNOBS}}
    out = []
    for action in get_parser()._actions:
        env = getattr(action, "env_var", None) or ""
        if not env.startswith("MEMSOAK_") or not action.option_strings:
            continue
        flag = next(o for o in action.option_strings if o.startswith("--"))
        text = re.sub(r" \(default [^)]*\)$", "", str(action.help or "")).replace("%%", "%")
        out.append((groups.get(flag, "shape"), flag, env, flag[2:], _show(action.default), text))
    return out


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if value == "" else str(value)


def table(lines: Iterable[tuple[str, ...]], markdown: bool) -> str:
    lines = list(lines)
    head = ("group", "flag", "environment variable", "locust.conf key", "default", "meaning")
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(line[i]) for line in [head, *lines]) for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    return "\n".join(fmt.format(*line) for line in [head, *lines])


def run(args: argparse.Namespace) -> int:
    # The plugin's table lives beside its Locust registration, and importing Locust monkey-patches
    # the standard library (gevent), which must come before anything imports ssl: the memsoak CLI
    # has imported requests by now, so the table is read in a fresh interpreter.
    done = subprocess.run([sys.executable, "-c", f"import {__name__} as m; m.show({bool(args.markdown)})"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        print(f"memsoak options: could not read the settings: {done.stderr.strip().splitlines()[-1:]}",
              file=sys.stderr)
        return 1
    print(done.stdout, end="")
    return 0


def show(markdown: bool) -> None:
    print(table(rows(), markdown))
    print("\nSet each one as the flag (locust/memsoak soak), the environment variable, or `key = value` in "
          "locust.conf; Locust's own options (-u, -r, -t, ...): locust --help", file=sys.stdout)
    return 0
