"""One typed record for a reading, from the driver to the window, on a real SQLite file.

A read decoded by ``values_from_points`` travels as the same ``MeterValues`` through
``PollOutcome`` and ``write_batch``, comes back from ``readings.latest()`` and reaches the views
as ``MeterLive.values``: every stored field equal, energy exact to the Wh, money to the cent.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from app.core import status
from app.core.live import LiveBatch, MeterLive
from app.core.live import stored_snapshot as load_snapshot
from app.core.writer import live_from_outcome
from app.drivers.meter_values import MeterValues, values_from_points
from app.storage import campus, readings
from app.storage.db import open_database
from app.storage.readings import PollOutcome
from app.ui.bridge import DatabaseFeed
from app.ui.live_store import LiveStore

#: What a LatestReading row does not keep (the slow settings and the profile's extra points).
NOT_STORED = ("price_per_kwh", "power_limit_w", "malicious_detection", "malicious_step_w",
              "token_status", "serial")
READ_AT = 1_790_000_123.456


@pytest.fixture
def meter(tmp_path):
    database = open_database(tmp_path / "x.db")
    root = campus.add_node(None, "campus", "c")
    room = campus.add_node(root, "room", "1-101", "1-101")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:5021")
    yield campus.add_meter(bus, 1, "acrel-ddsy1352", "310000001001", room)
    database.close()


def _read() -> MeterValues:
    """A read as the link decodes it: scaled registers are Decimal, units vary by profile."""
    decoded = {
        "voltage": Decimal("229.7"), "current": Decimal("4.123"),
        "active_power": Decimal("0.947"), "power_factor": Decimal("0.998"),
        "frequency": Decimal("49.98"),
        "energy": 987_654_321,  # a Wh register: 987,654.321 kWh, no float holds it exactly
        "remaining_energy": Decimal("88.12"), "remaining_money": Decimal("51.87"),
        "purchase_count": 7, "relay_closed": False, "control_mode": "forced_trip",
        "trip_reason": 4, "arrears": True, "alarm1": True, "fault": False,
        "price": Decimal("0.5887"), "power_limit": 2500, "serial": "310000001001",
        "overlimit_trips": 2,
    }
    units = {"active_power": "kW", "energy": "Wh", "remaining_energy": "kWh",
             "remaining_money": "yuan", "price": "yuan/kWh"}
    return values_from_points(decoded, units, READ_AT)


def _stored(read: MeterValues) -> MeterValues:
    """What the database gives back of ``read``: all but the fields it does not keep."""
    return dataclasses.replace(read, **dict.fromkeys(NOT_STORED), extra={})


def test_the_driver_record_is_complete():
    v = _read()
    assert v.energy_kwh == Decimal("987654.321") and isinstance(v.energy_kwh, Decimal)
    assert v.energy_wh == 987_654_321 and isinstance(v.energy_wh, int)
    assert v.remaining_energy_wh == 88_120
    assert v.remaining_money_cents == 5187 and type(v.remaining_money_cents) is int
    assert v.active_power_w == 947.0 and v.voltage_v == 229.7
    assert v.trip_reason == 4 and type(v.trip_reason) is int
    assert "trip_reason" not in v.extra and v.extra == {"overlimit_trips": 2}
    assert v.flags == frozenset({"arrears", "alarm1"}) and v.relay_closed is False
    assert v.forced_trip is True and v.keep_power is False


def test_a_read_goes_from_the_driver_to_the_views_unchanged(meter):
    read = _read()
    outcome = PollOutcome(meter, read.read_at, True, values=read, latency_ms=12.0, sample=True)
    readings.write_batch([outcome])

    # in this process: the writer hands the views the driver's record itself
    live = live_from_outcome(outcome)
    assert live == MeterLive(meter, True, read) and live.values is read

    # from the database: the same record, field by field
    (row,) = readings.latest([meter])
    assert (row.meter_id, row.online) == (meter, True)
    back = row.values
    assert back is not None
    for f in dataclasses.fields(MeterValues):
        if f.name not in (*NOT_STORED, "extra"):
            assert getattr(back, f.name) == getattr(read, f.name), f.name
            assert type(getattr(back, f.name)) is type(getattr(read, f.name)), f.name
    assert back == _stored(read)
    assert all(getattr(back, name) is None for name in NOT_STORED)
    assert back.energy_kwh == Decimal("987654.321") and back.energy_wh == 987_654_321
    assert back.remaining_energy_wh == read.remaining_energy_wh == 88_120
    assert back.remaining_money_cents == 5187 and back.trip_reason == 4
    assert back.flags == frozenset({"arrears", "alarm1"}) and back.relay_closed is False
    assert readings.samples(meter, 0) == [(READ_AT, 947.0)]
    assert readings.baselines() == {meter: (987_654_321, READ_AT)}

    # the window: its snapshot and the database feed carry the stored record
    snapshot, since = load_snapshot()
    assert snapshot.meters == [MeterLive(meter, True, _stored(read))]
    assert since == row.changed_at
    fed: list[LiveBatch] = []
    assert DatabaseFeed(fed.append).poll_once().meters == snapshot.meters and len(fed) == 1

    # the status command's keys (a documented contract) from the same record
    (m,) = status.collect()["meters"]
    assert {k: m[k] for k in ("online", "read_at", "voltage_v", "power_w", "energy_kwh",
                              "energy_wh", "money_cents", "relay_closed", "control_mode")} == {
        "online": True, "read_at": READ_AT, "voltage_v": 229.7, "power_w": 947.0,
        "energy_kwh": 987_654.321, "energy_wh": 987_654_321, "money_cents": 5187,
        "relay_closed": False, "control_mode": "forced_trip"}


def test_a_failed_poll_keeps_the_values_and_changes_only_online(meter):
    read = _read()
    readings.write_batch([PollOutcome(meter, READ_AT, True, values=read)])
    store = LiveStore()
    store.apply(load_snapshot()[0])
    failed = PollOutcome(meter, READ_AT + 5, False, error_kind="timeout", consecutive_failures=3,
                         online=False, online_changed=True)
    readings.write_batch([failed])

    (row,) = readings.latest([meter])
    assert row.online is False and row.values == _stored(read)
    assert live_from_outcome(failed) == MeterLive(meter, False, None)
    (changed,) = store.apply(LiveBatch([live_from_outcome(failed)])).meters
    assert changed == MeterLive(meter, False, _stored(read))


def test_a_meter_never_read_has_no_values(meter):
    readings.write_batch([PollOutcome(meter, READ_AT, False, error_kind="timeout",
                                      consecutive_failures=3, online=False,
                                      online_changed=True)])
    (row,) = readings.latest([meter])
    assert (row.online, row.values) == (False, None)
    (m,) = status.collect()["meters"]
    assert m["online"] is False and m["energy_wh"] is None and m["energy_kwh"] is None
