"""A site goes live from the command line alone: an empty station database, a bus and its meters
added by ``main.py bus`` / ``main.py meter`` against the simulator, ``serve`` polls every meter
online; a second bus added while ``serve`` runs starts polling without a restart, and the first
bus keeps polling undisturbed. All as subprocesses, as the technician runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.core.operators import Operator, Role, add_operator
from app.simulator.identity import serial_for
from app.storage import campus
from app.storage.db import close_database, open_database
from tests.helpers import MAIN, ROOT, free_port_base, run_main, status_json, wait_until

PASSWORD = "commission-pass-1"
PROFILE = "acrel-ddsy1352"


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, VOLTKEEPER_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1",
             VOLTKEEPER_PASSWORD=PASSWORD)
    e.pop("QT_QPA_PLATFORM", None)
    return e


@pytest.fixture
def empty_station(tmp_path):
    """A new station: rooms, operators, and no bus or meter at all."""
    db = tmp_path / "site.db"
    open_database(db)
    root = campus.add_node(None, "campus", "测试校区")
    building = campus.add_node(root, "building", "1号楼")
    for k in range(1, 4):
        campus.add_node(building, "room", f"1-10{k}", f"1-10{k}")
        campus.add_node(building, "room", f"2-10{k}", f"2-10{k}")
    add_operator(None, "admin", "administrator", PASSWORD, must_change=False)
    admin = Operator("admin", Role.ADMINISTRATOR)
    add_operator(admin, "tech", "maintenance", PASSWORD, must_change=False)
    add_operator(admin, "cash", "cashier", PASSWORD, must_change=False)
    close_database()
    return db


def _ok(args: list[str], env: dict) -> str:
    out = run_main(args, env, 60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _add_bus(db, env, bus: int, port: int) -> None:
    _ok(["bus", "add", "--db", str(db), "--operator", "tech", "--name", f"B0{bus}",
         "--link", f"tcp://127.0.0.1:{port + bus}", "--interval", "0.5"], env)
    for unit in range(1, 4):
        _ok(["meter", "add", "--db", str(db), "--operator", "tech", "--bus", f"B0{bus}",
             "--address", str(unit), "--profile", PROFILE, "--serial", serial_for(bus, unit),
             "--room", f"{bus}-10{unit}"], env)


def _online(db, env) -> dict[str, int]:
    st = status_json(db, env)
    out: dict[str, int] = {}
    for m in st["meters"]:
        out[m["bus"]] = out.get(m["bus"], 0) + (m["state"] == "online")
    return out


def test_a_bus_added_by_commands_polls_and_a_second_joins_a_running_serve(
        tmp_path, env, empty_station):
    db = empty_station
    port = free_port_base(2)
    sim = subprocess.Popen([sys.executable, MAIN, "simulate", "--buses", "2", "--meters", "3",
                            "--port", str(port), "--seed", "4", "--speed", "0"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT)
    serve = None
    try:
        lines = [sim.stdout.readline() for _ in range(2)]
        assert all("listening on tcp://127.0.0.1:" in line for line in lines), lines
        _add_bus(db, env, 1, port)
        # refusals: a cashier may not, a bad address or link is refused with its reason
        denied = run_main(["bus", "add", "--db", str(db), "--operator", "cash", "--name", "X",
                           "--link", "tcp://127.0.0.1:1"], env)
        assert denied.returncode == 3 and "commission" in denied.stderr
        bad = run_main(["meter", "add", "--db", str(db), "--operator", "tech", "--bus", "B01",
                        "--address", "2", "--profile", PROFILE], env)
        assert bad.returncode == 1 and "address 2 on bus B01 is taken" in bad.stderr
        bad = run_main(["bus", "add", "--db", str(db), "--operator", "tech", "--name", "B09",
                        "--link", "modbus://x"], env)
        assert bad.returncode == 1 and "rtu-tcp://HOST:PORT" in bad.stderr
        busy = run_main(["bus", "remove", "--db", str(db), "--operator", "tech", "--name",
                         "B01"], env)
        assert busy.returncode == 1 and "still has 3 meters" in busy.stderr
        listed = json.loads(_ok(["meter", "list", "--db", str(db), "--bus", "B01", "--json"],
                                env))
        assert [(m["address"], m["room"], m["serial"]) for m in listed] == [
            (k, f"1-10{k}", serial_for(1, k)) for k in range(1, 4)]

        serve = subprocess.Popen([sys.executable, MAIN, "serve", "--db", str(db)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 cwd=ROOT)
        assert wait_until(lambda: _online(db, env).get("B01") == 3, timeout=40), \
            status_json(db, env)

        # a second bus while serve runs: it starts polling, no restart
        _add_bus(db, env, 2, port)
        assert wait_until(lambda: _online(db, env) == {"B01": 3, "B02": 3}, timeout=40), \
            status_json(db, env)
        buses = json.loads(_ok(["bus", "list", "--db", str(db), "--json"], env))
        assert [(b["name"], b["link"]) for b in buses] == [
            ("B01", f"tcp://127.0.0.1:{port + 1}"), ("B02", f"tcp://127.0.0.1:{port + 2}")]

        # a meter moved off the bus, then the bus switched off: it stops, B01 goes on
        _ok(["meter", "edit", "--db", str(db), "--operator", "tech", "--bus", "B02",
             "--address", "3", "--enabled", "no"], env)
        _ok(["bus", "edit", "--db", str(db), "--operator", "tech", "--name", "B02",
             "--enabled", "no"], env)
        assert wait_until(lambda: {b["name"]: b["last_state"]
                                   for b in status_json(db, env)["buses"]}["B02"] == "idle",
                          timeout=30)
        assert _online(db, env)["B01"] == 3
        assert serve.poll() is None  # never restarted
    finally:
        if serve is not None:
            serve.terminate()
            assert serve.wait(20) == 0
        sim.terminate()
        sim.wait(20)
    log = (tmp_path / "site.log").read_text()
    assert "reading service started: 1 buses, 3 meters" in log
    assert "bus B02: polling 3 meters as configured now" in log
    assert "bus B02 changed: its poller stops" in log
    assert "bus B01 changed" not in log  # the first bus was never touched


def test_a_running_service_restarts_only_the_buses_that_changed(sim_campus):
    """In process, on ptys: an edited bus's poller is replaced (its meters' energy accounting
    goes on), the other bus's poller is the same object and keeps cycling; a bus added starts,
    a bus switched off or removed stops and is no longer supervised."""
    from app.core import campus_edit
    from app.core.service import ReadingService
    from app.storage import readings
    from app.storage.models import BusState

    from .conftest import wait_for

    tech = Operator("tech", Role.MAINTENANCE)
    _sim, _db = sim_campus
    b1, b2 = campus.bus_named("B01"), campus.bus_named("B02")
    service = ReadingService(role="test", flush_s=0.05, lease_ttl_s=3.0)
    assert service.start()[0]
    try:
        assert wait_for(lambda: sum(r.online for r in readings.latest()) == 10)
        first, second = service.pollers[b1.id], service.pollers[b2.id]
        kept = {s.meter.id: s.account for s in second.slots}
        off = campus.meter_at(b2.id, 5)
        campus_edit.edit_meter(tech, off.id, enabled=False)
        assert wait_for(lambda: service.pollers.get(b2.id) not in (None, second), timeout=15)
        renewed = service.pollers[b2.id]
        assert [s.meter.address for s in renewed.slots] == [1, 2, 3, 4]
        assert all(s.account is kept[s.meter.id] for s in renewed.slots)  # no energy lost
        assert wait_for(lambda: renewed.cycles >= 2, timeout=15)
        assert service.pollers[b1.id] is first  # B01 untouched, still cycling
        cycles = first.cycles
        assert wait_for(lambda: first.cycles > cycles + 2)
        assert service.supervisors["bus-B02"].state.state == "running"

        # a bus added (nothing answers there: it is down, the others poll on)
        b3 = campus_edit.add_bus(tech, "B03", "tcp://127.0.0.1:1", 0.5).bus
        assert wait_for(lambda: b3.id in service.pollers, timeout=15)
        assert wait_for(lambda: BusState.get_or_none(BusState.bus == b3.id) is not None
                        and BusState.get(BusState.bus == b3.id).state == "down", timeout=15)
        # switched off, and removed: no poller, no supervisor left
        campus_edit.edit_bus(tech, b2.id, enabled=False)
        campus_edit.remove_bus(tech, b3.id)
        assert wait_for(lambda: set(service.pollers) == {b1.id}, timeout=15)
        assert wait_for(lambda: set(service.supervisors) >= {"bus-B01"}
                        and not {"bus-B02", "bus-B03"} & set(service.supervisors), timeout=15)
        assert wait_for(lambda: BusState.get(BusState.bus == b2.id).state == "idle")
        assert service.buses_dead() == [] and service.pollers[b1.id] is first
        cycles = first.cycles
        assert wait_for(lambda: first.cycles > cycles + 2)
    finally:
        service.stop()
