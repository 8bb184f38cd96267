"""End to end: the simulator on ptys, the reading service, a SQLite file.

After a few cycles every stored reading matches the simulator; interval energy sums to the
register's delta; a silent meter goes offline without slowing its bus and comes back; a
counter reset is not booked as use.
"""

from __future__ import annotations

from app.core.service import ReadingService
from app.storage import campus, readings
from app.storage.models import Meter, database

from .conftest import wait_for


def _meter_ids() -> dict[tuple[int, int], int]:
    bus_no = {b.id: int(b.name[1:]) for b in campus.buses()}
    return {(bus_no[m.bus_id], m.address): m.id for m in campus.meters()}


def test_stored_readings_match_the_simulator(sim_campus):
    sim, _db = sim_campus
    ids = _meter_ids()
    service = ReadingService(role="test", flush_s=0.05)
    ok, _info = service.start()
    assert ok
    try:
        assert wait_for(lambda: len([r for r in readings.latest() if r.online]) == 10)
        # the energy read and the intervals booked so far, in one read transaction (the
        # writer may store a meter's next reading between two separate questions)
        with database.atomic():
            first = {r.meter_id: r.values.energy_wh for r in readings.latest()}
            booked_first = {mid: sum(wh for _s, wh in readings.interval_energy(mid))
                            for mid in first}
        # let meters use energy for a while (meter time runs 120 x the clock)
        assert wait_for(lambda: all(r.values.energy_wh > first[r.meter_id]
                                    for r in readings.latest() if r.meter_id in first
                                    and r.values.active_power_w))
    finally:
        service.stop()
    latest = {r.meter_id: r.values for r in readings.latest()}
    for (bus, unit), mid in ids.items():
        snap = sim.meter(bus, unit).snapshot()
        row = latest[mid]
        # energy within one poll's worth: the meter ran on after the last poll
        assert 0 <= int(snap.energy_kwh * 1000) - row.energy_wh <= 200, (bus, unit)
        assert row.purchase_count == snap.purchase_count
        assert abs(row.remaining_money_cents - snap.remaining_money_cents) <= 20
        assert 198 <= row.voltage_v <= 242 and 49.5 <= row.frequency_hz <= 50.5
        assert row.relay_closed == snap.relay_closed
        # interval energy is exactly the register's delta over the run
        booked = sum(wh for _s, wh in readings.interval_energy(mid))
        assert booked - booked_first[mid] == row.energy_wh - first[mid], (bus, unit)
        assert sum(wh for _d, wh in readings.daily_energy(mid)) == booked


def test_silent_meter_goes_offline_and_comes_back(sim_campus):
    sim, _db = sim_campus
    ids = _meter_ids()
    silent = ids[(1, 3)]
    service = ReadingService(role="test", flush_s=0.05)
    service.start()
    try:
        assert wait_for(lambda: len([r for r in readings.latest() if r.online]) == 10)
        poller = next(p for p in service.pollers.values() if p.has_meter(silent))
        healthy_cycle = poller.last_cycle_s
        sim.set_faults("1.3:offline")
        assert wait_for(lambda: not readings.latest([silent])[0].online)
        # offline: its bus keeps its cycle time (it is probed only when its back-off expires)
        start_cycles = poller.cycles
        assert wait_for(lambda: poller.cycles >= start_cycles + 3)
        assert poller.last_cycle_s < healthy_cycle + 0.5
        others = [r for r in readings.latest() if r.meter_id != silent]
        assert all(r.online for r in others)
        stats = readings.comm_stats()[silent]
        assert stats["timeouts"] >= 3 and stats["offline_since"] is not None
        sim.set_faults("")
        slot = next(s for s in poller.slots if s.meter.id == silent)
        slot.next_probe_at = 0.0  # do not wait out the back-off in a test
        assert wait_for(lambda: readings.latest([silent])[0].online)
    finally:
        service.stop()
    kinds = [e["kind"] for e in readings.events(silent)]
    assert kinds[:2] == ["offline", "online"]


def test_counter_reset_is_not_booked(sim_campus):
    sim, _db = sim_campus
    ids = _meter_ids()
    mid = ids[(2, 1)]
    service = ReadingService(role="test", flush_s=0.05)
    service.start()
    try:
        assert wait_for(lambda: all(r.online for r in readings.latest()) and
                        len(readings.latest()) == 10)
        meter = sim.meter(2, 1)
        with meter.lock:  # the meter is replaced: its register starts again near zero
            meter.energy_units = 5
        assert wait_for(lambda: any(e["kind"] == "counter_reset"
                                    for e in readings.events(mid)))
        before = sum(wh for _s, wh in readings.interval_energy(mid))
        assert wait_for(lambda: readings.latest([mid])[0].values.energy_wh > 60)
    finally:
        service.stop()
    booked = sum(wh for _s, wh in readings.interval_energy(mid))
    assert booked >= before
    assert booked - before < 10_000  # only the new meter's own use, never a negative leap
    assert all(wh >= 0 for _s, wh in readings.interval_energy(mid))
    assert Meter.get_by_id(mid).serial  # the meter row itself is untouched
