"""memsoak/contract.py: what crosses the boundaries is defined there once, imported everywhere, and
the plugin imports everything it will need at start.

The source scans are the acceptance's `grep`, made a test: an exit code, an event type or the
sample's field list written again anywhere else fails here, naming the file and line.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
import textwrap

import pytest

from memsoak import reports
from memsoak import contract

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("memsoak", "reports", "profiler", "locustfiles", "demo_engine")
CONTRACT = ROOT / "memsoak" / "contract.py"


def _python(code: str, *flags: str, pythonpath: str = str(ROOT), cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter (Locust monkey-patches ssl on import: never in pytest's own)."""
    return subprocess.run([sys.executable, *flags, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, "PYTHONPATH": pythonpath})


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if p != CONTRACT)


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


def _module_constants(tree: ast.Module) -> list[tuple[ast.AST, object]]:
    """(node, value) of every constant assigned at module or class level, and dict entries there."""
    found: list[tuple[ast.AST, object]] = []
    bodies = [tree.body] + [n.body for n in tree.body if isinstance(n, ast.ClassDef)]
    for body in bodies:
        for node in body:
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, ast.Constant):
                found.append((node, value.value))
            elif isinstance(value, ast.Dict):
                found += [(v, v.value) for v in value.values if isinstance(v, ast.Constant)]
                found += [(k, k.value) for k in value.keys if isinstance(k, ast.Constant)]
    return found


def test_exit_codes_and_event_types_are_defined_only_in_the_contract() -> None:
    codes = set(contract.EXIT_CODES.values()) - {0}
    event_types = set(contract.EVENT_TYPES)
    copies = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, value in _module_constants(tree):
            if isinstance(value, int) and not isinstance(value, bool) and value in codes and isinstance(
                    node, (ast.Assign, ast.AnnAssign)) and re.search(r"(CODE|CONFIG|EXIT|LEAK|LIMIT|LOST|INTERRUPT)",
                                                                    ast.unparse(node).split("=")[0]):
                copies.append(f"{_where(path, node)}: exit code {ast.unparse(node)}")
            if isinstance(value, str) and value in event_types and isinstance(node, (ast.Assign, ast.AnnAssign)):
                copies.append(f"{_where(path, node)}: event type {ast.unparse(node)}")
    assert not copies, "defined again outside memsoak/contract.py:\n" + "\n".join(copies)


def test_the_shell_scripts_exit_with_the_contracts_codes() -> None:
    """Shell cannot import the contract: each literal exit code there names its outcome, checked here."""
    found = []
    for script in sorted((ROOT / "docker").rglob("*.sh")) + [ROOT / ".ci" / "run"]:
        for number, line in enumerate(script.read_text(encoding="utf-8").splitlines(), 1):
            match = re.search(r"\bexit (1[0-9])\b", line)
            if match:
                outcome = re.search(r"#\s*([a-z_]+)", line)
                found.append((f"{script.relative_to(ROOT)}:{number}", int(match.group(1)),
                              outcome.group(1) if outcome else None))
            assert not re.search(r"^[A-Z_]+=1[0-9]\b", line), f"{script.name}:{number} copies an exit code: {line}"
    assert found, "no literal exit code found: the scan is broken"
    for where, code, outcome in found:
        assert contract.EXIT_CODES.get(outcome) == code, f"{where}: exit {code} is not the contract's {outcome!r}"


def test_no_module_copies_the_sample_field_list() -> None:
    fields = set(contract.SAMPLE_FIELDS)
    copies = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if len(names & fields) >= len(fields) // 2:
                    copies.append(f"{_where(path, node)}: {len(names & fields)} of the sample's fields")
    assert not copies, "the sample's fields listed again (import them from memsoak.contract):\n" + "\n".join(copies)


def test_the_plugin_writes_events_only_by_their_contract_names() -> None:
    source = (ROOT / "memsoak" / "plugin" / "soak.py").read_text(encoding="utf-8")
    literal = re.findall(r"""(?:_event|append_event|request_stop)\(\s*["']""", source)
    assert not literal, f"an event type or stop reason written as a literal in memsoak/plugin/soak.py: {literal}"


def test_the_planted_leak_names_are_the_engines() -> None:
    from memsoak.demo_engine import leaks, settings
    assert tuple(settings.LEAK_NAMES) == contract.LEAK_NAMES
    assert set(leaks.DEFAULT_BYTES) == set(leaks.PER_OP) == set(contract.LEAK_NAMES)


def test_a_joined_row_has_exactly_the_contracts_fields() -> None:
    out = _python("""
        import json
        from types import SimpleNamespace
        from locust.stats import RequestStats
        from memsoak import contract
        from memsoak.plugin import rows
        stats = RequestStats()
        stats.log_request("POST", "/api/engine/chat/sessions", 12, 100)
        stats.log_error("POST", "/api/engine/chat/sessions", "HTTP 500")
        load = rows.load_side(SimpleNamespace(stats=stats, user_count=3))
        sample = {name: None for name in contract.SAMPLE_FIELDS} | {"seq": 7, "t_mono": 50.0}
        print(json.dumps({"load": list(load), "row": rows.join([sample], load, now_t=12.5)[0]}))
    """)
    assert out.returncode == 0, out.stderr[-2000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert tuple(answer["load"]) == contract.LOAD_FIELDS
    row = answer["row"]
    assert tuple(row) == (*contract.SAMPLE_FIELDS, "t", *contract.LOAD_FIELDS) == contract.ROW_FIELDS
    assert row["t"] == 12.5 and row["users"] == 3 and row["requests_total"] == 1
    assert set(contract.Row.__annotations__) == set(contract.ROW_FIELDS)


def test_the_contract_imports_the_standard_library_only() -> None:
    code = ("import sys; before = set(sys.modules); import memsoak.contract; "
            "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}))")
    out = _python(code, "-S")   # -S: no site-packages, so nothing but the standard library can load
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout.replace("'", '"')))
    assert loaded - set(sys.stdlib_module_names) == {"memsoak"}, loaded


# --- the RSS limit: one rule for the harness and the report -------------------------------------
def test_the_rss_limit_holds_the_whole_tree_first() -> None:
    limit_mb = 100
    under, over = 50 * contract.MB, 150 * contract.MB
    assert contract.over_rss_limit({"rss_bytes": under, "tree_rss_bytes": over}, limit_mb) == over
    assert contract.over_rss_limit({"rss_bytes": over, "tree_rss_bytes": None}, limit_mb) == over
    assert contract.over_rss_limit({"rss_bytes": under, "tree_rss_bytes": None}, limit_mb) is None
    assert contract.over_rss_limit({"rss_bytes": over}, 0) is None          # 0: no limit
    assert contract.over_rss_limit({"rss_bytes": None, "tree_rss_bytes": None}, limit_mb) is None
    assert contract.over_rss_limit({"rss_bytes": 100 * contract.MB}, limit_mb) is None   # at the limit: not over


def _stored_run(run_dir: Path, tree_mb: float | None) -> Path:
    """A 3-minute run stored without an rss_limit event: process RSS flat at 100 MB, the tree at
    `tree_mb` (two processes) or not measured."""
    run_dir.mkdir()
    rows = []
    for i in range(180):
        rows.append({name: None for name in contract.ROW_FIELDS} | {
            "seq": i + 1, "t": float(i), "t_mono": 1000.0 + i, "rss_bytes": 100 * contract.MB,
            "tree_rss_bytes": None if tree_mb is None else int(tree_mb * contract.MB),
            "tree_procs": 1 if tree_mb is None else 2, "users": 5, "rps": 10.0, "requests_total": 10 * i,
            "failures_total": 0, "requests_by_name": {"GET /": 10 * i}, "failures_by_name": {}, "ops": {}})
    (run_dir / "series.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    events = [{"type": contract.EVENT_TEST_START, "t": 0.0, "t_wall": 1.7e9},
              {"type": contract.EVENT_STOP, "t": 180.0, "t_wall": 1.7e9 + 180, "reason": "duration", "last_seq": 180}]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (run_dir / "run.json").write_text(json.dumps({"run_id": run_dir.name, "settings": {"rss_limit_mb": 512}}))
    return run_dir


@pytest.mark.parametrize("tree_mb,outcome", [(900.0, contract.RSS_LIMIT), (None, None), (300.0, None)])
def test_the_report_holds_a_stored_run_to_the_same_rule(tmp_path: Path, tree_mb: float | None,
                                                         outcome: str | None) -> None:
    report = reports.analyze(reports.load_run(_stored_run(tmp_path / "run", tree_mb)))
    if outcome:
        assert (report.outcome, report.exit_code) == (outcome, contract.EXIT_RSS_LIMIT)
        assert any("rss_limit_mb=512" in note for note in report.notes)
    else:
        assert report.outcome != contract.RSS_LIMIT
