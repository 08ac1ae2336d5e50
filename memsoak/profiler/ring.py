"""A bounded ring of samples with sequence numbers, preallocated so the hook never grows.

Samples are stored flat in one `array('d')` allocated at start (8 bytes per field, NaN for null):
the buffer costs `capacity * fields * 8` bytes from the first second on, so filling it during a soak
does not show up as growth in the engine's own memory. Integers up to 2**53 round-trip exactly,
which covers byte counts of any real process. Readers pull `since` a sequence number (exclusive) and
learn how many samples were overwritten before they asked (`dropped`).
"""
from __future__ import annotations

import math
import threading
from array import array
from typing import Any, Sequence

NAN = math.nan


class SampleRing:
    def __init__(self, fields: Sequence[str], float_fields: frozenset[str], capacity: int) -> None:
        self.fields = tuple(fields)
        self.capacity = capacity
        self._width = len(self.fields)
        self._is_float = tuple(name in float_fields for name in self.fields)
        self._data = array("d", [NAN]) * (capacity * self._width)
        self._next_seq = 1
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._data.itemsize * len(self._data)

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    @property
    def first_seq(self) -> int:
        """Oldest sequence number still held (last_seq + 1 when empty)."""
        return max(1, self._next_seq - self.capacity)

    def append(self, values: Sequence[float | int | None]) -> int:
        """Store one sample (values in field order, `seq` slot ignored); returns its seq."""
        with self._lock:
            seq = self._next_seq
            base = ((seq - 1) % self.capacity) * self._width
            for offset, value in enumerate(values):
                self._data[base + offset] = NAN if value is None else float(value)
            self._data[base] = float(seq)
            self._next_seq = seq + 1
            return seq

    def latest(self) -> dict[str, Any] | None:
        with self._lock:
            if self._next_seq == 1:
                return None
            return self._decode(self._next_seq - 1)

    def since(self, since: int, limit: int) -> dict[str, Any]:
        """Up to `limit` oldest samples with seq > since, and the ring's bounds."""
        with self._lock:
            first, last = self.first_seq, self.last_seq
            start = max(since + 1, first)
            stop = min(last, start + max(limit, 0) - 1)
            samples = [self._decode(seq) for seq in range(start, stop + 1)]
            dropped = max(0, first - (since + 1)) if last >= first else 0
            return {"samples": samples, "last_seq": last, "first_seq": first, "dropped": dropped}

    def _decode(self, seq: int) -> dict[str, Any]:
        base = ((seq - 1) % self.capacity) * self._width
        row = self._data[base: base + self._width]
        out: dict[str, Any] = {}
        for name, is_float, value in zip(self.fields, self._is_float, row):
            if math.isnan(value):
                out[name] = None
            else:
                out[name] = value if is_float else int(value)
        return out
