"""summary.md: a Markdown summary fit for a CI job summary ($GITHUB_STEP_SUMMARY)."""
from __future__ import annotations

from pathlib import Path

import jinja2

from memsoak.contract import MB

from ..outcome import title
from ..verdict.model import Report
from .render_console import _amount

TEMPLATES = Path(__file__).parent / "templates"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2.html"]),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["mb"] = lambda v: "-" if v is None else f"{v / MB:.2f}"
    env.filters["kib"] = lambda v: "-" if v is None else f"{v / 1024:.1f}"
    env.filters["g"] = lambda v: "-" if v is None else f"{v:.3g}"
    env.globals["amount"] = _amount
    env.globals["title"] = title
    return env


def render_markdown(report: Report) -> str:
    return environment().get_template("summary.md.j2").render(r=report)
