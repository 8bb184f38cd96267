"""Commands for meters are signed as they are queued; rows from before signing (schema 4) are
signed by the process that upgrades the database, and nothing written by hand later is."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from app.core import accounts, commands
from app.core.recharge import recharge
from app.core.station import open_station
from app.storage import accounts as store
from app.storage import campus
from app.storage.db import close_database, open_database
from tests.helpers import operator


def _station(path):
    open_database(path)
    root = campus.add_node(None, "campus", "c")
    room = campus.add_node(root, "room", "1-101", "1-101")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    meter = campus.add_meter(bus, 1, "acrel-ddsy1352", "310000001001", room)
    store.insert_tariff("dorm", "2026-01-01", "0.588", "", "0", "test")
    acct = accounts.open_account(operator(), room, mode="meter").account.id
    return acct, meter


def test_a_queued_token_is_signed_and_checked_against_its_booking(tmp_path):
    acct, meter = _station(tmp_path / "s.db")
    result = recharge(operator("cashier", "alice"), acct, 12_34, "cash")
    item = store.outbox_item(result.outbox_id)
    assert len(item.mac) == 64 and commands.check(item) == ""
    for forged in (replace(item, amount_cents=99_999), replace(item, mac=""),
                   replace(item, meter_id=meter + 1), replace(item, id=-1)):
        assert commands.check(forged)
    close_database()


def test_rows_queued_before_signing_are_signed_by_the_upgrading_process(tmp_path):
    path = tmp_path / "old.db"
    acct, meter = _station(path)
    result = recharge(operator("cashier", "alice"), acct, 5_00, "cash")
    close_database()
    # make it the database an older VoltKeeper left: no MAC column, schema 4, and an allowance
    # token of that time, which names no booking
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE outbox DROP COLUMN mac")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        allowance = conn.execute(
            "INSERT INTO outbox (meter_id, action, amount_cents, state, attempts, last_error, "
            "created_at, updated_at) VALUES (?, 'recharge', 300, 'pending', 0, '', 1, 1)",
            (meter,)).lastrowid
    conn.close()
    open_station(path)
    legacy = store.outbox_item(result.outbox_id)
    assert legacy.mac and commands.check(legacy) == ""  # signed, and its booking covers it
    assert commands.check(store.outbox_item(allowance)) == ""
    assert commands.check(replace(legacy, amount_cents=6_00))
    # a row written by hand later is not taken for one from before
    conn = sqlite3.connect(path)
    with conn:
        later = conn.execute(
            "INSERT INTO outbox (meter_id, action, amount_cents, state, attempts, last_error, "
            "created_at, updated_at, mac) VALUES (?, 'recharge', 300, 'pending', 0, '', 1, 1, '')",
            (meter,)).lastrowid
    conn.close()
    assert commands.check(store.outbox_item(later))
    close_database()
    open_station(path)  # no upgrade this time: nothing is signed
    assert commands.check(store.outbox_item(later))
    close_database()


def test_a_purchase_count_written_by_hand_is_refused(tmp_path):
    acct, _meter = _station(tmp_path / "s.db")
    result = recharge(operator("cashier", "alice"), acct, 1_00, "cash")
    item = store.outbox_item(result.outbox_id)
    commands.set_purchase_count(item, 4)
    assert commands.check(store.outbox_item(item.id)) == ""
    store.set_purchase_count(item.id, 9)  # past the MAC
    assert commands.check(store.outbox_item(item.id))
    close_database()
