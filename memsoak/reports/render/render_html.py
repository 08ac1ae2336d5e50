"""report.html: one self-contained file (inline CSS and SVG charts, no script, no network)."""
from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from ..outcome import title
from ..verdict.model import Report
from .charts import memory_vs_requests, timeline
from .render_markdown import environment

MEMRAY_EMBED_LIMIT = 200_000   # embed small text outputs of memray; link the rest


def render_html(report: Report) -> str:
    vs_requests = memory_vs_requests(report)
    memray_texts = {}
    for rel in report.memray_files:
        path = Path(report.run_dir) / rel
        if path.suffix in (".txt", ".json") and path.is_file() and path.stat().st_size < MEMRAY_EMBED_LIMIT:
            memray_texts[rel] = path.read_text(encoding="utf-8", errors="replace")
    return environment().get_template("report.html.j2").render(
        r=report,
        timeline=Markup(timeline(report)) if report.rows else "",
        vs_requests=Markup(vs_requests) if vs_requests else "",
        memray_texts=memray_texts,
        title=title,
    )
