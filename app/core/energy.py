"""Energy accounting from the meter's energy register (never from power).

Each good read gives the register in Wh. The delta since the last good read is split over the
15-minute intervals the time between the two reads covers, in proportion to time, in whole Wh
with the remainder carried so that the pieces sum exactly to the delta. A register that goes
backwards (meter replaced, counter reset) or jumps beyond what any room can draw is logged and
not booked: accounting restarts from the new value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

INTERVAL_S = 900
#: No dormitory or shop line draws more than this; a larger delta is a counter event.
MAX_PLAUSIBLE_POWER_W = 60_000


def interval_start(t: float) -> int:
    return int(t // INTERVAL_S) * INTERVAL_S


def local_day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(t))


def split_over_intervals(t0: float, t1: float, wh: int) -> list[tuple[int, int]]:
    """Split ``wh`` used between ``t0`` and ``t1`` over 15-minute intervals, exactly."""
    if wh == 0:
        return []
    if t1 <= t0 or interval_start(t0) == interval_start(max(t0, t1 - 1e-9)):
        return [(interval_start(t0) if t1 > t0 else interval_start(t1), wh)]
    pieces: list[tuple[int, int]] = []
    span = t1 - t0
    booked = 0
    cum_time = 0.0
    start = interval_start(t0)
    while start < t1:
        end = start + INTERVAL_S
        seg = min(end, t1) - max(start, t0)
        cum_time += seg
        target = round(wh * cum_time / span) if end < t1 else wh
        piece = target - booked
        if piece:
            pieces.append((start, piece))
        booked = target
        start = end
    return pieces


@dataclass
class Booking:
    intervals: list[tuple[int, int]] = field(default_factory=list)
    days: list[tuple[str, int]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class EnergyAccount:
    """One meter's running account: the last good register value and its time."""

    last_wh: int | None = None
    last_t: float | None = None

    def book(self, energy_wh: int, t: float) -> Booking:
        out = Booking()
        if self.last_wh is None or self.last_t is None:
            self.last_wh, self.last_t = energy_wh, t
            return out
        delta = energy_wh - self.last_wh
        dt = max(t - self.last_t, 0.0)
        if delta < 0:
            out.events.append(("counter_reset",
                               f"energy register went back from {self.last_wh / 1000:.2f} to "
                               f"{energy_wh / 1000:.2f} kWh; not booked"))
        elif delta > MAX_PLAUSIBLE_POWER_W * dt / 3600 + 1000:
            out.events.append(("energy_jump",
                               f"energy register jumped {delta / 1000:.2f} kWh in {dt:.0f} s; "
                               "not booked (meter replaced?)"))
        elif delta > 0:
            out.intervals = split_over_intervals(self.last_t, t, delta)
            days: dict[str, int] = {}
            for start, wh in out.intervals:
                day = local_day(start)
                days[day] = days.get(day, 0) + wh
            out.days = list(days.items())
        self.last_wh, self.last_t = energy_wh, t
        return out
