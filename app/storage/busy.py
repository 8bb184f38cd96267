"""Telling a busy or full database from a defect, and waiting on it only as long as a caller can.

SQLite lets one writer at a time: another process's long transaction (an import, a backup, a
clerk's window) makes a write wait up to the connection's busy timeout and then fail with
``database is locked``. A full disk fails a write with ``database or disk is full``. Neither is
a defect of the caller: the polling side keeps what it could not write and tries again later
(``core/writer.py``, ``core/outbox.py``) instead of dying. ``unwritable`` says whether an
exception is one of those conditions; ``short_wait`` lowers the busy timeout of this thread's
connection for code that must not stall (a bus thread may wait half a second, not ten).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import peewee

from app.storage.models import database

#: The busy timeout of every connection (ms), as ``db.PRAGMAS`` sets it.
NORMAL_TIMEOUT_MS = 10_000
#: What a thread that must keep polling waits for the write lock at most (ms).
SHORT_TIMEOUT_MS = 500

_BUSY = ("database is locked", "database table is locked", "database is busy")
_FULL = ("database or disk is full", "disk i/o error", "attempt to write a readonly database",
         "unable to open database file",
         # SQLite rolled the transaction back itself (a full disk, an I/O error) and the
         # ROLLBACK that followed found none: that error hides the first one
         "cannot rollback - no transaction is active")


def _message(exc: BaseException) -> str | None:
    if isinstance(exc, (peewee.OperationalError, sqlite3.OperationalError)):
        return str(exc).lower()
    return None


def is_busy(exc: BaseException) -> bool:
    """Another connection holds the write lock longer than this one waited."""
    text = _message(exc)
    return text is not None and any(t in text for t in _BUSY)


def is_full(exc: BaseException) -> bool:
    """The disk (or the file) takes no more data, or cannot be written at all."""
    text = _message(exc)
    return text is not None and any(t in text for t in _FULL)


def unwritable(exc: BaseException) -> bool:
    """The database cannot take a write now, for a reason outside the program: busy or full."""
    return is_busy(exc) or is_full(exc)


def _set_timeout(ms: int) -> None:
    database.execute_sql(f"PRAGMA busy_timeout = {int(ms)}")


@contextmanager
def short_wait(ms: int = SHORT_TIMEOUT_MS) -> Iterator[None]:
    """Within the block, this thread's connection waits at most ``ms`` for the write lock."""
    _set_timeout(ms)
    try:
        yield
    finally:
        try:
            _set_timeout(NORMAL_TIMEOUT_MS)
        except peewee.DatabaseError:
            pass  # the connection is gone: a new one starts with the normal timeout
