"""The storage writer on a real SQLite file: one meter's data never costs the others theirs, a
batch that fails for another reason is kept for the next flush, bad values are counted and
alarmed once per meter."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.core.alarms import alarm_list
from app.core.writer import StorageWriter
from app.drivers.meter_values import MeterValues
from app.storage import campus, capabilities, readings
from app.storage.capabilities import CapabilityUpdate
from app.storage.db import open_database
from app.storage.readings import PollOutcome
from tests.helpers import operator


@pytest.fixture
def meters(tmp_path):
    db = open_database(tmp_path / "w.db")
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    ids = [campus.add_meter(bus, u, "eastron-sdm120", "", campus.add_node(root, "room", f"r{u}"))
           for u in (1, 2, 3)]
    yield ids
    db.close()


def _ok(meter_id: int, kwh: str, **kw) -> PollOutcome:
    return PollOutcome(meter_id=meter_id, t=1000.0, ok=True,
                       values=MeterValues(read_at=1000.0, voltage_v=230.0,
                                          energy_kwh=Decimal(kwh)), **kw)


def test_a_value_no_column_holds_is_not_stored_and_costs_nothing_else(meters):
    a, b, c = meters
    writer = StorageWriter()
    writer.put([_ok(a, "1e20"), _ok(b, "12.5"), _ok(c, "7")])  # 1e23 Wh: beyond 64 bits
    assert writer.flush() == 3
    latest = {r.meter_id: r.values for r in readings.latest()}
    assert latest[a].energy_wh is None and latest[a].voltage_v == 230.0
    assert latest[b].energy_wh == 12500 and latest[c].energy_wh == 7000


def test_a_refused_outcome_is_dropped_alone(meters):
    a, b, _c = meters
    writer = StorageWriter()
    # interval energy beyond 64 bits: the database refuses this outcome, not the batch
    writer.put([_ok(a, "1", intervals=[(900, 1 << 70)]), _ok(b, "2")])
    assert writer.flush() == 1 and writer.outcomes_dropped == 1
    assert {r.meter_id for r in readings.latest()} == {b}


def test_a_failed_batch_is_kept_for_the_next_flush(meters):
    a, b, _c = meters
    calls = []

    def store(outcomes, buses, workers):
        calls.append(len(outcomes))
        if len(calls) == 1:
            raise RuntimeError("the disk went away")
        readings.write_batch(outcomes, buses, workers)

    writer = StorageWriter(store=store)
    writer.put([_ok(a, "1"), _ok(b, "2")])
    with pytest.raises(RuntimeError):
        writer.flush()
    assert writer.flush() == 2 and calls == [2, 2]
    assert len(readings.latest()) == 2


def test_bad_values_and_what_a_meter_lacks_are_stored_and_alarmed_once(meters):
    a, b, _c = meters
    writer = StorageWriter()
    learned = CapabilityUpdate(("frequency",), "no-gaps", 5.0, "")
    for _ in range(3):
        writer.put([_ok(a, "1", bad_values=[("energy", "nan not a number")],
                        capability=learned), _ok(b, "2")])
        writer.flush()
    row = capabilities.get(a)
    assert row.bad_values == 3 and row.last_bad == "energy: nan not a number"
    assert row.missing == ("frequency",) and row.read_mode == "no-gaps"
    assert capabilities.get(b) is None
    alarms = alarm_list(operator("viewer"), kind="bad_reading")
    assert [x.meter_id for x in alarms] == [a] and "energy" in alarms[0].text
    # a bad energy register keeps the last good one stored (where accounting resumes)
    writer.put([_ok(a, "5")])
    writer.flush()
    writer.put([PollOutcome(meter_id=a, t=1001.0, ok=True,
                            values=MeterValues(read_at=1001.0, voltage_v=231.0),
                            bad_values=[("energy", "infinite")])])
    writer.flush()
    assert readings.baselines()[a] == (5000, 1001.0)


def test_a_refused_documented_register_is_alarmed(meters):
    a, _b, _c = meters
    writer = StorageWriter()
    writer.put([_ok(a, "1", events=[("refused_documented", "voltage, current")])])
    writer.flush()
    [alarm] = alarm_list(operator("viewer"), kind="documented_missing")
    assert alarm.meter_id == a and "voltage, current" in alarm.text
