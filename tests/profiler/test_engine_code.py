"""The engine's own packages, read from its command line in the engine's environment."""
from __future__ import annotations

import sys

import pytest

from memsoak.profiler.engine_code import engine_packages


@pytest.mark.parametrize("cmdline,expected", [
    (["/usr/bin/python3", "-m", "memsoak.demo_engine", "--port", "1"], ["memsoak"]),
    (["/usr/bin/python3", "-m", "aria.engine.server"], ["aria"]),
    (["/x/bin/python", "/x/bin/uvicorn", "aria_engine.main:app", "--port", "8000"], ["aria_engine"]),
    (["/x/bin/gunicorn", "-k", "uvicorn.workers.UvicornWorker", "app.main:create_app()"], ["app"]),
    (["/x/bin/python", "server.py", "--port", "80"], []),
    (["/x/bin/python", "-c", "print(1)"], []),
    ([], []),
])
def test_engine_packages_from_the_command_line(cmdline, expected):
    assert engine_packages(cmdline) == expected


def test_a_console_script_is_resolved_through_its_entry_point():
    # memsoak's own console scripts are installed in this environment
    assert engine_packages([sys.executable, "/any/bin/memsoak-demo-engine", "--port", "1"]) == ["memsoak"]
    assert engine_packages([sys.executable, "/any/bin/no-such-script-here"]) == []


def test_a_pip_stub_is_read_without_the_entry_points(tmp_path):
    # pip's console-script stub names its module; a name no distribution declares proves the stub
    # itself was read, and a stub of another shape still falls back to the entry points
    stub = tmp_path / "their-engine"
    stub.write_text("#!/usr/bin/python3\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
                    "from their_engine.cli import main\nif __name__ == '__main__':\n    sys.exit(main())\n")
    assert engine_packages([sys.executable, str(stub), "--port", "1"]) == ["their_engine"]
    other = tmp_path / "memsoak-demo-engine"
    other.write_text("#!/bin/sh\nexec python -m somewhere \"$@\"\n")
    assert engine_packages([sys.executable, str(other)]) == ["memsoak"]
