"""Buses and meters as acts: added, edited, moved and removed by the maintenance role, checked,
audited with before and after, each one moving the campus's bus configuration version; the
refusals say why and what to do."""

from __future__ import annotations

import json
import time

import pytest

from app.core import accounts, campus_edit, commands
from app.core.operators import PermissionDenied
from app.errors import UserFacingError
from app.storage import campus
from app.storage import operators as audit_store
from app.storage.db import open_database
from app.storage.models import IntervalEnergy, LatestReading
from tests.helpers import operator

TECH = operator("maintenance", "tech")
ADMIN = operator("administrator", "admin")
CASHIER = operator("cashier", "cash")
PROFILE = "acrel-ddsy1352"


@pytest.fixture
def site(tmp_path):
    db = open_database(tmp_path / "site.db")
    root = campus.add_node(None, "campus", "c")
    building = campus.add_node(root, "building", "3号楼")
    rooms = {code: campus.add_node(building, "room", code, code)
             for code in ("3-204", "3-205", "3-206")}
    yield rooms
    db.close()


def _last_audit():
    return audit_store.find_audit(limit=1)[0]


def test_a_bus_and_its_meters_are_added_checked_and_audited(site):
    v0 = campus.config_version()
    bus = campus_edit.add_bus(TECH, " B03 ", "rtu:///dev/ttyUSB0?baud=9600&parity=N", 2).bus
    assert (bus.name, bus.link, bus.poll_interval_s, bus.enabled) == (
        "B03", "rtu:///dev/ttyUSB0?baud=9600", 2.0, True)
    assert campus.config_version() == v0 + 1
    entry = _last_audit()
    assert (entry.operator, entry.kind, entry.target) == ("tech", "bus_add", "B03")
    assert json.loads(entry.after)["link"] == "rtu:///dev/ttyUSB0?baud=9600"
    tcp = campus_edit.add_bus(TECH, "B04", "rtu-tcp://10.0.0.7:4001").bus
    assert tcp.link == "rtu-tcp://10.0.0.7:4001?baud=9600"
    made = campus_edit.add_meter(TECH, bus.id, 7, PROFILE, "310000000007", "3-204")
    assert made.meter.node_id == site["3-204"] and made.changes.campus
    assert site["3-204"] in made.changes.nodes
    entry = _last_audit()
    assert (entry.kind, entry.target, entry.node_id) == ("meter_add", "B03/7", site["3-204"])
    assert json.loads(entry.after) == {"bus": "B03", "address": 7, "serial": "310000000007",
                                       "profile": PROFILE, "room": "3-204", "enabled": True}
    campus_edit.add_meter(ADMIN, bus.id, 8, PROFILE)  # no room yet, no serial
    assert [m.address for m in campus.meters(bus.id)] == [7, 8]
    rows = campus_edit.setup(CASHIER)  # anyone may look
    assert [r.room for r in rows.meters_on(bus.id)] == ["3-204", ""]
    assert PROFILE in rows.profiles and "3-205" in rows.rooms


@pytest.mark.parametrize(("link", "words"), [
    ("ttyUSB0", "a link starts with rtu://"), ("serial:///dev/ttyS1", "starts with"),
    ("rtu://", "needs its device"), ("tcp://:502", "needs a host"),
    ("rtu:///dev/ttyS1?baud=fast", "whole numbers"), ("rtu:///dev/ttyS1?parity=X", "N, E or O"),
    ("rtu:///dev/ttyS1?speed=9600", "unknown settings: speed"),
    ("rtu:///dev/ttyS1?baud=100", "300 to 921600"),
    ("tcp://host:99999", "1 to 65535"), ("rtu-tcp://host:0", "1 to 65535"),
])
def test_a_link_that_cannot_be_understood_is_refused_with_examples(site, link, words):
    with pytest.raises(UserFacingError) as refused:
        campus_edit.add_bus(TECH, "B09", link)
    assert words in str(refused.value) and "tcp://HOST:PORT" in str(refused.value)
    assert campus.buses() == []


def test_bad_input_is_refused_and_nothing_is_written(site):
    bus = campus_edit.add_bus(TECH, "B01", "tcp://127.0.0.1:5021").bus
    entries = len(audit_store.find_audit())
    version = campus.config_version()
    refusals = [
        (lambda: campus_edit.add_bus(TECH, "b01", "tcp://h:1"), "there is a bus B01"),
        (lambda: campus_edit.add_bus(TECH, "", "tcp://h:1"), "1 to 40 characters"),
        (lambda: campus_edit.add_bus(TECH, "B02", "tcp://h:1", 0), "poll interval"),
        (lambda: campus_edit.add_meter(TECH, bus.id, 0, PROFILE), "1 to 247"),
        (lambda: campus_edit.add_meter(TECH, bus.id, 248, PROFILE), "1 to 247"),
        (lambda: campus_edit.add_meter(TECH, bus.id, 1, "acme-x1"), "no meter profile"),
        (lambda: campus_edit.add_meter(TECH, bus.id, 1, PROFILE, room="9-999"),
         "no room or shop numbered '9-999'"),
        (lambda: campus_edit.edit_bus(TECH, bus.id), "say what to change"),
    ]
    for call, words in refusals:
        with pytest.raises(UserFacingError, match=words):
            call()
    campus_edit.add_meter(TECH, bus.id, 1, PROFILE, "S1")
    with pytest.raises(UserFacingError, match="address 1 on bus B01 is taken by meter S1"):
        campus_edit.add_meter(TECH, bus.id, 1, PROFILE, "S2")
    with pytest.raises(UserFacingError, match="serial number S1 already"):
        campus_edit.add_meter(TECH, bus.id, 2, PROFILE, "S1")
    assert len(audit_store.find_audit()) == entries + 1  # the one meter added
    assert campus.config_version() == version + 1


def test_a_cashier_may_not_commission_and_the_refusal_is_logged(site):
    with pytest.raises(PermissionDenied, match="commission"):
        campus_edit.add_bus(CASHIER, "B01", "tcp://127.0.0.1:5021")
    entry = _last_audit()
    assert (entry.operator, entry.kind, entry.target) == ("cash", "denied", "commission")
    assert campus.buses() == [] and campus.config_version() == 0
    bus = campus_edit.add_bus(TECH, "B01", "tcp://127.0.0.1:5021").bus
    meter = campus_edit.add_meter(TECH, bus.id, 1, PROFILE).meter
    for call in (lambda: campus_edit.edit_bus(CASHIER, bus.id, enabled=False),
                 lambda: campus_edit.remove_bus(CASHIER, bus.id),
                 lambda: campus_edit.move_meter(CASHIER, meter.id, address=2),
                 lambda: campus_edit.remove_meter(CASHIER, meter.id)):
        with pytest.raises(PermissionDenied):
            call()
    assert campus.meters() == [meter]


def test_edits_keep_a_before_and_after_and_nothing_changed_is_no_act(site):
    bus = campus_edit.add_bus(TECH, "B01", "tcp://127.0.0.1:5021").bus
    meter = campus_edit.add_meter(TECH, bus.id, 3, PROFILE, "S3").meter
    done = campus_edit.edit_bus(TECH, bus.id, name="B1", link="tcp://127.0.0.1:5022",
                                poll_interval_s=1.5, enabled=False)
    assert (done.bus.name, done.bus.link, done.bus.poll_interval_s, done.bus.enabled) == (
        "B1", "tcp://127.0.0.1:5022", 1.5, False)
    entry = _last_audit()
    assert entry.kind == "bus_edit" and json.loads(entry.before)["name"] == "B01"
    assert json.loads(entry.after)["enabled"] is False
    version, entries = campus.config_version(), len(audit_store.find_audit())
    same = campus_edit.edit_bus(TECH, bus.id, name="B1")
    assert not same.changes.campus and same.bus == done.bus
    assert (campus.config_version(), len(audit_store.find_audit())) == (version, entries)
    edited = campus_edit.edit_meter(TECH, meter.id, address=4, serial="S4", enabled=False)
    assert (edited.meter.address, edited.meter.serial, edited.meter.enabled) == (4, "S4", False)
    entry = _last_audit()
    assert (entry.kind, entry.target) == ("meter_edit", "B1/3")
    assert json.loads(entry.before)["address"] == 3 and json.loads(entry.after)["address"] == 4
    assert campus.config_version() == version + 1


def test_a_meter_moves_to_another_bus_address_and_room(site):
    b1 = campus_edit.add_bus(TECH, "B01", "tcp://127.0.0.1:5021").bus
    b2 = campus_edit.add_bus(TECH, "B02", "tcp://127.0.0.1:5022").bus
    meter = campus_edit.add_meter(TECH, b1.id, 5, PROFILE, room="3-204").meter
    campus_edit.add_meter(TECH, b2.id, 5, PROFILE)
    with pytest.raises(UserFacingError, match="address 5 on bus B02 is taken"):
        campus_edit.move_meter(TECH, meter.id, bus_id=b2.id)
    moved = campus_edit.move_meter(TECH, meter.id, bus_id=b2.id, address=6, room="3-205")
    assert (moved.meter.bus_id, moved.meter.address, moved.meter.node_id) == (
        b2.id, 6, site["3-205"])
    assert moved.changes.nodes == {site["3-204"], site["3-205"]}
    entry = _last_audit()
    assert (entry.kind, entry.target) == ("meter_move", "B01/5")
    assert json.loads(entry.after)["bus"] == "B02" and json.loads(entry.after)["room"] == "3-205"
    out = campus_edit.move_meter(TECH, meter.id, room="")
    assert out.meter.node_id is None


def test_a_bus_with_meters_is_not_removed_until_they_are_gone(site):
    bus = campus_edit.add_bus(TECH, "B01", "tcp://127.0.0.1:5021").bus
    m1 = campus_edit.add_meter(TECH, bus.id, 1, PROFILE).meter
    m2 = campus_edit.add_meter(TECH, bus.id, 2, PROFILE).meter
    with pytest.raises(UserFacingError, match="bus B01 still has 2 meters: move them"):
        campus_edit.remove_bus(TECH, bus.id)
    campus_edit.remove_meter(TECH, m1.id)
    with pytest.raises(UserFacingError, match="still has 1 meter: move it"):
        campus_edit.remove_bus(TECH, bus.id)
    campus_edit.remove_meter(TECH, m2.id)
    campus_edit.remove_bus(TECH, bus.id)
    assert campus.buses() == []
    entry = _last_audit()
    assert (entry.kind, entry.target) == ("bus_remove", "B01")
    assert json.loads(entry.before)["link"] == "tcp://127.0.0.1:5021"


def test_a_meter_is_kept_while_its_room_has_an_open_account_or_a_recharge_waits(site):
    bus = campus_edit.add_bus(TECH, "B01", "tcp://127.0.0.1:5021").bus
    meter = campus_edit.add_meter(TECH, bus.id, 1, PROFILE, "S1", room="3-204").meter
    LatestReading.insert(meter=meter.id, read_at=time.time(), energy_wh=1000,
                         online=True).execute()
    IntervalEnergy.insert(meter=meter.id, start=900, energy_wh=120).execute()
    acct = accounts.open_account(ADMIN, site["3-204"], mode="station").account
    mistake = campus_edit.add_meter(TECH, bus.id, 2, PROFILE, "S2", room="3-204").meter
    campus_edit.move_meter(TECH, mistake.id, room="")  # never read: it may go
    campus_edit.move_meter(TECH, mistake.id, room="3-204")
    campus_edit.remove_meter(TECH, mistake.id)
    with pytest.raises(UserFacingError) as refused:
        campus_edit.remove_meter(TECH, meter.id)
    text = str(refused.value)
    assert "room 3-204 has the open account" in text and acct.number in text
    assert "close the account first" in text
    with pytest.raises(UserFacingError, match="open account"):
        campus_edit.move_meter(TECH, meter.id, room="3-205")
    moved = campus_edit.move_meter(TECH, meter.id, address=9)  # rewired: stays in its room
    assert moved.meter.address == 9
    accounts.close_account(ADMIN, acct.id, disposition="refund")  # its trip waits: no matter
    token = commands.queue(meter.id, "recharge", amount_cents=500)
    with pytest.raises(UserFacingError, match="1 recharge still waits to reach it"):
        campus_edit.remove_meter(TECH, meter.id)
    from app.storage import commands as command_store

    command_store.withdraw([token], "test")
    campus_edit.remove_meter(TECH, meter.id)
    assert campus.meters() == []
    assert IntervalEnergy.select().count() == 0 and LatestReading.select().count() == 0
    entry = _last_audit()
    assert (entry.kind, entry.target, entry.node_id) == ("meter_remove", "B01/9",
                                                         site["3-204"])
