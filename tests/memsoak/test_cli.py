"""The `memsoak` command: usage mistakes are one line and exit 13, never a traceback.

Each call spends most of its time importing the analysis stack, so the module fixture runs all of
them at once and each test reads its own.
"""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

BAD_INPUT = [
    (("demo", "--leak", "nosuch"), "unknown leak 'nosuch'"),
    (("demo", "--duration", "soon"), "invalid duration 'soon'"),
    (("demo", "--leak", "session_state:lots"), "whole number of bytes"),
    (("nosuchcommand",), "invalid choice"),
]
HELP = ("--help",)


def memsoak(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memsoak.cli", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def done() -> dict[tuple[str, ...], subprocess.CompletedProcess]:
    calls = [args for args, _words in BAD_INPUT] + [HELP]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return dict(zip(calls, pool.map(lambda args: memsoak(*args), calls)))


@pytest.mark.slow
@pytest.mark.parametrize("args, words", BAD_INPUT)
def test_bad_input_is_one_line_and_exit_13(done, args: tuple[str, ...], words: str) -> None:
    result = done[args]
    assert result.returncode == 13
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_help_lists_demo(done) -> None:
    result = done[HELP]
    assert result.returncode == 0 and "demo" in result.stdout
