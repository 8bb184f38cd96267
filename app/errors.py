"""One error hierarchy for the whole program.

What the user sees is decided by the class: a ``UserFacingError`` carries a message written for
the operator (already translated); anything else is a defect, logged with its traceback and shown
as a short generic message. Drivers and storage raise their own subclasses so callers can
react (retry a bus, mark a meter offline) without parsing strings.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path


class VoltKeeperError(Exception):
    """Base of every error VoltKeeper raises on purpose."""


class UserFacingError(VoltKeeperError):
    """An error whose message is meant for the operator as it stands."""


class Cancelled(VoltKeeperError):
    """A long operation was cancelled by the user."""


class ConfigError(UserFacingError):
    """A configuration or data file is wrong; the message names the file and the key."""


class DriverError(VoltKeeperError):
    """The world outside (a bus, a meter, a modem) did not do what was asked."""


class LinkDown(DriverError):
    """The link itself is unusable: serial port missing, gateway refusing connections."""


class NoResponse(DriverError):
    """The meter stayed silent until the timeout."""


class CrcError(DriverError):
    """Bytes came back but the frame was corrupt (bad CRC, truncated, wrong length)."""


class MeterException(DriverError):
    """The meter answered with a Modbus exception response."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class NotSupported(UserFacingError):
    """The meter's profile has no such point or control (e.g. tripping a metering-only meter)."""


class StorageError(VoltKeeperError):
    """The database refused or failed an operation."""


class CorruptDatabase(UserFacingError):
    """The database file is damaged (refused at start, nothing changed); the message names the
    command that restores the newest backup."""


class MissingDatabase(UserFacingError):
    """There is no database at the path given (a typo, or a station not set up yet)."""


class UsageError(UserFacingError):
    """A command was given without what it needs (the command line exits with 2, as for a wrong
    flag)."""


class DatabaseUnavailable(UserFacingError, StorageError):
    """The database cannot be used as it is (an empty file, not VoltKeeper's, read-only, a full
    disk, a folder, a schema newer than the program, ...); the message says what is wrong and
    what to do. Nothing was changed by the step that failed."""


class EmptyDatabase(DatabaseUnavailable):
    """The database file is empty (0 bytes): refused, never silently made a new station."""


# -- what a failure of SQLite or the file system means for the operator ------------------------
#: SQLite's primary result codes (``sqlite_errorcode & 0xFF``).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB = 26
#: The codes that say what happened to the database file or its disk.
_FILE_CODES = (_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR,
               _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB)
#: Less room than this on the database's disk is a full disk (a WAL and its index need more).
_FULL_BELOW_BYTES = 256 * 1024
#: When the code is not known (an error raised without one), the text tells.
_SQLITE_TEXTS = (("database or disk is full", _SQLITE_FULL), ("readonly", _SQLITE_READONLY),
                 ("disk i/o error", _SQLITE_IOERR), ("unable to open", _SQLITE_CANTOPEN),
                 ("database is locked", _SQLITE_BUSY), ("malformed", _SQLITE_CORRUPT),
                 ("not a database", _SQLITE_NOTADB))


def sqlite_error_in(exc: BaseException) -> sqlite3.Error | None:
    """The SQLite error behind ``exc``: itself, or the one peewee (or any wrapper) carries in
    its arguments, cause or context. One that says what happened to the file (full,
    read-only, I/O, ...) wins over a follow-up ("cannot rollback - no transaction is active"
    after SQLite rolled a full disk's transaction back itself)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    found: list[sqlite3.Error] = []
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, sqlite3.Error):
            found.append(e)
        todo.extend(a for a in (*e.args, e.__cause__, e.__context__)
                    if isinstance(a, BaseException))
    telling = [e for e in found if _sqlite_code(e) in _FILE_CODES]
    return (telling or found or [None])[0]


def _sqlite_code(err: sqlite3.Error) -> int | None:
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    text = str(err).lower()
    return next((c for t, c in _SQLITE_TEXTS if t in text), None)


def disk_full(path: Path | str) -> bool:
    """True when the disk holding ``path`` has (almost) no room left."""
    try:
        st = os.statvfs(Path(path).parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _FULL_BELOW_BYTES


def read_only_reason(path: Path | str) -> str | None:
    """Why the database at ``path`` (and the -wal and -shm files SQLite keeps beside it)
    cannot be written, as far as the file system tells; None when it can be."""
    from app.i18n import _

    path = Path(path)
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return _("the disk it is on is mounted read-only")
    except OSError:
        pass
    if path.exists() and not os.access(path, os.W_OK):
        return _("the file is read-only")
    sides = [Path(f"{path}{side}") for side in ("-wal", "-shm")]
    for p in sides:
        if p.exists() and not os.access(p, os.W_OK):
            return _("{file} beside it is read-only").format(file=p)
    if not os.access(folder, os.W_OK) and not all(p.exists() for p in sides):
        return _("its folder {folder} is read-only (SQLite writes its -wal and -shm files "
                 "there)").format(folder=folder)
    return None


def read_only_problem(path: Path | str, why: str) -> DatabaseUnavailable:
    from app.i18n import _

    return DatabaseUnavailable(_(
        "The database {path} cannot be written: {why}. Give the user running VoltKeeper "
        "write access to the file and its folder, or copy it to a place that can be "
        "written.").format(path=path, why=why))


def database_problem(exc: BaseException, path: Path | str | None) -> DatabaseUnavailable | None:
    """What a failure of the database at ``path`` means, in one message that says what to do;
    None when ``exc`` is no failure of the database file or its disk (a defect, a refusal)."""
    from app.i18n import _

    if isinstance(exc, DatabaseUnavailable):
        return exc
    err = sqlite_error_in(exc)
    if err is None:
        return None
    code = _sqlite_code(err)
    where = Path(path) if path is not None else None
    shown = str(where) if where is not None else _("(the database)")
    if code == _SQLITE_IOERR and where is not None and disk_full(where):
        code = _SQLITE_FULL  # SQLite could not grow its files: the disk has no room left
    if code == _SQLITE_FULL:
        return DatabaseUnavailable(_(
            "The disk holding the database {path} is full: what was being written was not "
            "stored. Free space on that disk (old backups or logs, for example) and try "
            "again.").format(path=shown))
    if code in (_SQLITE_READONLY, _SQLITE_PERM) or (
            code == _SQLITE_CANTOPEN and where is not None and where.is_file()
            and os.access(where, os.R_OK) and not os.access(where.parent, os.W_OK)):
        why = read_only_reason(where) if where is not None else None
        return read_only_problem(shown, why or _("the system refuses writing to it"))
    if code == _SQLITE_CANTOPEN:
        if where is not None and where.is_dir():
            return DatabaseUnavailable(_("{path} is a folder, not a database file: give the "
                                         "database file's path with --db").format(path=shown))
        if where is not None and where.exists() and not os.access(where, os.R_OK):
            return DatabaseUnavailable(_(
                "The database {path} cannot be read: permission denied. Give the user running "
                "VoltKeeper access to it.").format(path=shown))
        if where is not None and not where.parent.is_dir():
            return DatabaseUnavailable(_("The folder {folder} does not exist: check the path "
                                         "given with --db").format(folder=where.parent))
        return DatabaseUnavailable(_("SQLite cannot open the database {path} ({error}): check "
                                     "the path and its permissions").format(path=shown,
                                                                            error=err))
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return DatabaseUnavailable(_(
            "The database {path} is busy: another program (a window, serve or an import) held "
            "it for writing too long. Nothing was changed; try again in a moment.").format(
            path=shown))
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return DatabaseUnavailable(_(
            "The database {path} is damaged ({error}). Stop every VoltKeeper program using it; "
            "then python main.py status --db {path} names the backup to restore.").format(
            path=shown, error=err))
    if code == _SQLITE_IOERR:
        return DatabaseUnavailable(_(
            "Reading or writing the database {path} failed ({error}): its disk may be full, "
            "gone or failing. Check the disk and try again.").format(path=shown, error=err))
    return None


def file_problem(exc: OSError) -> UserFacingError | None:
    """A file the program had to write or read (a log, a receipt, a backup) and could not, in
    one message; None for other failures of the system."""
    from app.i18n import _

    reasons = {
        errno.ENOSPC: _("the disk is full: free space on it and try again"),
        errno.EDQUOT: _("the disk quota is used up: free space and try again"),
        errno.EROFS: _("the disk is mounted read-only"),
        errno.EACCES: _("permission denied: give the user running VoltKeeper access"),
        errno.EPERM: _("permission denied: give the user running VoltKeeper access"),
        errno.ENOENT: _("no such file or folder: check the path"),
        errno.EISDIR: _("it is a folder, not a file"),
        errno.ENOTDIR: _("a part of the path is not a folder: check the path"),
    }
    reason = reasons.get(exc.errno or 0)
    if reason is None:
        return None
    name = exc.filename if exc.filename is not None else _("a file")
    return UserFacingError(_("cannot use {file}: {reason}").format(file=name, reason=reason))


class ModemError(DriverError):
    """The GSM modem refused or failed a command: ``kind`` is ``"CMS"`` (``+CMS ERROR``, a
    message service error), ``"CME"`` (``+CME ERROR``, an equipment error) or ``None`` (a plain
    ``ERROR``, or no answer); ``code`` the number it gave, if any."""

    def __init__(self, message: str, code: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.kind = kind


class ModemTimeout(ModemError):
    """The modem did not answer in time (no prompt, no confirmation, no final result)."""
