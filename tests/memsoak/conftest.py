"""Fixtures of the Locust-side tests (defined in memsoak_procs.py, shared with tests/locustfiles)."""
from memsoak_procs import engine, procs  # noqa: F401
