"""The Memory tab of Locust's web UI and a live chart page.

The stock UI renders extended tabs as tables: the "Memory" tab lists the engine's latest RSS and heap
beside users and RPS, the live trend (`reports.live_trend`) and the RSS limit, refreshed with every
`/stats/requests` poll of the UI. `/memsoak/memory` is a page with a chart (a PNG rendered by
matplotlib on request and reloaded by the page), linked from the UI's "Download Data" tab.
"""
from __future__ import annotations

import io
import json
import time
from typing import Any

import matplotlib
from flask import Response, request
from matplotlib.figure import Figure
from werkzeug.datastructures import ImmutableMultiDict

from memsoak import reports
from memsoak.contract import MB
from memsoak.plugin import status
from memsoak.plugin.arguments import option

TABLE_KEY = "memsoak_memory"
CHART_POINTS = 1200


def install(environment: Any, state: Any) -> None:
    """The Memory tab and the chart routes on the web UI; `state` is the MemsoakPlugin (its
    `current` and `last` runs are shown)."""
    web_ui = environment.web_ui
    web_ui.template_args["extended_tabs"] = [{"title": "Memory", "key": TABLE_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": TABLE_KEY, "structure": [
        {"key": "signal", "title": "Signal"}, {"key": "value", "title": "Value"}]}]
    web_ui.template_args["extended_csv_files"] = [{"href": "./memsoak/memory", "title": "Memory chart (live)"}]
    _keep_secrets_out_of_the_page(web_ui)

    @web_ui.app.after_request
    def _add_memory(response: Response) -> Response:
        if request.path.endswith("/stats/requests") and response.is_json:
            body = response.get_json()
            body.setdefault("extended_stats", []).append({"key": TABLE_KEY, "data": table(environment, state)})
            response.set_data(json.dumps(body))
        return response

    @web_ui.app.route("/memsoak/memory")
    @web_ui.auth_required_if_enabled
    def _memory_page() -> str:
        return PAGE

    @web_ui.app.route("/memsoak/memory.png")
    @web_ui.auth_required_if_enabled
    def _memory_png() -> Response:
        return Response(chart_png(rows_of(state)), mimetype="image/png",
                        headers={"Cache-Control": "no-store"})

    @web_ui.app.route("/memsoak/memory.json")
    @web_ui.auth_required_if_enabled
    def _memory_json() -> Response:
        return Response(json.dumps(table(environment, state)), mimetype="application/json")


def _keep_secrets_out_of_the_page(web_ui: Any) -> None:
    """The hook token (any `is_secret` option) never reaches the page; a blank field keeps it.

    Locust masks a secret's form field but still writes its configured value into the page source
    (`extra_options`, rebuilt on every page load). Blank it there, and drop a blank secret from the
    start form so the run keeps the configured token instead of sending an empty one.
    """
    original = web_ui.update_template_args

    def update_without_secrets() -> None:
        original()
        for spec in (web_ui.template_args.get("extra_options") or {}).values():
            if spec.get("is_secret"):
                spec["default_value"] = ""

    web_ui.update_template_args = update_without_secrets
    update_without_secrets()

    @web_ui.app.before_request
    def _blank_secret_keeps_configured() -> None:
        if request.method == "POST" and request.path.endswith("/swarm"):
            secrets = {name for name, spec in (web_ui.template_args.get("extra_options") or {}).items()
                       if spec.get("is_secret")}
            form = request.form.copy()
            for name in secrets:
                if not form.get(name):
                    form.pop(name, None)
            request.form = ImmutableMultiDict(form)


def rows_of(state: Any) -> list[dict[str, Any]]:
    soak = state.current or state.last
    return list(soak.recent) if soak is not None else []


def _mb(value: Any) -> str:
    return f"{value / MB:.1f} MB" if isinstance(value, (int, float)) else "n/a"


def table(environment: Any, state: Any) -> list[dict[str, str]]:
    """The Memory tab's rows: latest sample, load, trend and limit, as display strings."""
    soak = state.current or state.last
    limit = float(option(environment.parsed_options, "rss_limit_mb"))
    rows = list(soak.recent) if soak is not None else []
    latest = rows[-1] if rows else {}
    out = [
        ("Engine RSS", _mb(latest.get("rss_bytes"))),
        ("Engine tree RSS", _mb(latest.get("tree_rss_bytes"))),
        ("Python heap (traced)", _mb(latest.get("traced_current_bytes"))),
        ("Allocated blocks", str(latest.get("allocated_blocks", "n/a"))),
        ("Users", str(latest.get("users", "n/a"))),
        ("RPS", str(latest.get("rps", "n/a"))),
        ("RSS limit", f"{limit:.0f} MB" if limit > 0 else "off"),
    ]
    out += trend_rows(rows)
    if soak is not None:
        out.append(("Status", status.status_line(environment, soak)))
        age = time.monotonic() - soak.t0 - float(latest.get("t", 0.0)) if latest else None
        out += [("Samples", str(len(rows))),
                ("Last sample", f"{age:.1f} s ago" if age is not None else "none yet"),
                ("State", soak.stop_reason or ("finished" if soak.finalized else "measuring")),
                ("Run directory", str(soak.rundir.path))]
    else:
        out.append(("State", "no run yet: start one"))
    return [{"signal": name, "value": value} for name, value in out]


def trend_rows(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    if len(rows) < 3:
        return [("Trend", "not enough samples yet")]
    try:
        trend = reports.live_trend(rows)
    except Exception as exc:  # the live view must never break the UI
        return [("Trend", f"n/a ({type(exc).__name__})")]
    shown = []
    for key, value in (trend or {}).items():
        label = key.replace("_", " ")
        shown.append((f"Trend: {label}", f"{value:.2f}" if isinstance(value, float) else str(value)))
    return shown or [("Trend", "n/a")]


def chart_png(rows: list[dict[str, Any]]) -> bytes:
    """RSS and Python heap over time above users and RPS, as a PNG."""
    matplotlib.use("Agg")
    step = max(1, len(rows) // CHART_POINTS)
    rows = rows[::step]
    t = [r.get("t", 0.0) for r in rows]
    fig = Figure(figsize=(9, 5.5), dpi=90)
    memory, load = fig.subplots(2, 1, sharex=True)
    memory.plot(t, [(r.get("rss_bytes") or 0) / MB for r in rows], label="RSS MB")
    if any(r.get("traced_current_bytes") is not None for r in rows):
        memory.plot(t, [(r.get("traced_current_bytes") or 0) / MB for r in rows], label="heap MB (traced)")
    memory.set_ylabel("MB")
    memory.legend(loc="upper left")
    memory.set_title("engine memory" if rows else "engine memory: no samples yet")
    load.plot(t, [r.get("users") or 0 for r in rows], label="users", color="tab:green")
    load.set_ylabel("users")
    rps_axis = load.twinx()
    rps_axis.plot(t, [r.get("rps") or 0 for r in rows], label="RPS", color="tab:orange")
    rps_axis.set_ylabel("RPS")
    load.set_xlabel("seconds since test start")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>memsoak: engine memory</title>
<style>body{font-family:sans-serif;margin:1em}td{padding:2px 12px}</style></head><body>
<h2>Engine memory (live)</h2><p><a href="../">back to Locust</a></p>
<img id="chart" src="memory.png" alt="memory chart"><table id="values"></table>
<script>
async function refresh(){
  document.getElementById('chart').src='memory.png?ts='+Date.now();
  try{const rows=await (await fetch('memory.json')).json();
    const table=document.getElementById('values'); table.replaceChildren();
    for(const r of rows){const tr=table.insertRow(); tr.insertCell().textContent=r.signal; tr.insertCell().textContent=r.value;}
  }catch(e){}
}
refresh(); setInterval(refresh, 3000);
</script></body></html>"""
