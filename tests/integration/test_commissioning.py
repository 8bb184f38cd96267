"""Commissioning a bus against the simulator while the reading service polls: every meter's
checklist through ``main.py commission``, the bus given back after, the run stored and audited,
and its record as a PDF with the Chinese text, embedded fonts and a signature line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from app.core import commissioning, operators
from app.core.service import ReadingService
from app.simulator import start_simulator
from app.simulator.demo_campus import create_demo_campus
from app.storage import campus, readings
from app.storage.db import open_database
from app.storage.models import AuditEntry, BusHold, CommissioningRun, Meter
from tests.helpers import operator, run_main

from .conftest import point_buses_at, wait_for

PASSWORD = "commission-pass-1"


@pytest.fixture
def station(tmp_path):
    with start_simulator(buses=2, meters=5, transport="pty", seed=7, speed=120.0,
                         faults="1.5:offline", random_heaters=False) as sim:
        db_path = tmp_path / "station.db"
        create_demo_campus(db_path, buses=2, meters=5, seed=7)
        point_buses_at(sim.endpoints)
        operators.add_operator(operator(), "wang", "maintenance", PASSWORD, must_change=False,
                               check_strength=False)
        operators.add_operator(operator(), "alice", "cashier", PASSWORD, must_change=False,
                               check_strength=False)
        env = {**os.environ, "VOLTKEEPER_PASSWORD": PASSWORD, "QT_QPA_PLATFORM": "offscreen"}
        yield sim, db_path, env
        open_database(db_path).close()


def test_commissioning_a_polled_bus(station, tmp_path, artifacts_dir):
    sim, db_path, env = station
    b1 = campus.buses()[0]
    service = ReadingService(role="test", flush_s=0.05)
    ok, _info = service.start()
    assert ok
    try:
        assert wait_for(lambda: sum(r.online for r in readings.latest()) == 9)
        pdf = tmp_path / "record.pdf"
        out = run_main(["--language", "zh_CN", "commission", "--db", str(db_path), "--operator",
                        "wang", "--bus", b1.name, "--pdf", str(pdf), "--json"], env,
                       timeout=120)
        assert out.returncode == 4, out.stderr  # meter 5 does not answer
        data = json.loads(out.stdout)
        by_address = {m["address"]: m for m in data["meters"]}
        assert sorted(by_address) == [1, 2, 3, 4, 5]
        for address in (1, 2, 3, 4):
            checks = by_address[address]["checks"]
            assert checks["answers"][0] == "pass"
            assert checks["serial"] == ["pass", sim.meter(1, address).serial]
            assert checks["trip"][0] == "pass" and checks["close"][0] == "pass", checks
            assert checks["energy"][0] in ("pass", "note")
            # the simulated meters' clocks ran on campus time (UTC+8) unset: set, read back
            assert checks["clock"][0] == "pass", checks["clock"]
            assert by_address[address]["ok"]
        assert by_address[5]["checks"]["answers"][0] == "fail" and not by_address[5]["ok"]
        assert data["failed"] == 1
        # every meter is back as it was: closed (the simulated meters have money)
        assert all(sim.meter(1, a).snapshot().relay_closed for a in (1, 2, 3, 4))
        # given back, stored, audited
        assert BusHold.select().count() == 0
        run = CommissioningRun.get_by_id(data["run"])
        assert (run.technician, run.failed, run.passed, run.pdf) == ("wang", 1, 4, str(pdf))
        assert AuditEntry.select().where(AuditEntry.kind == "commissioning").count() == 1
        assert wait_for(lambda: sum(r.online for r in readings.latest()
                                    if r.meter_id in _bus_meters(b1.id)) == 4, timeout=15)
        # a cashier may not
        denied = run_main(["commission", "--db", str(db_path), "--operator", "alice", "--bus",
                           b1.name], env)
        assert denied.returncode == 3
    finally:
        service.stop()
    # the record: Chinese text, the fonts embedded, a page looked at
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                              text=True, check=True).stdout
        assert "调试记录" in text and "wang" in text and "技术员" in text
        fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True,
                               check=True).stdout.splitlines()[2:]
        assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile",
                        str(pdf), str(artifacts_dir / "commissioning_record")], check=True)
    stored = commissioning.stored_run(data["run"])
    assert [m.address for m in stored.meters] == [1, 2, 3, 4, 5] and stored.failed == 1


def _bus_meters(bus_id: int) -> set[int]:
    return {m.id for m in Meter.select().where(Meter.bus == bus_id)}
