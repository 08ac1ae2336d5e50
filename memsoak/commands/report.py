"""`memsoak report RUN_DIR`: re-analyse a run directory offline and re-render its reports.

Exits with the run's outcome code (memsoak/reports/outcome.py: 0 pass, 10 leak, 11 RSS limit, 12 engine
lost, 16 invalid load, 17 interrupted, 18 insufficient evidence, 19 measurement failed), or 13 with
a one-line error when the directory cannot be analysed or the reports cannot be written.
"""
from __future__ import annotations

import argparse
import os
import sys

from memsoak import reports
from memsoak.contract import EXIT_BAD_CONFIG as BAD_CONFIG
from memsoak.reports.settings import BY_NAME, SettingError, out_of_range

NAME = "report"
HELP = "re-analyse a run directory offline: report.json/html, summary.md, junit.xml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a results/<run-id>/ directory")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override an analysis setting, e.g. --set warmup_s=60 (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="print the verdict, write no files")


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """NAME=VALUE pairs, each converted and range-checked; SettingError names the --set value."""
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or name not in BY_NAME:
            known = ", ".join(s.name for s in reports.SETTINGS)
            raise SettingError(f"--set {pair!r}: expected NAME=VALUE with NAME one of {known}")
        spec = BY_NAME[name]
        try:
            converted = spec.type(value)
        except (TypeError, ValueError):
            raise SettingError(f"--set {pair!r}: {value!r} is not a{'n' if spec.type is int else ''} "
                               f"{spec.type.__name__}") from None
        problem = out_of_range(name, converted)
        if problem:
            raise SettingError(f"--set {pair!r}: {name} {problem}")
        overrides[name] = value
    return overrides


def analyse(run_dir: str, overrides: dict[str, str]) -> "reports.Report":
    """The report of one run directory; RunDirError/SettingError, or RunDirError for the unexpected."""
    try:
        return reports.analyze(reports.load_run(run_dir), settings=overrides)
    except (reports.RunDirError, SettingError):
        raise
    except Exception as error:   # a file the contract does not foresee: one line, not a traceback
        if os.environ.get("MEMSOAK_DEBUG"):
            raise
        raise reports.RunDirError(f"{run_dir}: cannot be analysed ({type(error).__name__}: "
                                  f"{str(error)[:200]}); MEMSOAK_DEBUG=1 shows the traceback") from None


def run(args: argparse.Namespace) -> int:
    try:
        overrides = parse_overrides(args.overrides)
        report = analyse(args.run_dir, overrides)
    except (reports.RunDirError, SettingError) as error:
        print(f"memsoak report: {error}", file=sys.stderr)
        return BAD_CONFIG
    print(reports.render_console(report))
    if not args.no_write:
        try:
            written = reports.write_reports(report, args.run_dir)
        except OSError as error:
            print(f"memsoak report: cannot write the reports into {args.run_dir} ({error.strerror or error}): "
                  "use --no-write or a writable copy", file=sys.stderr)
            return BAD_CONFIG
        print(f"report: {written['report.html']}")
    return report.exit_code
