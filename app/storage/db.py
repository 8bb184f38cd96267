"""Opening a database: SQLite in WAL mode with a busy timeout, schema created or migrated.

Every process (window, ``serve``, admin commands) opens the same file; WAL lets readers go on
while the one polling process writes. ``open_database`` binds the models to the file for this
process; a thread that uses the database gets its own connection (peewee's default).
"""

from __future__ import annotations

import logging
import os
import shlex
import sqlite3
import uuid
from pathlib import Path

from peewee import SqliteDatabase

from app.errors import (
    CorruptDatabase,
    DatabaseUnavailable,
    EmptyDatabase,
    MissingDatabase,
    StorageError,
    UserFacingError,
    database_problem,
    file_problem,
    read_only_problem,
    read_only_reason,
)
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

    A new database (``create`` and no file there) is made whole beside it and moved into place,
    so a VoltKeeper database is never an empty file. An existing file is checked first: an
    empty file (0 bytes), a file that is not VoltKeeper's and a damaged one (``PRAGMA
    quick_check``: ``CorruptDatabase``) are refused before anything is bound or changed. Every
    failure of the file or its disk (read-only, full, a folder, permissions) is a
    ``DatabaseUnavailable`` whose message says what to do."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise MissingDatabase(_("no database at {path}: check the path given with --db (a "
                                    "new station is made by the window, a demo one by "
                                    "init-demo)").format(path=path))
        _create(path)
    else:
        _check_existing(path)
    db = SqliteDatabase(str(path), pragmas=PRAGMAS, check_same_thread=False, timeout=10)
    try:
        _bind_and_upgrade(db)
    except Exception as exc:
        db.close()
        raise _open_failure(path, exc) from exc
    return db


def _bind_and_upgrade(db: SqliteDatabase) -> None:
    """Bind the models to ``db``, bring its schema up to date and name the station."""
    database.initialize(db)
    ledger.reset_cache()
    db.connect(reuse_if_open=True)
    migrations.upgrade(db)
    _name_the_station(db)


def _open_failure(path: Path, exc: Exception) -> Exception:
    """What opening ``path`` failing with ``exc`` tells the operator."""
    problem = database_problem(exc, path)
    if problem is not None:
        return problem
    if isinstance(exc, StorageError):  # a schema newer than this program
        return DatabaseUnavailable(_("cannot open the database {path}: {error}").format(
            path=path, error=exc))
    if isinstance(exc, OSError):
        return file_problem(exc) or StorageError(f"cannot open database {path}: {exc}")
    return StorageError(f"cannot open database {path}: {exc}")


def _check_existing(path: Path) -> None:
    """Refuse what is not a sound VoltKeeper database, changing nothing."""
    if path.is_dir():
        raise DatabaseUnavailable(_("{path} is a folder, not a database file: give the "
                                    "database file's path with --db").format(path=path))
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _open_failure(path, exc) from exc
    if size == 0:
        log.debug("database %s is an empty file: refused", path)
        raise EmptyDatabase(_("The database {path} is an empty file (0 bytes), not a station; "
                              "nothing was changed.").format(path=path) + " "
                            + _restore_hint(path) + ". "
                            + _("To start a new station there, delete the empty file first."))
    why = read_only_reason(path)
    if why is not None:  # refused now, not half-way through the first thing that writes
        raise read_only_problem(path, why)
    problems = backup.quick_check(path)
    if problems and any("disk i/o error" in p.lower() for p in problems):
        # not damage: SQLite could not read or write (a full disk cannot take its WAL index)
        raise _open_failure(path, sqlite3.OperationalError(problems[0]))
    if problems:
        log.debug("database %s is damaged: %s", path, "; ".join(problems))
        raise CorruptDatabase(corrupt_message(path, problems))
    tables = _tables(path)
    if tables is not None and "meta" not in tables:
        log.debug("database %s is not VoltKeeper's (tables: %s)", path, ", ".join(tables))
        raise DatabaseUnavailable(_(
            "{path} is a SQLite database, but not a VoltKeeper station's (it has no VoltKeeper "
            "tables); nothing was changed. Check the path given with --db.").format(path=path))


def _tables(path: Path) -> list[str] | None:
    """The tables in the file (read as the program opens it, a WAL included); None when SQLite
    cannot tell (opening reports why)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=10,
                               isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        return [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _create(path: Path) -> None:
    """A new, empty station at ``path``: its schema made in a private file beside it (mode
    0600: its money and residents are for its users only), then linked into place at once. A
    crash on the way leaves no file at ``path``; a process that made it meanwhile wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        tmp.touch(mode=0o600)
        db = SqliteDatabase(str(tmp), pragmas={**PRAGMAS, "journal_mode": "delete",
                                               "synchronous": "full"},
                            check_same_thread=False, timeout=10)
        try:
            _bind_and_upgrade(db)
        finally:
            db.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            log.info("database %s was made by another process meanwhile", path)
        except OSError:  # a file system without hard links
            if path.exists():
                return
            os.rename(tmp, path)
        _sync_folder(path.parent)
        log.info("created a new database at %s", path)
    except Exception as exc:
        why = read_only_reason(path) if isinstance(exc, (OSError, sqlite3.Error)) or \
            database_problem(exc, path) is not None else None
        if why is not None:  # the folder or the disk cannot be written
            raise DatabaseUnavailable(_("cannot create the database {path}: {problem}").format(
                path=path, problem=why)) from exc
        problem = _open_failure(path, exc)
        if isinstance(problem, UserFacingError):
            raise DatabaseUnavailable(_("cannot create the database {path}: {problem}").format(
                path=path, problem=problem)) from exc
        raise problem from exc
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            try:
                leftover.unlink(missing_ok=True)
            except OSError:
                pass


def _sync_folder(folder: Path) -> None:
    """Make a new name in ``folder`` durable (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    head = _("The database {path} is damaged ({problem}); nothing was changed.").format(
        path=path, problem=problems[0])
    return head + " " + _restore_hint(path)


def _restore_hint(path: Path) -> str:
    """The command that restores the newest backup of ``path`` (or where none was found)."""
    try:
        newest = backup.newest_in(backup.default_dir(path), path)
    except OSError:
        newest = None
    if newest is not None:
        return _("Restore the newest backup with: python main.py restore --db "
                 "{db} --from {backup}").format(db=shlex.quote(str(path)),
                                                backup=shlex.quote(str(newest)))
    return _("No backup was found in {folder}; restore one with: python main.py "
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
