"""Meter setup and the raw register tool against the simulator on ptys, with the reading service
polling the bus (the tool takes the bus from its poller and gives it back), and the raw tool
also against a plain pymodbus slave for the coil functions the simulator does not serve.

The simulator has five meters on its bus, the database four: address 5 answers but is nobody's
in the database (a meter the simulator refuses to move onto).
"""

from __future__ import annotations

import json
import os
import time

import pytest

from app.core import bus_speed, meter_setup, raw_registers
from app.core.operators import PermissionDenied
from app.core.raw_registers import RawRequest
from app.core.service import ReadingService
from app.errors import UserFacingError
from app.simulator import start_simulator
from app.simulator.demo_campus import create_demo_campus
from app.storage import campus, readings
from app.storage import operators as audit_store
from app.storage.db import open_database
from app.storage.models import BusHold
from tests.helpers import operator, run_main

from .conftest import point_buses_at, wait_for
from .plain_slave import Unit, plain_slave

MAINTENANCE = operator("maintenance", "wang")


@pytest.fixture
def polled(tmp_path):
    """One bus on a pty, 5 simulated meters, 4 in the database, polled by the service."""
    with start_simulator(buses=1, meters=5, transport="pty", seed=7,
                         random_heaters=False) as sim:
        db_path = tmp_path / "station.db"
        create_demo_campus(db_path, buses=1, meters=4, seed=7, password="secret-pw-1")
        point_buses_at(sim.endpoints)
        service = ReadingService(role="test", flush_s=0.05)
        ok, _info = service.start()
        assert ok
        try:
            assert wait_for(lambda: sum(r.online for r in readings.latest()) == 4)
            yield sim, db_path
        finally:
            service.stop()
        open_database(db_path).close()


def _meter(address: int):
    bus = campus.buses()[0]
    found = campus.meter_at(bus.id, address)
    assert found is not None
    return found


def _audit(kind: str) -> list:
    return [r for r in audit_store.audit_rows() if r.kind == kind]


def _online_after(meter_id: int, t: float) -> bool:
    row = next((r for r in readings.latest() if r.meter_id == meter_id), None)
    return (row is not None and row.online and row.values is not None
            and row.values.read_at > t)


def test_read_and_change_settings_while_polled(polled):
    sim, _db = polled
    m = _meter(2)
    settings = meter_setup.read_settings(MAINTENANCE, m.id)
    sim_meter = sim.meter(1, 2)
    assert settings.get("address") == 2
    assert settings.get("baud") == 9600
    assert settings.get("parity") == "N"
    assert settings.get("power_limit") == sim_meter.settings.power_limit_w
    assert settings.get("malicious_step") == sim_meter.settings.malicious_step_w
    assert settings.get("keep_power") is False
    assert str(settings.get("price")) == "0.5880"

    was = sim_meter.settings.power_limit_w
    change = meter_setup.change_setting(MAINTENANCE, m.id, "power_limit", "1800")
    assert (change.before, change.after) == (was, 1800)
    assert sim_meter.settings.power_limit_w == 1800
    assert meter_setup.read_settings(MAINTENANCE, m.id).get("power_limit") == 1800
    entry = _audit("meter_setting")[-1]
    assert json.loads(entry.after) == {"power_limit": 1800}
    assert entry.operator == "wang"

    meter_setup.change_setting(MAINTENANCE, m.id, "price", "0.6")
    assert sim_meter.settings.price_raw == 6000
    meter_setup.change_setting(MAINTENANCE, m.id, "keep_power", "on")
    assert sim_meter.control_mode == "keep_power"
    meter_setup.change_setting(MAINTENANCE, m.id, "keep_power", "off")
    assert sim_meter.control_mode == "auto"
    with pytest.raises(UserFacingError, match="30000"):
        meter_setup.change_setting(MAINTENANCE, m.id, "power_limit", "40000")
    # the bus was given back each time and is polled again
    assert BusHold.select().count() == 0
    t = time.time()
    assert wait_for(lambda: _online_after(m.id, t))


def test_changing_the_address_moves_the_meter_and_the_database_follows(polled):
    sim, _db = polled
    m = _meter(2)
    sim_meter = sim.meter(1, 2)
    change = meter_setup.change_setting(MAINTENANCE, m.id, "address", "20")
    assert (change.before, change.after) == (2, 20)
    assert sim.meter(1, 20) is sim_meter
    assert 2 not in sim.campus.meters_on(1)  # its old address is silent
    assert campus.meter(m.id).address == 20
    entry = _audit("meter_setting")[-1]
    assert (json.loads(entry.before), json.loads(entry.after)) == ({"address": 2},
                                                                    {"address": 20})
    t = time.time()
    assert wait_for(lambda: _online_after(m.id, t)), "polling finds it at its new address"


def test_a_failed_address_change_leaves_meter_and_database_as_they_were(polled):
    sim, _db = polled
    m3, m4 = _meter(3), _meter(4)
    sim3 = sim.meter(1, 3)
    # at the new address the meter hears but its answers are spoiled: it is set back
    sim.set_faults("1.21:crc=1")
    with pytest.raises(UserFacingError, match="set back to 3"):
        meter_setup.change_setting(MAINTENANCE, m3.id, "address", "21")
    assert sim.meter(1, 3) is sim3 and 21 not in sim.campus.meters_on(1)
    assert campus.meter(m3.id).address == 3
    assert _audit("meter_setting_failed")
    # an address another device on the bus has: the meter refuses it
    sim.set_faults("")
    with pytest.raises(UserFacingError, match="refused address 5"):
        meter_setup.change_setting(MAINTENANCE, m3.id, "address", "5")
    assert sim.meter(1, 3) is sim3 and campus.meter(m3.id).address == 3
    # an address the database gives another meter: refused before anything is sent
    with pytest.raises(UserFacingError, match="taken"):
        meter_setup.change_setting(MAINTENANCE, m3.id, "address", "4")
    # a silent meter: nothing is written, nothing changes
    sim.set_faults("1.4:offline")
    with pytest.raises(UserFacingError, match="nothing was changed"):
        meter_setup.change_setting(MAINTENANCE, m4.id, "address", "22")
    sim.set_faults("")
    assert campus.meter(m4.id).address == 4 and 22 not in sim.campus.meters_on(1)
    t = time.time()
    assert wait_for(lambda: _online_after(m3.id, t) and _online_after(m4.id, t))


def test_a_meter_on_another_speed_is_brought_back_to_its_bus(polled):
    sim, _db = polled
    m = _meter(1)
    with pytest.raises(UserFacingError, match="cannot be polled"):
        meter_setup.change_setting(MAINTENANCE, m.id, "baud", "19200")
    sim.meter(1, 1).line_baud = 19200  # as if set by hand on the meter's keys
    t = time.time()
    change = meter_setup.change_setting(MAINTENANCE, m.id, "baud", "9600")
    assert (change.before, change.after) == (19200, 9600)
    assert sim.meter(1, 1).line_baud == 9600
    assert wait_for(lambda: _online_after(m.id, t))


def test_raw_read_and_write_on_a_polled_bus(polled):
    sim, _db = polled
    bus = campus.buses()[0].name
    sim_meter = sim.meter(1, 1)
    was = sim_meter.settings.power_limit_w
    read = raw_registers.transact(MAINTENANCE, RawRequest(bus, 1, 3, 0x0481, 1))
    assert read.registers == [sim_meter.settings.power_limit_w]
    assert not _audit("raw_write")
    wrote = raw_registers.transact(MAINTENANCE, RawRequest(bus, 1, 6, 0x0481, values=("2100",)))
    assert sim_meter.settings.power_limit_w == 2100 and wrote.registers == [2100]
    price = raw_registers.transact(MAINTENANCE, RawRequest(bus, 1, 16, 0x005D, dtype="u32",
                                                           values=("6100",)))
    assert sim_meter.settings.price_raw == 6100 and price.values == [6100]
    entries = _audit("raw_write")
    assert len(entries) == 2
    assert json.loads(entries[0].before) == [was]
    assert json.loads(entries[0].after)["read_back"] == [2100]
    # a register the meter does not have: its exception, typed
    with pytest.raises(UserFacingError, match="exception 2"):
        raw_registers.transact(MAINTENANCE, RawRequest(bus, 1, 3, 0x7000, 2))
    assert BusHold.select().count() == 0


def test_roles_and_the_command_line(polled, tmp_path):
    sim, db = polled
    m = _meter(1)
    bus = campus.buses()[0].name
    with pytest.raises(PermissionDenied):
        meter_setup.read_settings(operator("cashier"), m.id)
    with pytest.raises(PermissionDenied):
        raw_registers.transact(operator("cashier"), RawRequest(bus, 1, 3, 0, 2))
    with pytest.raises(PermissionDenied):
        raw_registers.transact(operator("finance"), RawRequest(bus, 1, 3, 0, 2))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VOLTKEEPER_PASSWORD": "secret-pw-1"}
    out = run_main(["meter-setup", "--db", str(db), "--operator", "maintenance",
                    "--meter", f"#{m.id}", "--json"], env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["settings"]["address"] == 1 and data["settings"]["baud"] == 9600
    out = run_main(["meter-setup", "--db", str(db), "--operator", "maintenance",
                    "--meter", f"#{m.id}", "--set", "malicious_step=900"], env)
    assert out.returncode == 0, out.stderr
    assert sim.meter(1, 1).settings.malicious_step_w == 900
    out = run_main(["registers", "--db", str(db), "--operator", "maintenance", "--bus", bus,
                    "--id", "1", "--fc", "3", "--start", "0x0000", "--count", "2",
                    "--type", "u32"], env)
    assert out.returncode == 0, out.stderr
    assert "0x0000" in out.stdout and "(0x" in out.stdout
    out = run_main(["meter-setup", "--db", str(db), "--operator", "maintenance", "--bus", bus,
                    "--set", "price=1"], env)
    assert out.returncode == 2 and "baud" in out.stderr
    out = run_main(["registers", "--db", str(db), "--operator", "maintenance", "--bus", bus,
                    "--id", "1", "--fc", "3", "--start", "0", "--write", "5"], env)
    assert out.returncode == 2 and "--write" in out.stderr
    out = run_main(["registers", "--db", str(db), "--operator", "cashier", "--bus", bus,
                    "--id", "1", "--fc", "3", "--start", "0", "--count", "1"], env)
    assert out.returncode == 3, out.stderr


def test_raw_tool_against_a_plain_pymodbus_slave(tmp_path):
    """Coils and discrete inputs (01/02/05/0F), and registers in both word orders, against
    pymodbus's own server: not only our simulator agreeing with our driver."""
    unit = Unit(holding={0x10: 0, 0x11: 0, 0x20: 0x4148, 0x21: 0x0000},
                coils={i: 0 for i in range(8)}, discretes={0: 1, 1: 0, 2: 1})
    with plain_slave({7: unit}) as slave:
        db_path = tmp_path / "station.db"
        create_demo_campus(db_path, buses=1, meters=1, seed=3, password="secret-pw-1")
        point_buses_at([slave.url])
        bus = campus.buses()[0].name
        assert raw_registers.transact(MAINTENANCE, RawRequest(bus, 7, 2, 0, 3)).bits == [
            True, False, True]
        raw_registers.transact(MAINTENANCE, RawRequest(bus, 7, 5, 3, values=("on",)))
        assert unit.coils[3] == 1
        result = raw_registers.transact(MAINTENANCE, RawRequest(bus, 7, 15, 4,
                                                                values=("1", "0", "1")))
        assert [unit.coils[a] for a in (4, 5, 6)] == [1, 0, 1]
        assert result.before_bits == [False, False, False] and result.bits == [True, False, True]
        assert raw_registers.transact(MAINTENANCE, RawRequest(bus, 7, 1, 0, 8)).bits == [
            False, False, False, True, True, False, True, False]
        assert raw_registers.transact(MAINTENANCE, RawRequest(
            bus, 7, 3, 0x20, 2, dtype="float32")).values == [12.5]
        raw_registers.transact(MAINTENANCE, RawRequest(bus, 7, 16, 0x10, dtype="s32",
                                                       word_order="little", values=("-2",)))
        assert (unit.holding[0x10], unit.holding[0x11]) == (0xFFFE, 0xFFFF)
        assert unit.writes[-1] == (0x10, [0xFFFE, 0xFFFF])
        kinds = [json.loads(r.after)["fc"] for r in _audit("raw_write")]
        assert kinds == [5, 15, 16]
        with pytest.raises(UserFacingError, match="exception 2"):
            raw_registers.transact(MAINTENANCE, RawRequest(bus, 7, 1, 100, 2))
        open_database(db_path).close()


def test_the_speed_of_a_whole_bus(polled):
    sim, _db = polled
    bus = campus.buses()[0]
    ids = [m.id for m in campus.meters(bus.id)]
    # one meter silent: nobody is left at another speed, the bus stays as it was
    sim.set_faults("1.3:offline")
    with pytest.raises(UserFacingError, match="set back"):
        bus_speed.change_bus_baud(MAINTENANCE, bus.name, 19200)
    assert [sim.meter(1, u).line_baud for u in (1, 2)] == [9600, 9600]
    assert "19200" not in campus.bus(bus.id).link
    sim.set_faults("")
    message = bus_speed.change_bus_baud(MAINTENANCE, bus.name, 19200)
    assert "19200" in message
    assert [sim.meter(1, u).line_baud for u in (1, 2, 3, 4)] == [19200] * 4
    assert "baud=19200" in campus.bus(bus.id).link
    t = time.time()
    assert wait_for(lambda: all(_online_after(i, t) for i in ids)), "polled at the new speed"
