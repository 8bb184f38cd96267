"""Backups and restores of the station database, and the daily backup.

A backup is an online copy (``storage/backup.copy_online``: the reading service goes on
writing), checked before it is kept (integrity, schema, the ledger's balance), named
``<db stem>-YYYYMMDD-HHMMSS.db`` in the backup folder, which keeps the newest N of this
database's backups (other files there are never touched). A restore checks the backup before
touching anything, refuses while another process polls or has the database open, keeps the
replaced file as ``<db>.replaced-YYYYMMDD-HHMMSS`` and records itself in the restored
database's audit log. The process holding the polling lease makes one backup a day at the
station's backup hour (``ReadingService`` calls ``daily_backup``).
"""

from __future__ import annotations

import gc
import getpass
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from app.core import audit, settings
from app.core.alarms import raise_alarm
from app.core.changes import Changes
from app.core.operators import (
    Operator,
    Permission,
    PermissionDenied,
    Role,
    SignInFailed,
    check_password,
    require,
)
from app.core.progress import Progress
from app.errors import Cancelled, StorageError, UserFacingError
from app.i18n import _
from app.storage import backup as store
from app.storage.db import STATION_ID, close_database, database_path, open_database

log = logging.getLogger("voltkeeper.backup")

#: Everything a view shows may differ after a restore.
EVERYTHING = Changes(campus=True, tariffs=True, operators=True, settings=True, alarms=True)


class BackupRefused(UserFacingError):
    """A backup file failed its check, or a restore may not happen now; nothing was replaced."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    problems: list[str] = field(default_factory=list)  # the check's: empty for a kept copy
    removed: list[Path] = field(default_factory=list)  # older backups beyond ``keep``
    changes: Changes = field(default_factory=Changes)  # only the audit log


@dataclass(frozen=True)
class RestoreResult:
    replaced_path: Path | None  # where the replaced database is kept (None: there was none)
    backup_file: Path
    db_path: Path
    changes: Changes = EVERYTHING


def os_operator() -> Operator:
    """Who acts on the command line without ``--operator``: the OS user (``os:<user>``)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return Operator.system(f"os:{user}")


def backup_dir(db_path: Path | str) -> Path:
    """The station's backup folder: the setting (relative to the database's folder), or a
    folder ``backups`` beside the database."""
    configured = str(settings.get(settings.BACKUP_DIR)).strip()
    if not configured:
        return store.default_dir(db_path)
    folder = Path(configured).expanduser()
    return folder if folder.is_absolute() else Path(db_path).parent / folder


def newest_backup(db_path: Path | str) -> Path | None:
    """The newest backup of ``db_path`` in the default folder ``backups`` beside it (the
    database, and so its settings, may be unreadable)."""
    return store.newest_in(store.default_dir(db_path), db_path)


def _free_name(folder: Path, db_path: Path, now: datetime) -> Path:
    n = 1
    while True:
        candidate = folder / store.backup_name(db_path, now, n)
        if not candidate.exists():
            return candidate
        n += 1


def backup(operator: Operator, db_path: Path | str, to_dir: Path | str | None = None,
           keep: int | None = None, progress: Progress | None = None) -> BackupResult:
    """Copy the (bound, open) database at ``db_path`` into ``to_dir``, check the copy, keep
    the newest ``keep`` of its backups there. Audited; refused with the problems (and the copy
    deleted) when the copy fails its check."""
    require(operator, Permission.BACKUP)
    db_path = Path(db_path)
    folder = Path(to_dir) if to_dir is not None else backup_dir(db_path)
    keep = settings.get(settings.BACKUP_KEEP) if keep is None else keep
    if keep < 1:
        raise UserFacingError(_("keep at least one backup"))
    dest = _free_name(folder, db_path, datetime.now())
    progress = progress or Progress()
    text = _("copying {db}").format(db=db_path.name)
    try:
        size = store.copy_online(db_path, dest,
                                 lambda done, total: progress.step(done, total, text))
    except StorageError as exc:
        _record_failure(operator, dest, str(exc))
        raise UserFacingError(_("the backup failed: {error}").format(error=exc)) from exc
    progress.step(0, 0, _("checking {file}").format(file=dest.name))
    problems = store.check_file(dest)
    if problems:
        dest.unlink(missing_ok=True)
        _record_failure(operator, dest, "; ".join(problems))
        raise BackupRefused(_("the copy of {db} failed its check and was deleted: {problems}")
                            .format(db=db_path, problems="; ".join(problems)))
    removed = prune(folder, db_path, keep)
    audit.record(operator.name, "backup", target=dest.name,
                 after={"size": size, "keep": keep, "removed": [p.name for p in removed]},
                 detail=str(folder))
    log.info("backup %s (%d bytes) by %s; removed %d older", dest, size, operator.name,
             len(removed))
    return BackupResult(dest, size, [], removed)


def _record_failure(operator: Operator, dest: Path, detail: str) -> None:
    try:
        audit.record(operator.name, "backup_failed", target=dest.name, detail=detail[:2000])
    except Exception:  # the database itself may be what failed
        log.exception("could not record the failed backup in the audit log")


def prune(folder: Path | str, db_path: Path | str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups of ``db_path`` in ``folder``."""
    files = store.backup_files(folder, db_path)
    old = files[:-keep] if keep > 0 else files
    removed = []
    for p in old:
        try:
            p.unlink()
            removed.append(p)
        except OSError as exc:
            log.warning("could not remove old backup %s: %s", p, exc)
    return removed


# -- restoring ---------------------------------------------------------------------------------
def check_backup(backup_file: Path | str) -> None:
    """Refuse a backup that fails its check, listing the problems."""
    problems = store.check_file(backup_file)
    if problems:
        raise BackupRefused(_("{file} is not a usable backup; nothing was replaced: {problems}")
                            .format(file=backup_file, problems="; ".join(problems)))


def sign_in_for_restore(backup_file: Path | str, name: str, password: str) -> Operator:
    """Check ``name``'s password against the operators in the backup being restored (the
    current database may be damaged). Read-only: failures are logged here, not counted."""
    try:
        row = store.read_operator(backup_file, name.strip())
    except StorageError as exc:
        raise BackupRefused(_("{file} is not a usable backup; nothing was replaced: {error}")
                            .format(file=backup_file, error=exc)) from exc
    if row is None or row[2] or not check_password(password, row[1]):
        log.warning("restore: sign-in of %r against %s refused", name, backup_file)
        raise SignInFailed(_("wrong name or password (checked against the backup)"))
    return Operator(name.strip(), Role(row[0]))


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _aside_name(db_path: Path) -> Path:
    base = db_path.with_name(f"{db_path.name}.replaced-{_stamp()}")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def restore(operator: Operator | None, db_path: Path | str, backup_file: Path | str, *,
            confirm: Callable[[Path, Path], bool] | None = None,
            other_station: bool = False) -> RestoreResult:
    """Replace the database at ``db_path`` with ``backup_file``, which is checked first.
    ``operator``: an administrator signed in against the backup (``sign_in_for_restore``), or
    None for the OS user. ``confirm(db, backup)`` is asked once everything is checked; False
    leaves everything as it was. Leaves the restored database bound in this process."""
    db_path, backup_file = Path(db_path), Path(backup_file)
    if db_path.resolve() == backup_file.resolve():
        raise BackupRefused(_("{file} is the database itself").format(file=backup_file))
    check_backup(backup_file)
    mine = store.read_meta(db_path, STATION_ID) if db_path.exists() else None
    theirs = store.read_meta(backup_file, STATION_ID)
    if mine and theirs and mine != theirs and not other_station:
        raise BackupRefused(_("{file} is a backup of another station's database, not of {db}; "
                              "nothing was replaced (restore it anyway with --other-station)")
                            .format(file=backup_file.name, db=db_path))
    if operator is not None and not operator.can(Permission.RESTORE):
        if database_path() is not None:
            require(operator, Permission.RESTORE)  # recorded in the database bound here
        log.warning("restore refused: %s (%s) may not restore", operator.name, operator.role)
        raise PermissionDenied(operator, Permission.RESTORE)
    acting = operator or os_operator()
    holder = store.read_lease(db_path) if db_path.exists() else None
    if holder is not None:
        raise BackupRefused(_("{holder} polls {db}; stop it first (nothing was replaced)")
                            .format(holder=holder.describe(), db=db_path))
    if confirm is not None and not confirm(db_path, backup_file):
        raise BackupRefused(_("not restored; nothing was replaced"))
    bound = database_path()
    if bound is not None and bound.resolve() == db_path.resolve():
        close_database()  # this thread's own connection would keep the old file open
    gc.collect()  # connections of this process's finished threads close when collected
    incoming = db_path.with_name(f".{db_path.name}.restoring")
    try:
        store.copy_online(backup_file, incoming)
        store.clear_leases(incoming)
    except StorageError as exc:
        raise UserFacingError(_("the restore failed, nothing was replaced: {error}")
                              .format(error=exc)) from exc
    replaced = None
    try:
        if db_path.exists():
            if store.leave_wal(db_path) == "busy":
                raise BackupRefused(_("{db} is open in another program (a window, serve or a "
                                      "command); close it first (nothing was replaced)")
                                    .format(db=db_path))
            replaced = _aside_name(db_path)
            store.move_aside(db_path, replaced)
        os.replace(incoming, db_path)
    finally:
        incoming.unlink(missing_ok=True)
    try:
        open_database(db_path, create=False)
        audit.record(acting.name, "restore", target=db_path.name,
                     before={"replaced": replaced.name if replaced else None},
                     after={"from": str(backup_file)}, detail=str(backup_file))
    except Exception:
        log.exception("the restored database did not open; putting the replaced one back")
        close_database()
        if replaced is not None:
            for suffix in store.SIDE_FILES:  # the restored copy's, not to be mixed with it
                Path(f"{db_path}{suffix}").unlink(missing_ok=True)
            store.move_aside(replaced, db_path)
        raise
    log.info("restored %s from %s by %s; replaced file kept as %s", db_path, backup_file,
             acting.name, replaced)
    return RestoreResult(replaced, backup_file, db_path)


# -- the daily backup --------------------------------------------------------------------------
#: After a failed daily backup, the reading service waits this long before trying again.
RETRY_AFTER = timedelta(hours=1)


def daily_backup_due(now: datetime, last: datetime | None, hour: int) -> bool:
    """Due once today's backup hour has come and no backup was made since then."""
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if now < at:
        return False
    return last is None or last < at


def last_backup_time(db_path: Path | str, folder: Path) -> datetime | None:
    files = store.backup_files(folder, db_path)
    return store.backup_time(db_path, files[-1]) if files else None


def daily_backup_needed(db_path: Path | str, now: datetime | None = None) -> bool:
    """Whether the daily backup of the bound database at ``db_path`` is due now."""
    now = now or datetime.now()
    hour = settings.get(settings.BACKUP_HOUR)
    return daily_backup_due(now, last_backup_time(db_path, backup_dir(db_path)), hour)


def daily_backup(db_path: Path | str, progress: Progress | None = None) -> BackupResult:
    """The daily backup (as the system); a failure is logged and raises a ``backup_failed``
    alarm, then raised again."""
    try:
        result = backup(Operator.system("daily backup"), db_path, progress=progress)
    except Cancelled:
        raise
    except Exception as exc:
        log.exception("daily backup of %s failed", db_path)
        try:
            raise_alarm("backup_failed", 2, {"db": Path(db_path).name, "error": str(exc)})
        except Exception:
            log.exception("could not raise the backup alarm")
        raise
    log.info("daily backup of %s: %s (%d bytes)", db_path, result.path, result.size)
    return result
