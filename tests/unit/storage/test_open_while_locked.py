"""Opening a database another process is writing to does not wait for its lock: a database
that needs no upgrade is only read."""

from __future__ import annotations

import sqlite3
import time

from app.storage import campus
from app.storage.db import close_database, open_database


def test_a_station_opens_while_another_process_holds_the_write_lock(tmp_path):
    path = tmp_path / "s.db"
    open_database(path)
    campus.add_node(None, "campus", "c")
    close_database()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        open_database(path, create=False)
        assert [n.name for n in campus.nodes()] == ["c"]
        assert time.monotonic() - started < 2.0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        close_database()
