"""What the operator reads when the database cannot take a write: what is wrong and what to do,
not "something went wrong"."""

from __future__ import annotations

import sqlite3

from app.ui.errors import error_text


def test_a_busy_database_is_explained_not_called_a_defect(tmp_path):
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    clerk = sqlite3.connect(path, timeout=0)
    try:
        clerk.execute("INSERT INTO t VALUES (1)")
    except sqlite3.OperationalError as exc:
        text = error_text(exc, "recharge")
    else:
        raise AssertionError("the write should have found the database locked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        clerk.close()
    assert "busy" in text and "Nothing was changed" in text
    assert "Something went wrong" not in text
