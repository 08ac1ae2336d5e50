"""The run's knobs parse once into RunSettings; the analysis knobs it applies live come typed with it.

The checks run in a child interpreter: the plugin imports Locust, which must never monkey-patch the
pytest process (memsoak_procs.py)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

CHECKS = textwrap.dedent("""
    import argparse
    import dataclasses

    from memsoak.knobs import Knob
    from memsoak.plugin.arguments import PLUGIN_ARGS, RunSettings, validate

    options = argparse.Namespace(run_time=600, sample_interval_s="2", engine_lost_polls=7.0,
                                 hook_url="http://127.0.0.1:1", rss_limit_mb="256", top_n=5, plateau_ratio=0.5)
    run = RunSettings.from_options(options)
    assert (run.sample_interval_s, run.engine_lost_polls, run.run_time_s) == (2.0, 7, 600.0), run
    assert isinstance(run.engine_lost_polls, int) and run.status_interval_s == 60.0, run
    assert (run.analysis.rss_limit_mb, run.analysis.top_n) == (256.0, 5), run.analysis
    # a live run has both plateau knobs, each its own (only a run.json without the new one falls back)
    assert (run.analysis.plateau_ratio, run.analysis.plateau_early_ratio) == (0.5, 0.25), run.analysis
    try:
        run.quick = True
        raise AssertionError("RunSettings is not frozen")
    except dataclasses.FrozenInstanceError:
        pass
    problems = validate(argparse.Namespace(engine_lost_polls=0, plateau_early_ratio=1.5),
                        argv=["--engine-lost-polls", "0"])
    assert problems == ["memsoak: --engine-lost-polls = '0' must be >= 1 and <= 100000",
                        "memsoak: plateau-early-ratio in the config file (or web form) = '1.5' must be >= 0 "
                        "and <= 1"], problems
    assert all(isinstance(s, Knob) and s.env_var == "MEMSOAK_" + s.name.upper() for s in PLUGIN_ARGS)
    print("ok")
""")


def test_run_settings_are_typed_once_and_bad_values_name_the_flag() -> None:
    done = subprocess.run([sys.executable, "-c", CHECKS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
