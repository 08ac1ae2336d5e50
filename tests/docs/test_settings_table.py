"""docs/settings.md is the table `python -m memsoak.knobs --markdown` prints from the code, and that
table covers every memsoak argument Locust registers and every variable the hook reads."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "settings.md"
REGENERATE = "python -m memsoak.knobs --markdown > docs/settings.md"


def _python(code: str) -> str:
    # A fresh interpreter: the table imports Locust, which patches the standard library (gevent).
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_docs_settings_table_is_generated_from_the_code() -> None:
    table = _python("import memsoak.knobs as k; k.main(['--markdown'])")
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if table != current:   # one line, not a diff of two tables
        pytest.fail(f"docs/settings.md is out of date: regenerate it with `{REGENERATE}`", pytrace=False)


def test_table_covers_every_registered_argument_and_hook_variable() -> None:
    found = json.loads(_python(
        "import json, memsoak.knobs as k\n"
        "from memsoak.commands.options import rows\n"
        "from memsoak.profiler.config import ENV\n"
        "knobs = [s for _t, _i, side in k.all_sides() for s in side]\n"
        "print(json.dumps({'registered': sorted(r[2] for r in rows()), 'hook': sorted(v for v, _p in ENV.values()),\n"
        "                  'knobs': [[s.name, s.env_var, s.flag] for s in knobs]}))\n"))
    env_vars = {env for _name, env, _flag in found["knobs"]}
    assert set(found["registered"]) <= env_vars, set(found["registered"]) - env_vars
    assert set(found["hook"]) <= env_vars, set(found["hook"]) - env_vars
    # the hook's allocation-tracking variables are documented where the hook reads them
    text = DOC.read_text(encoding="utf-8")
    for var in ("MEMSOAK_TRACEMALLOC_FRAMES", "MEMSOAK_ALLOC_MODE", "MEMSOAK_SAMPLE_BYTES"):
        assert f"`{var}`" in text.split("## Hook")[1].split("## ")[0], var
    # one Locust argument, one knob: no flag or variable declared twice on the Locust side
    locust_side = [(flag, env) for _name, env, flag in found["knobs"] if env.startswith("MEMSOAK_")
                   and env not in found["hook"]]
    assert len(locust_side) == len(set(locust_side))
