"""Bus health kept, end to end: the simulator on ptys paced like a 9600-baud line, CRC faults
injected on one meter, the reading service flushing its health figures every second (a minute
in production), and what ``core/bus_health`` and ``main.py health`` make of them."""

from __future__ import annotations

import json

import pytest

from app.cli import main as cli_main
from app.core import bus_health
from app.core.comm_tally import wire_limit_s
from app.core.service import ReadingService
from app.drivers.modbus_link import LinkConfig
from app.drivers.profile import load_profile
from app.simulator import start_simulator
from app.simulator.demo_campus import create_demo_campus
from app.storage import campus
from app.storage.db import open_database
from app.storage.models import CommMinute
from tests.helpers import operator

from .conftest import point_buses_at, wait_for

CRC_BUS, CRC_UNIT = 1, 3


@pytest.fixture
def paced_campus(tmp_path):
    with start_simulator(buses=2, meters=5, transport="pty", seed=11, speed=60.0,
                         random_heaters=False, wire_baud=9600,
                         faults=f"{CRC_BUS}.{CRC_UNIT}:crc=0.3") as sim:
        db_path = tmp_path / "station.db"
        create_demo_campus(db_path, buses=2, meters=5, seed=11)
        point_buses_at(sim.endpoints, poll_interval_s=0.2)
        yield sim, db_path
        open_database(db_path).close()


def _meter_id(bus_no: int, unit: int) -> int:
    bus = next(b for b in campus.buses() if b.name == f"B{bus_no:02d}")
    return next(m.id for m in campus.meters(bus.id) if m.address == unit)


def _crc_of(meter_id: int) -> int:
    return sum(r.crc_errors for r in CommMinute.select().where(CommMinute.meter == meter_id))


def _bus_cycles() -> int:
    return min((sum(r.cycles for r in CommMinute.select().where(
        (CommMinute.meter == 0) & (CommMinute.bus == b.id))) for b in campus.buses()),
        default=0)


def test_the_meter_with_crc_errors_ranks_worst(paced_campus, capsys):
    _sim, db_path = paced_campus
    faulty = _meter_id(CRC_BUS, CRC_UNIT)
    service = ReadingService(role="test", flush_s=0.05)
    service.comm_flush_s = 1.0
    ok, _info = service.start()
    assert ok
    try:
        # figures are handed on every second, not once a minute
        assert wait_for(lambda: _crc_of(faulty) > 0 and _bus_cycles() >= 3, timeout=60)
        poller = next(p for p in service.pollers.values() if p.has_meter(faulty))
        link_crc = poller.link.counters.crc_errors
    finally:
        service.stop()
    report = bus_health.health(operator("viewer"), minutes=15)
    assert report.worst[0].meter_id == faulty
    worst = report.worst[0]
    assert worst.figures.crc_errors > 0 and worst.health in ("fair", "poor", "offline")
    assert worst.figures.success_rate is not None and worst.figures.success_rate < 0.99
    # the CRC errors are the faulty meter's alone, and none is counted twice
    others = [m for b in report.buses for m in b.meters if m.meter_id != faulty]
    assert len(others) == 9 and all(m.figures.crc_errors == 0 for m in others)
    assert all(m.figures.transactions > 0 and m.health == "good" for m in others)
    assert worst.figures.crc_errors <= link_crc + 5  # (+ what was counted after the read)
    bus_one = next(b for b in report.buses if b.name == "B01")
    assert bus_one.meters[0].meter_id == faulty
    # the cycle against the wire: five DDSY1352 at 9600 baud cannot be read faster
    limit = wire_limit_s(LinkConfig.from_url(bus_one.link),
                         [load_profile("acrel-ddsy1352")] * 5)
    assert bus_one.wire_limit_s == pytest.approx(limit)
    assert bus_one.cycles >= 3 and bus_one.cycle_mean_s >= 0.9 * limit
    assert bus_one.cycle_max_s >= bus_one.cycle_mean_s
    assert bus_one.figures.mean_latency_ms > 0 and bus_one.transactions_per_s > 0

    assert cli_main(["health", "--db", str(db_path), "--worst", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["worst"][0]["meter"] == faulty and data["worst"][0]["crc_errors"] > 0
