"""The locustfiles' tests use the same real-process fixtures as tests/memsoak."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "memsoak"))
from memsoak_procs import engine, procs  # noqa: E402,F401
