"""A large import does not stop polling: while 5,000 payments are previewed and booked, a writer
like the polling process's (a small write transaction every 50 ms, on its own connection)
never waits a second, and the import's one write transaction is short. Before, the import held
SQLite's write lock for the whole booking, row by row (a 5,000-row file: many seconds; the
outbox's delivery then failed with "database is locked")."""

from __future__ import annotations

import csv
import time

from app.core import accounts, payments_import
from app.storage import campus, ledger
from app.storage.db import close_database, open_database
from tests.helpers import PollingWriter, operator

ROWS = 5_000
ROOMS = 200


def test_a_large_import_never_makes_polling_wait_a_second(tmp_path):
    path = tmp_path / "station.db"
    open_database(path)
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    ids = []
    with campus.atomic():
        for i in range(ROOMS):
            code = f"{1 + i // 100}-{101 + i % 100}"
            node = campus.add_node(root, "room", code, code)
            campus.add_meter(bus, 1 + i, "acrel-ddsy1352", f"3100{i:08d}", node)
            ids.append(accounts.open_account(operator(), node,
                                             mode="station" if i % 4 else "meter").account.id)
    f = tmp_path / "statement.csv"
    with f.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["交易号", "房间号", "金额"]] + [
            [f"T{n:07d}", f"{1 + (n % ROOMS) // 100}-{101 + n % 100}", "1.00"]
            for n in range(ROWS)])
    writer = PollingWriter(path)
    writer.start()
    try:
        time.sleep(0.2)
        preview = payments_import.preview(f, default_method="wechat")
        assert len(preview.valid) == ROWS
        result = payments_import.apply(operator("finance"), preview)
        time.sleep(0.3)
    finally:
        writer.stop()
    assert result.booked == ROWS
    assert sum(ledger.balance(a) for a in ids) == ROWS * 100
    close_database()
    assert not writer.errors
    assert len(writer.waits) > 5
    assert max(writer.waits) < 1.0, sorted(writer.waits)[-5:]
    assert result.lock_s < 1.0
