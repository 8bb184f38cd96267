"""Backup files at the storage level, with plain sqlite3: an online copy, the checks of a file,
where a database's backups are and what they are called.

``copy_online`` uses SQLite's online backup in steps. The source connection holds one read
transaction for the whole copy: in WAL mode that fixes a snapshot (the copy is that one
consistent state) without blocking the writer, who goes on appending to the WAL (which is only
not checkpointed past the snapshot until the copy is done). Without it, every commit of the
reading service (four a second) would restart the copy from the first page.

Files to be checked are opened read-only (``mode=ro``): checking never changes them. Any
SQLite error of a file being checked (not a database, truncated, malformed) is reported as a
problem, never raised.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from app.errors import StorageError
from app.i18n import _
from app.storage.lease import POLLING, LeaseInfo
from app.storage.migrations import SCHEMA_VERSION

#: The folder beside the database where backups go unless the station says otherwise.
DEFAULT_DIR_NAME = "backups"
#: Pages copied per step (4 MB at SQLite's default 4 KiB pages).
STEP_PAGES = 1024
#: Problems listed at most per check (integrity_check can report thousands).
MAX_PROBLEMS = 10
#: SQLite primary result codes that mean a damaged file (CORRUPT, NOTADB, IOERR).
DAMAGE_CODES = {11, 26, 10}

ProgressCallback = Callable[[int, int], None]


# -- names -------------------------------------------------------------------------------------
def default_dir(db_path: Path | str) -> Path:
    return Path(db_path).parent / DEFAULT_DIR_NAME


def _pattern(db_path: Path | str) -> re.Pattern[str]:
    stem = re.escape(Path(db_path).stem)
    return re.compile(rf"^{stem}-(\d{{8}})-(\d{{6}})(?:-(\d+))?\.db$")


def backup_name(db_path: Path | str, when: datetime, n: int = 1) -> str:
    """``<db stem>-YYYYMMDD-HHMMSS.db`` (local time), ``-N`` added for the N-th of a second."""
    suffix = "" if n <= 1 else f"-{n}"
    return f"{Path(db_path).stem}-{when:%Y%m%d-%H%M%S}{suffix}.db"


def backup_time(db_path: Path | str, file: Path | str) -> datetime | None:
    """When a backup of this database was made (from its name), None for any other file."""
    m = _pattern(db_path).match(Path(file).name)
    if m is None:
        return None
    try:
        return datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
    except ValueError:
        return None


def backup_files(folder: Path | str, db_path: Path | str) -> list[Path]:
    """This database's backups in ``folder``, oldest first (other files are not listed)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = _pattern(db_path)
    found = []
    for p in folder.iterdir():
        m = pattern.match(p.name)
        if m is not None and backup_time(db_path, p) is not None and p.is_file():
            found.append(((m.group(1), m.group(2), int(m.group(3) or 1)), p))
    return [p for _key, p in sorted(found)]


def newest_in(folder: Path | str, db_path: Path | str) -> Path | None:
    files = backup_files(folder, db_path)
    return files[-1] if files else None


# -- copying -----------------------------------------------------------------------------------
def _uri(path: Path | str, mode: str) -> str:
    return f"{Path(path).resolve().as_uri()}?mode={mode}"


def connect_ro(path: Path | str, timeout: float = 10.0) -> sqlite3.Connection:
    """A read-only connection (never creates or changes the file)."""
    return sqlite3.connect(_uri(path, "ro"), uri=True, timeout=timeout, isolation_level=None)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def copy_online(src_path: Path | str, dest_path: Path | str,
                progress_cb: ProgressCallback | None = None, *,
                pages: int = STEP_PAGES) -> int:
    """Copy the database at ``src_path`` (which may be written meanwhile) to ``dest_path``:
    into a temporary name beside it, then renamed. The copy is a single file (rollback journal
    mode). ``progress_cb(done_pages, total_pages)`` is called after each step; an exception it
    raises (Cancelled) stops the copy and removes the temporary file. Returns the copy's size.
    Raises StorageError when SQLite or the file system fails."""
    src, dest = Path(src_path), Path(dest_path)
    if not src.is_file():
        raise StorageError(_("no database at {path}").format(path=src))
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    source = target = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        source = connect_ro(src)
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fixes the snapshot
        Path(tmp).touch(mode=0o600)  # a copy is as private as the database
        target = sqlite3.connect(tmp, isolation_level=None)

        def _step(_status: int, remaining: int, total: int) -> None:
            if progress_cb is not None:
                progress_cb(total - remaining, total)

        source.backup(target, pages=pages, progress=_step)
        source.execute("COMMIT")
        target.execute("PRAGMA journal_mode=DELETE")  # a self-contained file
        target.close()
        target = None
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
        return dest.stat().st_size
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(_("copying {src} to {dest} failed: {error}").format(
            src=src, dest=dest, error=exc)) from exc
    finally:
        for conn in (target, source):
            if conn is not None:
                conn.close()
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}-journal").unlink(missing_ok=True)


# -- checking ----------------------------------------------------------------------------------
def _sqlite_problem(exc: sqlite3.Error) -> str:
    return _("SQLite cannot read it: {error}").format(error=exc)


def check_file(path: Path | str, *, schema_version: int = SCHEMA_VERSION) -> list[str]:
    """What is wrong with the database file at ``path`` as a backup: an integrity check, a
    schema no newer than this program's, and the ledger (every booking balanced, all entries
    together zero). An empty list means it is sound."""
    path = Path(path)
    if not path.is_file():
        return [_("{path} is not a file").format(path=path)]
    problems: list[str] = []
    try:
        conn = connect_ro(path)
    except sqlite3.Error as exc:
        return [_sqlite_problem(exc)]
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA integrity_check({MAX_PROBLEMS})")]
        if rows != ["ok"]:
            return [_("integrity check: {detail}").format(detail=r) for r in rows]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = None
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row and str(row[0]).isdigit() else None
        if version is None:
            return [_("it is not a VoltKeeper database (no schema version)")]
        if version > schema_version:
            problems.append(_("its schema version {version} is newer than this program's "
                              "({mine})").format(version=version, mine=schema_version))
        if "ledger_entry" in tables:
            problems += _ledger_problems(conn)
    except sqlite3.Error as exc:
        problems.append(_sqlite_problem(exc))
    finally:
        conn.close()
    return problems


def _ledger_problems(conn: sqlite3.Connection) -> list[str]:
    problems = []
    bad = [r[0] for r in conn.execute(
        "SELECT txn_id FROM ledger_entry GROUP BY txn_id HAVING SUM(amount_cents) != 0 "
        f"ORDER BY txn_id LIMIT {MAX_PROBLEMS + 1}")]
    if bad:
        shown = ", ".join(str(t) for t in bad[:MAX_PROBLEMS])
        more = "…" if len(bad) > MAX_PROBLEMS else ""
        problems.append(_("the ledger has unbalanced bookings: {ids}{more}").format(
            ids=shown, more=more))
    total = conn.execute("SELECT COALESCE(SUM(amount_cents), 0) FROM ledger_entry").fetchone()[0]
    if total != 0:
        problems.append(_("the ledger's entries sum to {cents} cents, not zero").format(
            cents=total))
    return problems


def quick_check(path: Path | str) -> list[str]:
    """Start-up: ``PRAGMA quick_check`` on an existing database (read-write, as the program
    opens it, so a WAL left by a crash is recovered, not taken for damage). Only damage is
    reported: a busy or unreadable (permissions) file is left for opening to report."""
    try:
        conn = sqlite3.connect(_uri(path, "rw"), uri=True, timeout=10, isolation_level=None)
    except sqlite3.Error:
        return []
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA quick_check({MAX_PROBLEMS})")]
        return [] if rows == ["ok"] else [str(r) for r in rows]
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in DAMAGE_CODES:
            return [str(exc)]
        text = str(exc).lower()
        return [str(exc)] if "malformed" in text or "not a database" in text else []
    finally:
        conn.close()


# -- reading a file that is not bound ----------------------------------------------------------
def read_lease(path: Path | str, name: str = POLLING, now: float | None = None
               ) -> LeaseInfo | None:
    """The live holder of the polling lease in the database file at ``path``; None when
    nobody holds it or the file cannot be read."""
    now = time.time() if now is None else now
    try:
        conn = connect_ro(path, timeout=5)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT holder, pid, host, acquired_at, expires_at FROM lease "
                           "WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if row is None or row[4] <= now:
        return None
    return LeaseInfo(*row)


def read_meta(path: Path | str, key: str) -> str | None:
    """A ``meta`` value of the database file at ``path``; None when absent or unreadable."""
    try:
        conn = connect_ro(path, timeout=5)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return row[0] if row else None


def clear_leases(path: Path | str) -> None:
    """Forget the leases in a restored copy: they name processes of the backup's time."""
    try:
        conn = sqlite3.connect(_uri(path, "rw"), uri=True, timeout=10, isolation_level=None)
        try:
            conn.execute("DELETE FROM lease")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(str(exc)) from exc


def read_operator(path: Path | str, name: str) -> tuple[str, str, bool] | None:
    """(role, password hash, disabled) of operator ``name`` in the file at ``path``.
    Raises StorageError when the file cannot be read."""
    try:
        conn = connect_ro(path)
        try:
            row = conn.execute("SELECT role, password_hash, disabled FROM operator "
                               "WHERE name = ?", (name,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(str(exc)) from exc
    return None if row is None else (row[0], row[1], bool(row[2]))


def leave_wal(path: Path | str, timeout: float = 2.0) -> str:
    """Before a database file is put aside: switch it out of WAL mode, which SQLite allows only
    when no other connection has it open, and which folds the WAL into the file. Returns
    ``"ok"``, ``"busy"`` (another program has it open) or ``"unreadable"`` (damaged)."""
    try:
        conn = sqlite3.connect(_uri(path, "rw"), uri=True, timeout=timeout,
                               isolation_level=None)
    except sqlite3.Error:
        return "unreadable"
    try:
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        return "ok" if str(mode).lower() == "delete" else "busy"
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        return "busy" if code in (5, 6) else "unreadable"  # SQLITE_BUSY, SQLITE_LOCKED
    finally:
        conn.close()


SIDE_FILES = ("-wal", "-shm", "-journal")


def move_aside(db_path: Path | str, to: Path | str) -> None:
    """Rename the database and its side files (-wal, -shm, -journal) to ``to`` (+ suffix)."""
    db_path, to = Path(db_path), Path(to)
    os.rename(db_path, to)
    for suffix in SIDE_FILES:
        side = Path(f"{db_path}{suffix}")
        if side.exists():
            os.rename(side, f"{to}{suffix}")
    _fsync_dir(db_path.parent)
