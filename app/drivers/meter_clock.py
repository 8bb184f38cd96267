"""A meter's clock as its registers carry it: year, month, day, weekday, hour, minute, second,
one BCD byte each (``YY MM DD WW hh mm ss``, a pad byte after), the meter's local time.

The DDSY1352's vendor tool reads the clock at 0228H this way; that it is BCD and that the same
block can be written with FC10 are inferred (the profile says so): a meter that refuses the
write, or whose bytes are not BCD, fails its commissioning check saying so.
"""

from __future__ import annotations

import time
from datetime import datetime


def _bcd(n: int) -> int:
    return (n // 10) << 4 | n % 10


def _num(b: int) -> int | None:
    hi, lo = b >> 4, b & 0x0F
    return None if hi > 9 or lo > 9 else hi * 10 + lo


def encode(t: float, size: int = 8) -> bytes:
    """The clock bytes for epoch ``t`` in this computer's local time (the campus's)."""
    lt = time.localtime(t)
    weekday = (lt.tm_wday + 1) % 7  # 0 Sunday .. 6 Saturday, as meters count
    data = bytes(_bcd(v) for v in (lt.tm_year % 100, lt.tm_mon, lt.tm_mday, weekday,
                                   lt.tm_hour, lt.tm_min, lt.tm_sec))
    return data.ljust(size, b"\0")


def decode(data: bytes) -> float | None:
    """Epoch seconds of the clock bytes read as local time; None when they are not a time."""
    if len(data) < 7:
        return None
    fields = [_num(b) for b in data[:7]]
    if any(f is None for f in fields):
        return None
    yy, mo, dd, _wd, hh, mi, ss = fields  # type: ignore[misc]
    try:
        return datetime(2000 + yy, mo, dd, hh, mi, ss).timestamp()
    except ValueError:
        return None
