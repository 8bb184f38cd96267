"""Stale is shown as stale: a bus whose gateway is gone takes its meters offline (never
``online 5/5`` with old readings), a meter that comes back is logged as back, and when nobody
polls at all the status says so with the readings' age.

Real Modbus-TCP (pymodbus slaves, one per bus, that go away and come back on their own port),
the reading service and a SQLite file; the status as ``main.py status`` collects and prints it.
"""

from __future__ import annotations

import logging
import time

from app.cli import main as cli_main
from app.core import status
from app.core.service import ReadingService
from app.drivers.meter_values import MeterValues
from app.storage import campus, lease, readings
from app.storage.db import open_database
from app.storage.models import Lease
from app.storage.readings import BusOutcome, PollOutcome
from tests.helpers import free_port_base

from .conftest import wait_for
from .plain_slave import Unit, ddsy1352, plain_slave


def gateway(port: int, units: dict[int, Unit]):
    """A Modbus-TCP gateway with its meters on ``port`` while the block runs."""
    return plain_slave(units, port)


def _url(port: int) -> str:
    return f"tcp://127.0.0.1:{port}?timeout=0.5"


def _station(tmp_path, ports: list[int], meters: int = 2) -> dict[str, list[int]]:
    """Buses B01, B02, ... on ``ports``, ``meters`` DDSY1352 meters each; their meter ids."""
    open_database(tmp_path / "station.db")
    root = campus.add_node(None, "campus", "campus")
    ids: dict[str, list[int]] = {}
    for k, port in enumerate(ports, start=1):
        bus = campus.add_bus(f"B{k:02d}", _url(port), poll_interval_s=0.2)
        for unit in range(1, meters + 1):
            room = campus.add_node(root, "room", f"{k}-10{unit}", f"{k}-10{unit}")
            ids.setdefault(f"B{k:02d}", []).append(
                campus.add_meter(bus, unit, "acrel-ddsy1352", f"3100000{k:03d}{unit:02d}", room))
    return ids


def _units(bus: int, n: int = 2) -> dict[int, Unit]:
    return {u: ddsy1352(serial=f"3100000{bus:03d}{u:02d}") for u in range(1, n + 1)}


def _online(meter_ids: list[int]) -> list[bool]:
    rows = {r.meter_id: r for r in readings.latest(meter_ids)}
    return [m in rows and rows[m].online for m in meter_ids]


def _by_id(data: dict) -> dict[int, dict]:
    return {m["id"]: m for m in data["meters"]}


def _bus(data: dict, name: str) -> dict:
    return next(b for b in data["buses"] if b["name"] == name)


def test_a_bus_that_is_down_takes_its_meters_offline_and_they_come_back(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="voltkeeper.polling")
    first = free_port_base(2)
    ports = [first + 1, first + 2]
    ids = _station(tmp_path, ports)
    b1, b2 = ids["B01"], ids["B02"]
    units1 = _units(1)
    service = ReadingService(role="test", flush_s=0.05)
    with gateway(ports[1], _units(2)):
        try:
            with gateway(ports[0], units1):
                assert service.start()[0]
                assert wait_for(lambda: all(_online(b1 + b2)))
                assert wait_for(lambda: status.collect()["buses"][0]["meters_online"] == 2)
                before = status.collect()
                assert [m["state"] for m in before["meters"]] == ["online"] * 4
                assert {b["state"] for b in before["buses"]} == {"polling"}
            # the gateway of B01 is gone: its bus is down, and its meters go offline
            assert wait_for(lambda: readings.bus_states()[1]["state"] == "down")
            assert wait_for(lambda: not any(_online(b1)), timeout=30)
            down = status.collect()
            assert _bus(down, "B01")["state"] == "down"
            assert _bus(down, "B01")["meters_online"] == 0, "never online n/n on a bus that is down"
            meters = _by_id(down)
            assert [meters[m]["state"] for m in b1] == ["offline", "offline"]
            assert all(meters[m]["age_s"] is not None and meters[m]["age_s"] >= 0 for m in b1)
            assert all(meters[m]["read_at"] for m in b1)  # the last values are kept, as old
            # the other bus polls on
            assert [meters[m]["state"] for m in b2] == ["online", "online"]
            assert _bus(down, "B02") == {**_bus(down, "B02"), "state": "polling",
                                          "meters_online": 2}
            offline = [e for e in readings.events(b1[0]) if e["kind"] == "offline"]
            assert offline and "its bus is down" in offline[-1]["detail"]
            # while it stays down, the bus keeps saying so with no meter online
            time.sleep(1.0)
            assert readings.bus_states()[1]["meters_online"] == 0
            # the gateway comes back on its address: the meters are back, and logged as back
            with gateway(ports[0], units1):
                assert wait_for(lambda: all(_online(b1)), timeout=40)
                assert wait_for(lambda: readings.bus_states()[1]["state"] == "polling")
                back = status.collect()
                assert [_by_id(back)[m]["state"] for m in b1] == ["online", "online"]
                assert _bus(back, "B01")["meters_online"] == 2
        finally:
            service.stop()
    for m in b1:
        kinds = [(e["kind"], e["detail"]) for e in readings.events(m)]
        assert [k for k, _d in kinds][-2:] == ["offline", "online"], kinds
        assert kinds[-1][1].startswith("back after "), kinds[-1]
        assert "its bus is down" in kinds[-1][1]
    assert sum("is back" in r.getMessage() for r in caplog.records) >= 2


def _store(meter_ids: list[int], read_at: float, bus_ids: list[int]) -> None:
    readings.write_batch(
        [PollOutcome(m, read_at, True, values=MeterValues(
            read_at=read_at, voltage_v=220.0, active_power_w=100.0, remaining_money_cents=5000,
            relay_closed=True, control_mode="auto")) for m in meter_ids],
        [BusOutcome(b, "polling", 0.5, read_at, "", len(meter_ids), len(meter_ids))
         for b in bus_ids])


def test_when_nobody_polls_status_says_so_with_the_readings_age(tmp_path, capsys):
    first = free_port_base(1)
    ids = _station(tmp_path, [first + 1], meters=3)["B01"]
    read_at = time.time() - 7200  # read two hours ago by a process that has gone since
    _store(ids, read_at, [1])
    assert lease.holder() is None
    data = status.collect()
    assert data["polling"] is False and data["polled_by"] is None
    (bus,) = data["buses"]
    assert (bus["state"], bus["last_state"], bus["meters_online"]) == ("unpolled", "polling", 0)
    assert {m["state"] for m in data["meters"]} == {"stale"}
    assert all(7190 <= m["age_s"] <= 7300 for m in data["meters"])
    assert all(m["online"] for m in data["meters"])  # as stored: answered at the last poll

    # as the command prints it
    assert cli_main(["--language", "en", "status", "--db", str(tmp_path / "station.db")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("polled by: nobody: nothing is read now")
    assert "the newest 2 h ago" in out[0] or "the newest 120 min ago" in out[0], out[0]
    assert out[1].split()[:3] == ["B01", "not", "polled"] and " 0/3 " in out[1], out[1]
    meter_lines = [line for line in out if line.startswith("B01/")]
    assert len(meter_lines) == 3
    assert all(" stale " in line and "ago)" in line for line in meter_lines), meter_lines
    assert not any(" online " in line for line in out), out


def test_a_read_older_than_its_bus_allows_is_stale_while_polled(tmp_path):
    first = free_port_base(1)
    ids = _station(tmp_path, [first + 1], meters=2)["B01"]
    now = time.time()
    _store(ids[:1], now - 3600, [1])  # the polling process stored this an hour ago
    _store(ids[1:], now, [1])
    # another process holds the lease (it polls, or says it does)
    Lease.insert(name=lease.POLLING, holder="serve", pid=999999, host="elsewhere",
                 acquired_at=now, expires_at=now + 30).on_conflict_replace().execute()
    data = status.collect(now=now)
    assert data["polling"] and data["buses"][0]["state"] == "polling"
    meters = _by_id(data)
    assert meters[ids[0]]["state"] == "stale" and meters[ids[0]]["age_s"] >= 3599
    assert meters[ids[1]]["state"] == "online"
    # its bus down (as stored by the polling process): no meter of it counts as online
    readings.write_batch([], [BusOutcome(1, "down", 0.5, now, "connection refused", 2, 2)])
    data = status.collect(now=now)
    assert data["buses"][0]["meters_online"] == 0
    assert {m["state"] for m in data["meters"]} == {"stale"}
