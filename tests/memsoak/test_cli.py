"""The `memsoak` command: usage mistakes are one line and exit 13, never a traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest


def memsoak(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memsoak.cli", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("args, words", [
    (["demo", "--leak", "nosuch"], "unknown leak 'nosuch'"),
    (["demo", "--duration", "soon"], "invalid duration 'soon'"),
    (["demo", "--leak", "session_state:lots"], "whole number of bytes"),
    (["nosuchcommand"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_13(args: list[str], words: str) -> None:
    done = memsoak(*args)
    assert done.returncode == 13
    assert words in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_help_lists_demo() -> None:
    done = memsoak("--help")
    assert done.returncode == 0 and "demo" in done.stdout
