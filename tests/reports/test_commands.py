"""`memsoak report` and `memsoak compare` as real processes: exit codes and one-line errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import reports_synth as synth

CLI = [sys.executable, "-c", "import sys; from memsoak.cli import main; sys.exit(main())"]


def _run_dir(tmp_path, name, slope):
    t = np.arange(720) * 5.0
    rss = synth.clean("white", np.random.default_rng(len(name)), t) + slope * t / 3600
    return synth.write_run(tmp_path / name, synth.make_rows(t, rss))


def _memsoak(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_report_rerenders_offline_and_exits_with_the_outcome(tmp_path):
    leaky = _run_dir(tmp_path, "leaky", 40.0)
    done = _memsoak("report", leaky)
    assert done.returncode == 10, done.stderr
    assert (leaky / "report.html").exists() and (leaky / "junit.xml").exists()
    assert "LEAK" in done.stdout
    clean = _run_dir(tmp_path, "clean", 0.0)
    assert _memsoak("report", clean, "--set", "warmup_s=60").returncode == 0


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_13(tmp_path):
    for args in (["report", tmp_path / "missing"], ["report", tmp_path],
                 ["report", _run_dir(tmp_path, "x", 0.0), "--set", "nope=1"],
                 ["compare", tmp_path / "missing", tmp_path]):
        done = _memsoak(*args)
        assert done.returncode == 13, (args, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_compare_exit_codes(tmp_path):
    base, other = _run_dir(tmp_path, "base", 0.0), _run_dir(tmp_path, "other", 0.0)
    leaky = _run_dir(tmp_path, "leaky", 40.0)
    assert _memsoak("compare", base, leaky, "--json", tmp_path / "c.json").returncode == 14
    assert (tmp_path / "c.json").exists()
    assert _memsoak("compare", base, other).returncode == 0
