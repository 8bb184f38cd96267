"""A tool's hold on a bus: one holder at a time, renewed while the tool works, gone when it
is released or when a tool that died stops renewing it."""

from __future__ import annotations

import pytest

from app.storage import bus_holds, campus
from app.storage.db import open_database
from app.storage.models import BusHold


@pytest.fixture
def bus(tmp_path):
    d = open_database(tmp_path / "holds.db")
    yield campus.add_bus("B01", "tcp://127.0.0.1:1502")
    d.close()


def test_one_holder_at_a_time_and_an_expired_hold_is_no_hold(bus):
    ok, mine = bus_holds.take(bus, "wang", "scan", ttl_s=30, now=1000.0)
    assert ok and mine is not None and mine.mine and mine.acknowledged_at is None
    # another process (a second window) cannot take it meanwhile
    BusHold.update(pid=mine.pid + 1).execute()
    ok, held = bus_holds.take(bus, "li", "setup", ttl_s=30, now=1010.0)
    assert not ok and held is not None and (held.holder, held.purpose) == ("wang", "scan")
    # the first tool died: no renewal, the hold expires and the bus is free again
    assert bus_holds.current(bus, now=1029.0) is not None
    assert bus_holds.current(bus, now=1031.0) is None
    ok, taken = bus_holds.take(bus, "li", "setup", ttl_s=30, now=1031.0)
    assert ok and taken is not None and taken.holder == "li"


def test_the_poller_acknowledges_the_hold_it_saw_and_release_ends_it(bus):
    _ok, hold = bus_holds.take(bus, "wang", "commissioning", ttl_s=30)
    assert hold is not None
    bus_holds.acknowledge(bus, hold.taken_at - 1)  # an older hold's acknowledgement: ignored
    assert bus_holds.current(bus).acknowledged_at is None
    bus_holds.acknowledge(bus, hold.taken_at)
    assert bus_holds.current(bus).acknowledged_at is not None
    bus_holds.renew(bus, 300)
    assert bus_holds.current(bus).expires_at > hold.expires_at
    bus_holds.release(bus)
    assert bus_holds.current(bus) is None
