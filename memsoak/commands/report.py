"""`memsoak report RUN_DIR`: re-analyse a run directory offline and re-render its reports.

Exits with the run's outcome code (0 pass, 10 leak, 11 RSS limit, 12 engine lost), or 13 with a
one-line error when the directory cannot be analysed.
"""
from __future__ import annotations

import argparse
import sys

import reports
from reports.outcome import EXIT_CODES
from reports.settings import SettingError

NAME = "report"
HELP = "re-analyse a run directory offline: report.json/html, summary.md, junit.xml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a results/<run-id>/ directory")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override an analysis setting, e.g. --set warmup_s=60 (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="print the verdict, write no files")


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or name not in {s.name for s in reports.SETTINGS}:
            known = ", ".join(s.name for s in reports.SETTINGS)
            raise SettingError(f"--set {pair!r}: expected NAME=VALUE with NAME one of {known}")
        overrides[name] = value
    return overrides


def run(args: argparse.Namespace) -> int:
    try:
        overrides = parse_overrides(args.overrides)
        report = reports.analyze(reports.load_run(args.run_dir), settings=overrides)
    except (reports.RunDirError, SettingError) as error:
        print(f"memsoak report: {error}", file=sys.stderr)
        return EXIT_CODES["bad_config"]
    if not args.no_write:
        written = reports.write_reports(report, args.run_dir)
        print(reports.render_console(report))
        print(f"report: {written['report.html']}")
    else:
        print(reports.render_console(report))
    return report.exit_code
