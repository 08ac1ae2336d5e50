"""`memsoak compare BASE_RUN CANDIDATE_RUN`: the same analysis on a known-good run and a candidate.

Prints per-signal differences with 95% intervals; exits 14 when the candidate regresses, 0 when it
does not, 13 with a one-line error when a directory cannot be analysed.
"""
from __future__ import annotations

import argparse
import json
import sys

from memsoak import reports
from memsoak.contract import EXIT_BAD_CONFIG as BAD_CONFIG
from memsoak.reports.render.render_json import to_plain
from memsoak.reports.settings import SettingError

from .report import analyse, parse_overrides

NAME = "compare"
HELP = "compare a candidate run against a known-good base run; exit 14 on a regression"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base_run", metavar="BASE_RUN", help="run directory of the known-good build")
    parser.add_argument("candidate_run", metavar="CANDIDATE_RUN", help="run directory of the candidate")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override an analysis setting for both runs (repeatable)")
    parser.add_argument("--json", dest="json_out", metavar="FILE", default="",
                        help="also write the comparison as JSON to FILE")


def run(args: argparse.Namespace) -> int:
    try:
        overrides = parse_overrides(args.overrides)
        base = analyse(args.base_run, overrides)
        candidate = analyse(args.candidate_run, overrides)
    except (reports.RunDirError, SettingError) as error:
        print(f"memsoak compare: {error}", file=sys.stderr)
        return BAD_CONFIG
    comparison = reports.compare(base, candidate)
    if args.json_out:   # before the verdict is printed: a failed write must not follow a "PASS"
        try:
            with open(args.json_out, "w", encoding="utf-8") as handle:
                json.dump(to_plain(comparison), handle, indent=2)
        except OSError as error:
            print(f"memsoak compare: cannot write --json {args.json_out} ({error.strerror or error}): "
                  "choose a writable file", file=sys.stderr)
            return BAD_CONFIG
    print(reports.render_comparison(comparison))
    return comparison.exit_code
