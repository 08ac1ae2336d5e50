"""report.json: the Report as plain JSON (rows left out: series.jsonl holds them)."""
from __future__ import annotations

import dataclasses
import json
import math
from enum import Enum
from typing import Any

from ..verdict.model import Report


def to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name != "rows"}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Enum):         # Verdict and the like: their string, as report.json always had
        return value.value
    if hasattr(value, "item"):          # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None                     # JSON has no inf/nan
    return value


def to_dict(report: Report) -> dict[str, Any]:
    return to_plain(report)


def render_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, sort_keys=False)
