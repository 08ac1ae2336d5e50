"""junit.xml: one test case per check, so any CI shows a leak as a failed test."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from ..outcome import BAD_CONFIG, INSUFFICIENT, INTERRUPTED, INVALID_LOAD, MEASUREMENT_FAILED, title
from ..verdict.model import Report
from ..verdict.verdicts import Verdict


def render_junit(report: Report) -> str:
    suite = ET.Element("testsuite", name=f"memsoak.{report.run_id}")
    cases: list[tuple[str, str | None, str]] = []   # name, failure message or None, details
    for event, message in (("engine_lost", "the engine stopped answering the hook"),
                           ("rss_limit", "RSS passed the limit")):
        held = event in report.events or report.outcome == event
        cases.append((f"run.{event}", message if held else None, str(report.events.get(event, ""))))
    problems = {p["outcome"]: p["reason"] for p in report.problems}
    load = report.load or {}
    failures = "; ".join(f"{f['request']} {('HTTP ' + str(f['status'])) if f.get('status') else ''} "
                         f"x{f['count']} ({f['error']})" for f in load.get("failures_by_name", []))
    for name, outcome, passed in (
            ("run.configuration", BAD_CONFIG, "the engine accepted the requests"),
            ("run.load", INVALID_LOAD, f"{load.get('failures', 0)}/{load.get('requests', 0)} requests failed"),
            ("run.measurement", MEASUREMENT_FAILED, "every row written and every hook answer valid"),
            ("run.completed", INTERRUPTED, "the run ended as planned"),
            ("run.evidence", INSUFFICIENT, "enough samples for a verdict")):
        reason = problems.get(outcome)
        details = passed if reason is None else reason
        if outcome == INVALID_LOAD and failures:
            details += f"; failures: {failures}"
        cases.append((name, f"{title(outcome)}: {reason}" if reason else None, details))
    for sig in report.signals:
        # An inconclusive signal gates like a leak (exit 15): the run could not show it is bounded.
        failed = f"{sig.label} ({sig.verdict}): {sig.reason}" if sig.verdict in (Verdict.LEAK, Verdict.INCONCLUSIVE) else None
        cases.append((f"signal.{sig.name}", failed, f"{sig.verdict}: {sig.reason}"))
    if report.legacy:
        leg = report.legacy
        # The original method is shown for continuity; it does not gate (informational case).
        cases.append(("original_method.rss", None, f"{'leak' if leg.leak else 'pass'}: {leg.reason}"))
    failures = 0
    for name, failure, details in cases:
        case = ET.SubElement(suite, "testcase", classname="memsoak", name=name, time="0")
        if failure:
            failures += 1
            if name.startswith("signal."):
                kind = "inconclusive" if "(inconclusive)" in failure.split(":", 1)[0] else "leak"
            else:
                kind = name.split(".")[-1]
            node = ET.SubElement(case, "failure", message=failure, type=kind)
            node.text = details
        else:
            ET.SubElement(case, "system-out").text = details
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
