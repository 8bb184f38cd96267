"""Real meters as they come, against plain pymodbus slaves (not VoltKeeper's simulator), through
the reading service and a real SQLite file.

* A DDSY1352 from the factory (no 1000H block, no 0011H) is read: every documented value and
  every vendor-tool value it has; what it lacks is learned, remembered across a restart and
  listed in its details; its account moves to station-kept money and its token is never sent.
* An SDM120 that refuses reads across its undefined registers is read point by point.
* A meter sending NaN, infinity, 1e30 and 1e20 kWh: the bus keeps polling, the other meters'
  readings are all stored, the bad values are counted and alarmed once, no energy is booked
  from them.
"""

from __future__ import annotations

import pytest

from app.core import accounts
from app.core.alarms import alarm_list
from app.core.meter_info import meter_details
from app.core.recharge import recharge
from app.core.service import ReadingService
from app.drivers.token import MasterKey, save_master_key
from app.errors import UserFacingError
from app.paths import default_key_file
from app.storage import accounts as account_store
from app.storage import campus, capabilities, readings
from app.storage.capabilities import CapabilityUpdate
from app.storage.db import open_database
from app.storage.models import AuditEntry
from tests.helpers import operator

from .conftest import wait_for
from .plain_slave import SDM120_POINTS, ddsy1352, plain_slave, sdm120

ADMIN = operator("administrator")
VIEWER = operator("viewer")
CASHIER = operator("cashier", "alice")
#: What a DDSY1352 from the factory refuses of its profile (all optional points).
STOCK_MISSING = {"frequency", "token_status", "remaining_energy", "malicious_detection",
                 "key_version", "trip_reason"}


def _station(tmp_path, url: str, profiles: dict[int, str]) -> dict[int, tuple[int, int]]:
    """A station database with one bus at ``url``: unit -> (meter id, room id)."""
    open_database(tmp_path / "station.db")
    root = campus.add_node(None, "campus", "campus")
    bus = campus.add_bus("B01", url, poll_interval_s=0.2)
    out = {}
    for unit, profile in profiles.items():
        room = campus.add_node(root, "room", f"1-10{unit}", f"1-10{unit}")
        out[unit] = (campus.add_meter(bus, unit, profile, f"3100000010{unit:02d}", room), room)
    return out


def _service() -> ReadingService:
    service = ReadingService(role="test", flush_s=0.05, billing_every_s=0.5)
    ok, _info = service.start()
    assert ok
    return service


def _latest(meter_id: int):
    rows = readings.latest([meter_id])
    return rows[0].values if rows else None


def test_stock_ddsy1352_is_read_and_keeps_its_money_at_the_station(tmp_path):
    save_master_key(default_key_file(), MasterKey.generate())  # tokens could be made
    units = {1: ddsy1352(frequency=False, token_registers=False, serial="310000001001"),
             2: ddsy1352(serial="310000001002"),
             3: ddsy1352(frequency=False, serial="310000001003"),
             4: ddsy1352(frequency=False, token_registers=False, serial="310000001004")}
    with plain_slave(units) as slave:
        ids = _station(tmp_path, slave.url, dict.fromkeys(units, "acrel-ddsy1352"))
        # accounts opened before anything is known of the meters: the meters keep the money
        acct = {u: accounts.open_account(ADMIN, ids[u][1]).account for u in (1, 2, 3)}
        assert {a.mode for a in acct.values()} == {"meter"}
        paid = recharge(CASHIER, acct[1].id, 2000, "cash")
        assert paid.outbox_id is not None
        service = _service()
        try:
            stock, full, no_freq, spare = (ids[u][0] for u in (1, 2, 3, 4))
            assert wait_for(lambda: all(_latest(ids[u][0]) is not None for u in units))
            assert wait_for(lambda: account_store.get_account(acct[1].id).mode == "station")
            assert wait_for(lambda: account_store.outbox_item(paid.outbox_id).state == "booked")
            # every documented value, and every vendor-tool value the meter has, is read
            v = _latest(stock)
            assert (v.voltage_v, v.current_a, v.active_power_w, v.power_factor) == (
                220.1, 1.5, 330.0, 0.97)
            assert v.energy_wh == 123450 and v.remaining_money_cents == 5000
            assert v.relay_closed is True and v.control_mode == "auto"
            assert v.frequency_hz is None and v.remaining_energy_kwh is None
            assert _latest(full).frequency_hz == 50.02 and _latest(no_freq).frequency_hz is None
            # what each meter lacks is learned, stored and listed in its details
            known = capabilities.load()
            assert set(known[stock].missing) == STOCK_MISSING
            assert known[no_freq].missing == ("frequency",)
            assert full not in known or known[full].missing == ()
            details = meter_details(VIEWER, stock)
            assert {m.name for m in details.missing} == STOCK_MISSING
            assert not any(m.documented for m in details.missing)
            assert details.takes_tokens is False and details.money_mode == "station"
            assert details.model == "DDSY1352" and details.read_mode == "merged"
            assert meter_details(VIEWER, no_freq).takes_tokens is True
            # not even by hand: a control whose registers the meter lacks is refused
            for action, value in (("recharge", bytes(26)), ("malicious_load_detection", 1)):
                cmd = service.submit(stock, action, value)
                assert cmd.wait(5) and not cmd.ok and "does not support" in cmd.error
            # the token never reached the meter; its money stays in the station's balance
            assert units[1].writes == []
            assert account_store.get_account(acct[2].id).mode == "meter"
            assert account_store.get_account(acct[3].id).mode == "meter"
            audit = list(AuditEntry.select().where(AuditEntry.kind == "account_mode"))
            assert [(e.operator, e.node) for e in audit] == [("system", ids[1][1])]
            alarms = alarm_list(VIEWER, kind="account_mode")
            assert [a.meter_id for a in alarms] == [stock]
            # a new account for a meter known to lack the registers: the station keeps money
            assert accounts.open_account(ADMIN, ids[4][1]).account.mode == "station"
            assert meter_details(VIEWER, spare).money_mode == "station"
        finally:
            service.stop()
        with pytest.raises(UserFacingError):
            room = campus.add_node(None, "room", "1-199", "1-199")
            bus_id = campus.buses()[0].id
            campus.add_meter(bus_id, 9, "eastron-sdm120", "", room)
            accounts.open_account(ADMIN, room, mode="meter")
        # remembered: a new service does not ask the meter again for what it lacks
        asked = units[1].reads_touching([0x11, *range(0x1010, 0x1016)])
        before = len(units[1].requests)
        service = _service()
        try:
            assert wait_for(lambda: len(units[1].requests) >= before + 6)
        finally:
            service.stop()
        assert units[1].reads_touching([0x11, *range(0x1010, 0x1016)]) == asked


def test_sdm120_refusing_reads_across_holes_is_read_point_by_point(tmp_path):
    units = {1: sdm120(strict=True), 2: sdm120(energy_kwh=10.0)}
    with plain_slave(units) as slave:
        ids = _station(tmp_path, slave.url, dict.fromkeys(units, "eastron-sdm120"))
        # a metering meter takes no token: its account keeps the money at the station
        assert accounts.open_account(ADMIN, ids[1][1]).account.mode == "station"
        service = _service()
        try:
            meter = ids[1][0]
            assert wait_for(lambda: _latest(meter) is not None
                            and capabilities.get(meter) is not None)
            start = len(units[1].requests)
            assert wait_for(lambda: len(units[1].requests) >= start + 16)
        finally:
            service.stop()
        v = _latest(meter)
        assert v.voltage_v == 229.5 and v.current_a == 2.25 and v.active_power_w == 480.0
        assert v.energy_wh == 1_234_500
        assert v.power_factor == pytest.approx(0.96) and v.frequency_hz == pytest.approx(49.98)
        assert capabilities.get(meter).missing == ()
        assert meter_details(VIEWER, meter).read_mode == "no-gaps"
        # once learned, no read crosses a register the meter does not have
        defined = {a + k for a in SDM120_POINTS.values() for k in (0, 1)}
        later = units[1].requests[start:]
        assert later and all(set(range(s, s + n)) <= defined for _fc, s, n in later)
        # the meter that reads across its holes keeps one transaction a poll
        assert capabilities.get(ids[2][0]) is None or capabilities.get(ids[2][0]).read_mode \
            == "merged"
        assert _latest(ids[2][0]).energy_wh == 10_000


def test_bad_values_are_left_out_and_the_bus_keeps_polling(tmp_path):
    units = {1: sdm120(energy_kwh=1000.0), 2: sdm120(energy_kwh=50.0), 3: sdm120(energy_kwh=70.0)}
    energy = SDM120_POINTS["energy"]
    with plain_slave(units) as slave:
        ids = _station(tmp_path, slave.url, dict.fromkeys(units, "eastron-sdm120"))
        bad_meter, good = ids[1][0], [ids[2][0], ids[3][0]]
        service = _service()
        try:
            assert wait_for(lambda: _latest(bad_meter) is not None
                            and _latest(bad_meter).energy_wh == 1_000_000)
            poller = next(iter(service.pollers.values()))
            for step, bad in enumerate((float("nan"), float("inf"), 1e30, 1e20), start=1):
                units[1].set_float(energy, bad)
                units[2].set_float(energy, 50.0 + step)
                units[3].set_float(energy, 70.0 + step)
                cycles = poller.cycles
                assert wait_for(lambda c=cycles: poller.cycles >= c + 2)
                # the other meters' readings of this very cycle are stored
                assert wait_for(lambda s=step: [_latest(m).energy_wh for m in good] == [
                    (50 + s) * 1000, (70 + s) * 1000])
            units[1].set_float(energy, 1000.5)
            assert wait_for(lambda: _latest(bad_meter).energy_wh == 1_000_500)
            assert service.supervisors["bus-B01"].state.restarts == 0
            assert readings.bus_states()[poller.bus.id]["state"] == "polling"
        finally:
            service.stop()
        v = _latest(bad_meter)
        assert v.voltage_v == 229.5 and v.active_power_w == 480.0  # the rest was kept
        cap = capabilities.get(bad_meter)
        assert cap.bad_values >= 4 and cap.last_bad.startswith("energy")
        for meter in good:
            assert capabilities.get(meter) is None or capabilities.get(meter).bad_values == 0
        alarms = alarm_list(VIEWER, kind="bad_reading")
        assert [a.meter_id for a in alarms] == [bad_meter]
        # no energy was booked from the bad register: only the last good step, 0.5 kWh
        assert sum(wh for _s, wh in readings.interval_energy(bad_meter)) == 500
        assert [sum(wh for _s, wh in readings.interval_energy(m)) for m in good] == [
            4000, 4000]
        assert [e["kind"] for e in readings.events(bad_meter)] == ["bad_value"]
        assert meter_details(VIEWER, bad_meter).bad_values == cap.bad_values


def test_what_a_meter_lacked_is_tried_again_and_found(tmp_path):
    """A meter learned to lack frequency hours ago now has it (a firmware update): the next
    look finds it; a meter with another serial than the one learned from starts afresh."""
    units = {1: ddsy1352(serial="310000001001"), 2: ddsy1352(serial="310000001002")}
    with plain_slave(units) as slave:
        ids = _station(tmp_path, slave.url, dict.fromkeys(units, "acrel-ddsy1352"))
        updated, replaced = ids[1][0], ids[2][0]
        capabilities.store_updates({
            updated: CapabilityUpdate(("frequency",), "merged", 0.0, "310000001001"),
            replaced: CapabilityUpdate(("frequency", "token_status"), "single", 9e9,
                                       "319999999999")})
        service = _service()
        try:
            assert wait_for(lambda: capabilities.get(updated).missing == ()
                            and _latest(updated) is not None
                            and _latest(updated).frequency_hz == 50.02)
            assert wait_for(lambda: capabilities.get(replaced).missing == ()
                            and capabilities.get(replaced).read_mode == "merged")
        finally:
            service.stop()
        assert [e["detail"] for e in readings.events(updated)
                if e["kind"] == "answers_again"] == ["frequency"]
        assert _latest(replaced).frequency_hz == 50.02
