"""Storage on a real SQLite file: schema, batched writes, lease."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from app.drivers.meter_values import MeterValues
from app.errors import StorageError
from app.storage import campus, lease, readings
from app.storage.db import open_database
from app.storage.migrations import SCHEMA_VERSION
from app.storage.models import Meta
from app.storage.readings import BusOutcome, PollOutcome


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "vk.db"
    database = open_database(path)
    yield path
    database.close()


def _one_meter():
    root = campus.add_node(None, "campus", "c")
    room = campus.add_node(root, "room", "1-101", "1-101")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:5021")
    return bus, campus.add_meter(bus, 1, "acrel-ddsy1352", "310000001001", room)


def test_wal_and_schema_version(db):
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert Meta.get(Meta.key == "schema_version").value == str(SCHEMA_VERSION)


def test_newer_schema_refused(db):
    Meta.update(value="999").where(Meta.key == "schema_version").execute()
    with pytest.raises(StorageError, match="newer than this program"):
        open_database(db)


def test_batch_accumulates_energy_and_stats(db):
    bus, meter = _one_meter()
    readings.write_batch([
        PollOutcome(meter, 1000.0, True,
                    values=MeterValues(1000.0, energy_kwh=Decimal("0.1"), active_power_w=5.0),
                    intervals=[(900, 10)], days=[("2026-11-25", 10)], latency_ms=4.0,
                    sample=True),
        PollOutcome(meter, 1005.0, True,
                    values=MeterValues(1005.0, energy_kwh=Decimal("0.11"), active_power_w=6.0),
                    intervals=[(900, 10)], days=[("2026-11-25", 10)], latency_ms=9.0),
    ], [BusOutcome(bus, "polling", 1.5, 1005.0, meters_online=1, meters_total=1)])
    readings.write_batch([PollOutcome(meter, 1010.0, False, error_kind="timeout",
                                      consecutive_failures=3, online=False,
                                      online_changed=True, events=[("offline", "silent")])])
    assert readings.interval_energy(meter) == [(900, 20)]
    assert readings.daily_energy(meter) == [("2026-11-25", 20)]
    row = readings.latest([meter])[0]
    assert row.values.energy_wh == 110 and row.online is False
    stats = readings.comm_stats()[meter]
    assert (stats["reads"], stats["failures"], stats["timeouts"]) == (3, 1, 1)
    assert stats["worst_latency_ms"] == 9.0 and stats["offline_since"] == 1010.0
    assert readings.bus_states()[bus]["last_cycle_s"] == 1.5
    assert [e["kind"] for e in readings.events(meter)] == ["offline"]
    assert readings.baselines() == {meter: (110, 1005.0)}
    assert readings.samples(meter, 0) == [(1000.0, 5.0)]
    assert readings.prune_samples(older_than=2000.0) == 1


def test_lease_one_holder(db):
    ok, mine = lease.acquire("serve", ttl_s=30, now=1000.0)
    assert mine.holder == "serve" and mine.expires_at == 1030.0
    assert ok
    # the same process renews
    assert lease.acquire("serve", ttl_s=30, now=1010.0)[0]
    # a different process is refused while the lease lives, and told who has it
    from app.storage.models import Lease

    Lease.update(pid=Lease.pid + 1).execute()
    ok2, holder = lease.acquire("gui", ttl_s=30, now=1020.0)
    assert not ok2 and holder.holder == "serve"
    # after expiry it may take over
    assert lease.acquire("gui", ttl_s=30, now=1050.0)[0]
