"""Opening a database: SQLite in WAL mode with a busy timeout, schema created or migrated.

Every process (window, ``serve``, admin commands) opens the same file; WAL lets readers go on
while the one polling process writes. ``open_database`` binds the models to the file for this
process; a thread that uses the database gets its own connection (peewee's default).
"""

from __future__ import annotations

import logging
import shlex
import uuid
from pathlib import Path

from peewee import SqliteDatabase

from app.errors import CorruptDatabase, MissingDatabase, StorageError
from app.i18n import _
from app.storage import backup, ledger, migrations
from app.storage.models import Meta, database

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
    """Open (and if needed create or upgrade) the database at ``path``; bind the models.

    An existing file is checked first (``PRAGMA quick_check``): a damaged one is refused with
    ``CorruptDatabase``, before anything is bound or changed."""
    path = Path(path)
    if not create and not path.exists():
        raise MissingDatabase(_("no database at {path}").format(path=path))
    if path.is_file() and path.stat().st_size > 0:
        problems = backup.quick_check(path)
        if problems:
            log.error("database %s is damaged: %s", path, "; ".join(problems))
            raise CorruptDatabase(corrupt_message(path, problems))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # a new station: its money and residents are for its users only
        path.touch(mode=0o600)
    db = SqliteDatabase(str(path), pragmas=PRAGMAS, check_same_thread=False, timeout=10)
    database.initialize(db)
    ledger.reset_cache()
    try:
        db.connect(reuse_if_open=True)
        migrations.upgrade(db)
        _name_the_station(db)
    except Exception as exc:
        db.close()
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    return db


STATION_ID = "station_id"


def _name_the_station(db: SqliteDatabase) -> None:
    """Give the database a station id once: a restore tells a backup of this station from
    another station's."""
    if Meta.get_or_none(Meta.key == STATION_ID) is None:
        with db.atomic("IMMEDIATE"):
            Meta.insert(key=STATION_ID, value=uuid.uuid4().hex).on_conflict_ignore().execute()


def corrupt_message(path: Path, problems: list[str]) -> str:
    """What the operator reads about a damaged database: that nothing was changed, and the
    command that restores the newest backup (or where backups were looked for)."""
    newest = backup.newest_in(backup.default_dir(path), path)
    head = _("The database {path} is damaged ({problem}); nothing was changed.").format(
        path=path, problem=problems[0])
    if newest is not None:
        return head + " " + _("Restore the newest backup with: python main.py restore --db "
                              "{db} --from {backup}").format(db=shlex.quote(str(path)),
                                                             backup=shlex.quote(str(newest)))
    return head + " " + _("No backup was found in {folder}; restore one with: python main.py "
                          "restore --db {db} --from BACKUP_FILE").format(
        folder=backup.default_dir(path), db=shlex.quote(str(path)))


def database_path() -> Path | None:
    """The file of the database bound in this process, if any."""
    db = database.obj
    return Path(db.database) if db is not None else None


def close_database() -> None:
    db = database.obj
    if db is not None and not db.is_closed():
        db.close()


def write_transaction():
    """A transaction that takes the write lock at once (BEGIN IMMEDIATE): an act that reads and
    then writes (the audit chain's head, a gapless counter) cannot lose a race with another
    process. Nested inside another transaction it is a savepoint."""
    return database.atomic("IMMEDIATE")
