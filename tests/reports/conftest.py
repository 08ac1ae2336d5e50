from __future__ import annotations

import numpy as np
import pytest

from memsoak.reports.settings import resolve


@pytest.fixture
def settings() -> dict:
    return resolve()


@pytest.fixture
def hours4() -> np.ndarray:
    """4 h at 5 s sampling: the run length the issue's AR(1) figures use."""
    return np.arange(2880) * 5.0
