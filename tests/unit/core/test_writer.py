"""The storage writer on a real SQLite file: one meter's data never costs the others theirs, a
batch that fails for another reason is kept for the next flush, bad values are counted and
alarmed once per meter."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from app.core.alarms import alarm_list
from app.core.writer import StorageWriter, WriterStatus
from app.drivers.meter_values import MeterValues
from app.storage import campus, capabilities, readings
from app.storage.capabilities import CapabilityUpdate
from app.storage.db import open_database
from app.storage.readings import BusOutcome, PollOutcome
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


def _full(outcomes, buses, workers):
    raise sqlite3.OperationalError("database or disk is full")


def _energy() -> dict[int, int]:
    out: dict[int, int] = {}
    for m, _s, wh in readings.IntervalEnergy.select(
            readings.IntervalEnergy.meter, readings.IntervalEnergy.start,
            readings.IntervalEnergy.energy_wh).tuples():
        out[m] = out.get(m, 0) + wh
    return out


def _reads(meter_id: int, n: int, t0: float = 2000.0) -> list[PollOutcome]:
    """``n`` good reads 300 s apart from ``t0``, the register 10 Wh more every 300 s from
    100 Wh at t = 2000, each read's 10 Wh booked in the interval it falls in."""
    return [PollOutcome(meter_id=meter_id, t=t0 + 300 * k, ok=True,
                        values=MeterValues(read_at=t0 + 300 * k,
                                           energy_kwh=Decimal(100 + int(t0 - 2000) // 30
                                                              + 10 * k) / 1000),
                        intervals=[(int((t0 + 300 * k) // 900) * 900, 10)],
                        days=[("2026-12-01", 10)]) for k in range(n)]


def test_a_database_that_cannot_be_written_holds_everything_without_raising(meters):
    a, b, _c = meters
    writer = StorageWriter(store=_full)
    writer.max_held = 50  # merge (and then spill) early
    for k in range(40):
        writer.put(_reads(a, 1, 2000.0 + 300 * k) + _reads(b, 1, 2000.0 + 300 * k))
        assert writer.flush() == 0  # never raises: it is not the writer's failure
    failure = PollOutcome(meter_id=b, t=20_000.0, ok=False, error_kind="timeout",
                          online=False, online_changed=True,
                          events=[("offline", "3 failures in a row")])
    writer.put([failure])
    writer.flush()
    status = writer.status()
    assert status.unsent and status.since and "disk is full" in status.error
    assert writer.unsent() <= 50  # merged per meter: bounded, yet every Wh kept
    writer.store = readings.write_batch
    while writer.flush() or writer.unsent():
        pass
    assert _energy() == {a: 400, b: 400}
    latest = {r.meter_id: r for r in readings.latest()}
    assert latest[a].online and latest[a].values.energy_wh == 490
    assert not latest[b].online and latest[b].values.energy_wh == 490  # its last good read
    assert writer.status() == WriterStatus(0, None, "", 0)
    assert [x.kind for x in alarm_list(operator("viewer"), kind="readings_unsent")] \
        == ["readings_unsent"]


def test_held_reads_beyond_the_bound_are_spilled_and_written_back_oldest_first(meters,
                                                                              tmp_path):
    a, _b, _c = meters
    writer = StorageWriter(store=_full)
    writer.max_held = 5
    writer.put(_reads(a, 30))  # 30 reads in 30 different intervals: merging cannot bound it
    writer.flush()
    spilled = list((tmp_path / "w.db.unsent").iterdir())
    assert len(spilled) == 1 and writer.unsent() == 1  # merged into one, then spilled
    writer.put(_reads(a, 1, 50_000.0))  # newer than everything spilled
    writer.flush()
    writer.store = readings.write_batch
    while writer.flush() or writer.unsent():
        pass
    assert _energy() == {a: 310}
    assert readings.baselines()[a] == (1700, 50_000.0)  # the newest read is the one kept
    assert not list((tmp_path / "w.db.unsent").iterdir())


def test_stopping_while_the_database_cannot_be_written_does_not_hang(meters):
    a, _b, _c = meters
    writer = StorageWriter(store=_full)
    writer.put(_reads(a, 3))
    writer.stop()  # returns: the stored register did not move, the next start books it
    assert writer.unsent() == 3


def test_stopping_once_the_database_works_again_stores_everything(meters):
    a, _b, _c = meters
    writer = StorageWriter(store=_full)
    writer.max_held = 3
    writer.put(_reads(a, 5))
    writer.flush()  # spilled
    writer.put(_reads(a, 2, 50_000.0))
    writer.flush()  # held in memory
    writer.store = readings.write_batch  # the database works again
    writer.stop()
    assert writer.unsent() == 0 and _energy() == {a: 70}


def test_a_spill_file_gone_under_the_writer_does_not_stop_it(meters):
    a, _b, _c = meters
    writer = StorageWriter(store=_full)
    writer.max_held = 3
    writer.put(_reads(a, 5))
    writer.flush()
    writer._spilled[0][0].unlink()  # removed by hand, or by a standby that took over
    writer.store = readings.write_batch
    for _ in range(3):
        writer.put(_reads(a, 1, 60_000.0))
        writer.flush()  # never raises: what can be stored is
    assert writer.unsent() == 0 and readings.baselines()[a][1] == 60_000.0


def test_a_bus_down_and_a_silent_meter_are_alarmed_and_cleared_when_over(meters):
    a, b, _c = meters
    bus = campus.buses()[0].id
    writer = StorageWriter()
    silent = PollOutcome(meter_id=a, t=3000.0, ok=False, error_kind="timeout", online=False,
                         online_changed=True, events=[("offline", "3 failures in a row")])
    by_bus = PollOutcome(meter_id=b, t=3000.0, ok=False, error_kind="link", online=False,
                         online_changed=True, events=[("offline", "its bus is down: gone")])
    writer.put([silent, by_bus], BusOutcome(bus, "down", error="cannot open the gateway"))
    writer.flush()
    open_kinds = {(x.kind, x.meter_id) for x in alarm_list(operator("viewer"))}
    assert open_kinds == {("meter_offline", a), ("bus_down", None)}  # not one per meter
    writer.put([], BusOutcome(bus, "polling"))
    writer.flush()
    assert {x.kind for x in alarm_list(operator("viewer"))} == {"meter_offline"}
    back = PollOutcome(meter_id=a, t=3001.0, ok=True, online_changed=True,
                       values=MeterValues(read_at=3001.0, voltage_v=230.0))
    writer.put([back])
    writer.flush()
    assert alarm_list(operator("viewer")) == []
    assert {x.kind for x in alarm_list(operator("viewer"), open_only=False)} == \
        {"meter_offline", "bus_down"}
