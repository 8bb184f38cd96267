"""Power limits against the simulator over TCP: a room's limit reaches its meter's register
(read back, the value it replaced kept); a limiting plan applied and undone leaves every
meter's register and every room's rule as they were; a meter whose own power control is off
is held to the limit by the station (tripped over it)."""

from __future__ import annotations

from app.core import commands, limit_plans, power_limits
from app.core.service import ReadingService
from app.simulator import start_simulator
from app.simulator.demo_campus import create_demo_campus
from app.storage import campus
from app.storage import rules as rule_store
from app.storage.db import open_database
from app.storage.models import Outbox, RelayHold
from tests.helpers import operator

from .conftest import point_buses_at, wait_for

ADMIN = operator()


def test_limits_reach_the_meters_and_a_plan_is_undone_exactly(tmp_path):
    with start_simulator(buses=1, meters=3, transport="tcp", seed=8, speed=60.0,
                         random_heaters=False) as sim:
        db = tmp_path / "station.db"
        create_demo_campus(db, buses=1, meters=3, seed=8, open_accounts=False)
        point_buses_at(sim.endpoints, poll_interval_s=0.5)
        sims = {m.id: sim.meter(1, m.address) for m in campus.meters()}
        rooms = {m.id: m.node_id for m in campus.meters()}
        first = min(sims)
        factory = {m: s.settings.power_limit_w for m, s in sims.items()}
        service = ReadingService(role="test", flush_s=0.05, billing_every_s=3600)
        assert service.start()[0]
        try:
            power_limits.set_power_limit(ADMIN, [rooms[first]], 1800)
            assert wait_for(lambda: sims[first].settings.power_limit_w == 1800, timeout=20)
            assert wait_for(lambda: Outbox.get().state == "applied", timeout=10)
            assert Outbox.get().previous == str(factory[first])
            rules_before = rule_store.power_limits()
            building = next(n.name for n in campus.nodes() if n.kind == "building")
            limit_plans.save_plan(ADMIN, "shortage", "limit", building=building, limit_w=1000)
            limit_plans.apply_plan(ADMIN, "shortage")
            assert wait_for(lambda: all(s.settings.power_limit_w == 1000
                                        for s in sims.values()), timeout=20)
            assert wait_for(lambda: not Outbox.select().where(
                Outbox.state == "pending").exists(), timeout=10)
            limit_plans.undo_plan(ADMIN, "shortage")
            want = {**factory, first: 1800}
            assert wait_for(lambda: {m: s.settings.power_limit_w for m, s in sims.items()}
                            == want, timeout=20)
            assert rule_store.power_limits() == rules_before
            # a limit beyond what the meter's profile takes fails at once, alarmed, and does
            # not hold back the trip queued after it
            power_limits.set_power_limit(ADMIN, [rooms[first]], 40_000)
            commands.queue(first, "trip")
            assert wait_for(lambda: not sims[first].snapshot().relay_closed, timeout=20)
            failed = Outbox.select().where(Outbox.state == "failed").get()
            assert failed.amount_cents == 40_000 and "maximum" in failed.last_error
        finally:
            service.stop()
            open_database(db).close()


def test_the_station_holds_a_meter_without_power_control_to_the_limit(tmp_path):
    with start_simulator(buses=1, meters=2, transport="tcp", seed=9, speed=60.0,
                         random_heaters=False) as sim:
        db = tmp_path / "station.db"
        create_demo_campus(db, buses=1, meters=2, seed=9, open_accounts=False)
        point_buses_at(sim.endpoints, poll_interval_s=0.5)
        meter = sim.meter(1, 2)
        meter.settings.load_control = 0  # its own power control off
        station_id = next(m.id for m in campus.meters() if m.address == 2)
        node = next(m.node_id for m in campus.meters() if m.address == 2)
        service = ReadingService(role="test", flush_s=0.05, billing_every_s=3600)
        assert service.start()[0]
        try:
            power_limits.set_power_limit(ADMIN, [node], 1200)
            assert wait_for(lambda: meter.settings.power_limit_w == 1200, timeout=20)
            sim.set_faults("1.2:load=1500:0.8")  # a motor load: over the limit, no heater
            assert wait_for(lambda: RelayHold.get_or_none(RelayHold.meter == station_id)
                            is not None, timeout=20)
            assert RelayHold.get().reason == "power_limit"
            assert wait_for(lambda: not meter.snapshot().relay_closed, timeout=20)
        finally:
            service.stop()
            open_database(db).close()
