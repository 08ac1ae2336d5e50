"""The verdicts, as an enum whose values are the strings report.json has always carried.

`Verdict` is a StrEnum: a member equals its string ("leak" == Verdict.LEAK), formats as it and
serialises as it, so stored runs, the JSON schema and every `verdict == "leak"` elsewhere keep
working unchanged.
"""
from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    LEAK = "leak"                  # growth beyond the floors that did not settle
    INCONCLUSIVE = "inconclusive"  # growth beyond the floors, slowing or too short a window to tell
    PLATEAU = "plateau"            # grew then flattened (per signal only)
    PASS = "pass"
    INSUFFICIENT = "insufficient"  # too few samples after the warm-up (per signal only)
