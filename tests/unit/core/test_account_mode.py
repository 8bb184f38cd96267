"""Who keeps an account's money follows what its meter can take: a meter without the recharge
token registers (or a metering-only one) is offered station-kept money only, and an account
whose meter turns out to lack them is moved there by the station, audited and alarmed, its
waiting tokens settled at the station, never sent."""

from __future__ import annotations

import pytest

from app.core import accounts, audit, billing
from app.core.alarms import alarm_list
from app.core.meter_info import meter_details
from app.core.recharge import recharge
from app.errors import UserFacingError
from app.storage import accounts as store
from app.storage import campus, capabilities, ledger
from app.storage.capabilities import CapabilityUpdate
from app.storage.db import open_database
from app.storage.models import AuditEntry
from tests.helpers import operator

ADMIN = operator("administrator")


@pytest.fixture
def db(tmp_path):
    d = open_database(tmp_path / "mode.db")
    yield d
    d.close()


def _room(code: str, profile: str = "acrel-ddsy1352", unit: int = 1) -> tuple[int, int]:
    root = campus.add_node(None, "campus", f"c{code}")
    room = campus.add_node(root, "room", code, code)
    bus = campus.add_bus(f"B-{code}", "tcp://127.0.0.1:1")
    return room, campus.add_meter(bus, unit, profile, "310000001001", room)


def _lacks(meter_id: int, *missing: str) -> None:
    capabilities.store_updates({meter_id: CapabilityUpdate(tuple(missing), "merged", 0.0)})


def test_the_default_mode_follows_what_the_meter_can_take(db):
    ddsy_room, _m = _room("1-101")
    stock_room, stock = _room("1-102")
    sdm_room, _s = _room("1-103", "eastron-sdm120")
    _lacks(stock, "frequency", "token_status", "trip_reason")
    assert accounts.open_account(ADMIN, ddsy_room).account.mode == "meter"
    assert accounts.open_account(ADMIN, stock_room).account.mode == "station"
    assert accounts.open_account(ADMIN, sdm_room).account.mode == "station"
    lacking_room, lacking = _room("1-106")
    _lacks(lacking, "token_status")
    with pytest.raises(UserFacingError, match="cannot take a recharge token"):
        accounts.open_account(ADMIN, lacking_room, mode="meter")
    with pytest.raises(UserFacingError, match="cannot take a recharge token"):
        accounts.open_account(ADMIN, _room("1-108", "eastron-sdm120")[0], mode="meter")
    # a meter lacking only frequency still takes tokens
    freq_room, freq = _room("1-107")
    _lacks(freq, "frequency")
    assert accounts.open_account(ADMIN, freq_room).account.mode == "meter"


def test_an_account_whose_meter_lacks_the_token_registers_moves_to_the_station(db):
    room, meter = _room("2-201")
    acct = accounts.open_account(ADMIN, room).account
    paid = recharge(operator("cashier", "alice"), acct.id, 3000, "cash")
    assert store.outbox_item(paid.outbox_id).state == "pending"
    assert billing.bill().modes_changed == 0  # nothing known yet: the meter keeps the money
    _lacks(meter, "token_status", "remaining_energy")
    report = billing.bill()
    assert report.modes_changed == 1
    assert store.get_account(acct.id).mode == "station"
    item = store.outbox_item(paid.outbox_id)
    assert item.state == "booked" and "no token registers" in item.last_error
    assert ledger.balance(acct.id) == 3000  # the money stays, now kept by the station
    entry = AuditEntry.get(AuditEntry.kind == "account_mode")
    assert entry.operator == "system" and entry.node == room and '"station"' in entry.after
    assert audit.verify().ok
    [alarm] = alarm_list(operator("viewer"), kind="account_mode")
    assert alarm.meter_id == meter and alarm.account_id == acct.id
    assert acct.number in alarm.text and "1 waiting token" in alarm.text
    assert meter_details(operator("viewer"), meter).money_mode == "station"
    assert billing.bill().modes_changed == 0  # once
    # a later recharge books at the station: no token is queued for that meter
    assert recharge(operator("cashier", "alice"), acct.id, 500, "cash").outbox_id is None


def test_meter_details_needs_the_view_permission(db):
    _room_id, meter = _room("3-301")
    details = meter_details(operator("viewer"), meter)
    assert details.missing == () and details.takes_tokens and details.kind == "prepaid"
    with pytest.raises(UserFacingError):
        meter_details(operator("viewer"), 9999)
