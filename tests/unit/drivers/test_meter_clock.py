"""A meter's clock bytes: BCD year to second with the weekday, the computer's local time."""

from __future__ import annotations

import time

from app.drivers import meter_clock


def test_round_trip_and_the_bytes_on_the_wire():
    t = time.mktime((2026, 12, 2, 17, 5, 9, 0, 0, -1))  # a Wednesday
    data = meter_clock.encode(t)
    assert data == bytes([0x26, 0x12, 0x02, 0x03, 0x17, 0x05, 0x09, 0x00])
    assert meter_clock.decode(data) == t
    assert len(meter_clock.encode(t, size=10)) == 10


def test_bytes_that_are_not_a_time():
    assert meter_clock.decode(bytes([0x26, 0x1A, 0x02, 0x03, 0x17, 0x05, 0x09])) is None  # BCD
    assert meter_clock.decode(bytes([0x26, 0x13, 0x02, 0x03, 0x17, 0x05, 0x09])) is None  # month
    assert meter_clock.decode(b"\0" * 8) is None  # month 0
    assert meter_clock.decode(b"\x26\x12") is None
