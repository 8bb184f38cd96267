"""The campus's day: dormitory and shop load curves, mains voltage and frequency, tariff hours.

Every random-looking number is a hash of (seed, meter, time bucket), never a draw from a shared
generator: the same ``--seed`` gives the same campus whatever order meters are read in and
however often, and a meter costs nothing while nobody reads it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from app.simulator.clock import CAMPUS_TZ

_TZ_OFFSET_S = int(CAMPUS_TZ.utcoffset(None).total_seconds())  # type: ignore[union-attr]
_SCALE = float(1 << 64)

#: Dormitory demand by local time: (first minute, end minute, low W, high W).
DORM_BANDS: tuple[tuple[int, int, float, float], ...] = (
    (0, 390, 20, 40),  # lights-out: chargers, a fan
    (390, 480, 80, 200),  # getting up
    (480, 690, 40, 120),  # in class
    (690, 810, 120, 300),  # noon
    (810, 1050, 60, 150),  # afternoon
    (1050, 1140, 150, 300),  # dinner
    (1140, 1410, 250, 600),  # evening peak 19:00-23:30
    (1410, 1440, 20, 40),  # lights-out at 23:30
)
#: Shops: open 8:00-22:00 at 0.8-2 kW, a fridge and a till otherwise.
SHOP_OPEN = (480, 1320)
SHOP_OPEN_W = (800.0, 2000.0)
SHOP_CLOSED_W = (30.0, 60.0)

#: Hidden resistive loads (immersion heaters, hot plates) in dorm rooms in the evening.
MALICIOUS_PER_HOUR = 0.002
MALICIOUS_HOURS = range(19, 24)
MALICIOUS_W = (800, 2000)
MALICIOUS_MINUTES = (10, 60)

#: Tariff of each local hour: 0 spike (尖), 1 peak (峰), 2 flat (平), 3 valley (谷).
TARIFF_BY_HOUR: tuple[int, ...] = (
    3, 3, 3, 3, 3, 3, 3,  # 00-07 valley
    2,  # 07-08 flat
    1, 1, 1,  # 08-11 peak
    2, 2, 2, 2, 2, 2,  # 11-17 flat
    1, 1,  # 17-19 peak
    0, 0,  # 19-21 spike
    1, 1,  # 21-23 peak
    3,  # 23-24 valley
)


def unit_hash(*parts: int | str) -> float:
    """A uniform number in [0, 1) fixed by ``parts``: the simulator's only source of noise."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def local_minute_of_day(t: float) -> int:
    return int((t + _TZ_OFFSET_S) // 60) % 1440


def local_hour(t: float) -> int:
    return int((t + _TZ_OFFSET_S) // 3600) % 24


def tariff_at(t: float) -> int:
    return TARIFF_BY_HOUR[local_hour(t)]


@dataclass(frozen=True)
class Load:
    """A load drawing ``watts`` at power factor ``pf``."""

    watts: float
    pf: float

    @property
    def vars(self) -> float:
        """Reactive power: what a power factor below one adds to the current."""
        if self.pf >= 1.0:
            return 0.0
        return self.watts * math.tan(math.acos(self.pf))


def combine(loads: list[Load]) -> tuple[float, float]:
    """Total active power and power factor of loads on one meter."""
    p = sum(load.watts for load in loads)
    q = sum(load.vars for load in loads)
    if p <= 0:
        return 0.0, 1.0
    return p, p / math.hypot(p, q)


def base_load(seed: int, meter: tuple[int, int], shop: bool, room: float, t: float) -> Load:
    """The room's (or shop's) own appliances at time ``t``: constant within a minute.

    ``room`` (0..1, fixed per meter) places the meter in the band, so a busy room stays busy;
    the per-minute noise moves it around that place.
    """
    minute = int(t // 60)
    u = unit_hash(seed, *meter, minute, "p")
    pf = 0.85 + 0.13 * unit_hash(seed, *meter, minute, "pf")
    m = local_minute_of_day(t)
    if shop:
        lo, hi = SHOP_OPEN_W if SHOP_OPEN[0] <= m < SHOP_OPEN[1] else SHOP_CLOSED_W
    else:
        lo, hi = next((lo, hi) for a, b, lo, hi in DORM_BANDS if a <= m < b)
    return Load(round(lo + (hi - lo) * (0.5 * room + 0.5 * u), 1), round(pf, 3))


def hidden_heater(seed: int, meter: tuple[int, int], t: float) -> Load | None:
    """A resistive load someone switched on in a dorm room this evening, if any at ``t``."""
    hour = int((t + _TZ_OFFSET_S) // 3600)
    for h in (hour, hour - 1):
        if h % 24 not in MALICIOUS_HOURS:
            continue
        if unit_hash(seed, *meter, h, "mal") >= MALICIOUS_PER_HOUR:
            continue
        start = h * 3600 - _TZ_OFFSET_S + 60 * int(60 * unit_hash(seed, *meter, h, "mal-at"))
        lo, hi = MALICIOUS_MINUTES
        end = start + 60 * (lo + int((hi - lo + 1) * unit_hash(seed, *meter, h, "mal-for")))
        if start <= t < end:
            wlo, whi = MALICIOUS_W
            watts = 10 * round((wlo + (whi - wlo) * unit_hash(seed, *meter, h, "mal-w")) / 10)
            return Load(float(watts), 1.0)
    return None


def mains_voltage(seed: int, meter: tuple[int, int], t: float) -> float:
    """Supply voltage: 220 V give or take 9 V (well inside 198-242 V), new every 10 s."""
    bucket = int(t // 10)
    a = unit_hash(seed, *meter, bucket, "u1")
    b = unit_hash(seed, *meter, bucket, "u2")
    return 220.0 + 9.0 * (a + b - 1.0)


def mains_frequency(seed: int, t: float) -> float:
    """Grid frequency, the same for the whole campus: 50 Hz +/- 0.05, new every 10 s."""
    return 50.0 + 0.05 * (2.0 * unit_hash(seed, int(t // 10), "f") - 1.0)
