"""Schema 8: a database of schema 7 gains the table of reports kept, and a record reads back as
it was stored."""

from __future__ import annotations

import sqlite3

from app.storage import reports
from app.storage.db import open_database
from app.storage.migrations import SCHEMA_VERSION


def test_schema_7_upgrades_to_8_and_records_read_back(tmp_path):
    path = tmp_path / "vk.db"
    open_database(path).close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE report_record")  # as before schema 8
    con.execute("DROP TABLE receipt")
    con.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    db = open_database(path)
    try:
        assert SCHEMA_VERSION >= 8
        assert db.table_exists("report_record")
        rid = reports.store_report("2026-11", "monthly", ["/r/m.pdf", "/r/m.xlsx"],
                                   {"totals": {"closing": 12345}}, 1.5, "scheduler")
        kept = reports.stored_reports("monthly", "2026-11")
        assert [(k.id, k.paths, k.totals, k.made_by) for k in kept] == [
            (rid, ["/r/m.pdf", "/r/m.xlsx"], {"totals": {"closing": 12345}}, "scheduler")]
        assert reports.stored_reports("monthly", "2026-10") == []
    finally:
        db.close()


def test_schema_8_keeps_the_receipt_numbers_recharges_kept_before(tmp_path):
    from app.core import accounts
    from app.core.recharge import recharge
    from app.storage import campus
    from tests.helpers import operator

    path = tmp_path / "vk.db"
    db = open_database(path)
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B1", "tcp://127.0.0.1:1")
    ids = {}
    for k, mode in enumerate(("meter", "station")):
        room = campus.add_node(root, "room", f"1-10{k}", f"1-10{k}")
        campus.add_meter(bus, k + 1, "acrel-ddsy1352", f"3100{k}", room)
        ids[mode] = accounts.open_account(operator(), room, mode=mode).account.id
    a = recharge(operator("cashier", "alice"), ids["meter"], 1000, "cash")  # outbox keeps it
    b = recharge(operator("cashier", "bob"), ids["station"], 2000, "cash")  # the audit entry
    db.close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE receipt")  # as before schema 8
    con.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    db = open_database(path)
    try:
        assert reports.receipts_between(1, 10) == {a.receipt_no: (a.txn_id, "alice"),
                                                   b.receipt_no: (b.txn_id, "bob")}
        con = sqlite3.connect(path)
        try:
            con.execute("DELETE FROM receipt")
            raise AssertionError("a receipt row was deleted")
        except sqlite3.IntegrityError as exc:
            assert "append-only" in str(exc)
        finally:
            con.close()
    finally:
        db.close()
