"""Fixtures of the hook's tests: every process started through hookhelp is killed after the test."""
from __future__ import annotations

from hookhelp import _cleanup, alloc_engine  # noqa: F401  (fixtures)
