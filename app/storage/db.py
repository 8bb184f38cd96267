"""Opening a database: SQLite in WAL mode with a busy timeout, schema created or migrated.

Every process (window, ``serve``, admin commands) opens the same file; WAL lets readers go on
while the one polling process writes. ``open_database`` binds the models to the file for this
process; a thread that uses the database gets its own connection (peewee's default).
"""

from __future__ import annotations

import logging
from pathlib import Path

from peewee import SqliteDatabase

from app.errors import StorageError
from app.storage import ledger, migrations
from app.storage.models import database

log = logging.getLogger("voltkeeper.storage")

PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",  # WAL + NORMAL: durable at checkpoints, never corrupt
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "cache_size": -16_000,  # 16 MB
    "temp_store": "memory",
}


def open_database(path: Path | str, *, create: bool = True) -> SqliteDatabase:
    """Open (and if needed create or upgrade) the database at ``path``; bind the models."""
    path = Path(path)
    if not create and not path.exists():
        raise StorageError(f"no database at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(str(path), pragmas=PRAGMAS, check_same_thread=False, timeout=10)
    database.initialize(db)
    ledger.reset_cache()
    try:
        db.connect(reuse_if_open=True)
        migrations.upgrade(db)
    except Exception as exc:
        db.close()
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    return db


def close_database() -> None:
    db = database.obj
    if db is not None and not db.is_closed():
        db.close()
