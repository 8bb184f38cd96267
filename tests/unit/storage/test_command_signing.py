"""Commands for meters are signed as they are queued; rows from before signing (schema 4) are
told apart by id when the database is upgraded, and still checked against their booking."""

from __future__ import annotations

import sqlite3

from app.core import accounts, commands
from app.core.recharge import recharge
from app.storage import accounts as store
from app.storage import campus
from app.storage import commands as command_store
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
    for forged in (item.__class__(**{**item.__dict__, "amount_cents": 99_999}),
                   item.__class__(**{**item.__dict__, "mac": ""}),
                   item.__class__(**{**item.__dict__, "meter_id": meter + 1})):
        assert commands.check(forged)
    close_database()


def test_rows_queued_before_signing_are_still_delivered_after_the_upgrade(tmp_path):
    path = tmp_path / "old.db"
    acct, _meter = _station(path)
    result = recharge(operator("cashier", "alice"), acct, 5_00, "cash")
    close_database()
    # make it the database an older VoltKeeper left: no MAC column, schema 4
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE outbox DROP COLUMN mac")
        conn.execute("DELETE FROM meta WHERE key = 'outbox_signed_from'")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.close()
    open_database(path)
    legacy = store.outbox_item(result.outbox_id)
    assert legacy.mac == "" and command_store.signed_from() == legacy.id + 1
    assert commands.check(legacy) == ""  # predates signing, and its booking covers it
    assert commands.check(legacy.__class__(**{**legacy.__dict__, "amount_cents": 6_00}))
    newer = recharge(operator("cashier", "alice"), acct, 1_00, "cash")
    assert commands.check(store.outbox_item(newer.outbox_id)) == ""
    close_database()
