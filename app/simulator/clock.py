"""Simulated time: meter time runs ``speed`` times the wall clock from a start epoch.

``speed`` 1 is real time; 1440 runs a day a minute; 0 freezes meter time so tests can compare
exact values, and :meth:`SimClock.advance` steps it. Monotonic time drives it so a wall-clock
jump (NTP, a laptop waking) does not make meters jump.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

#: The campus's local time (China Standard Time): load curves and tariff hours follow it.
CAMPUS_TZ = timezone(timedelta(hours=8))


def parse_start(text: str) -> float:
    """Epoch seconds of an ISO date-time; without a zone it is campus local time (UTC+8)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--start {text!r} is not an ISO date-time such as "
                         "2026-03-02T20:00:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=CAMPUS_TZ)
    return when.timestamp()


class SimClock:
    """Meter time in epoch seconds. Thread-safe: read by the server loop, stepped by tests."""

    def __init__(self, start: float | None = None, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, not {speed}")
        self.start = time.time() if start is None else float(start)
        self.speed = float(speed)
        self._mono0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self.start + self._offset + (time.monotonic() - self._mono0) * self.speed

    def advance(self, seconds: float) -> None:
        """Step meter time forward (the way to move frozen time, ``speed`` 0)."""
        if seconds < 0:
            raise ValueError("meter time does not run backwards")
        with self._lock:
            self._offset += seconds
