"""write_reports(): every renderer's file into the run directory (one registry line per format)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..verdict.model import Report
from .render_html import render_html
from .render_json import render_json
from .render_junit import render_junit
from .render_markdown import render_markdown

RENDERERS: dict[str, Callable[[Report], str]] = {
    "report.json": render_json,
    "summary.md": render_markdown,
    "junit.xml": render_junit,
    "report.html": render_html,
}


def write_reports(report: Report, run_dir: str | Path) -> dict[str, Path]:
    run_dir = Path(run_dir)
    written = {}
    for name, render in RENDERERS.items():
        path = run_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(render(report), encoding="utf-8")
        tmp.replace(path)   # never leave a half-written report for CI to pick up
        written[name] = path
    return written
