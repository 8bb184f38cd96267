"""Backups and restores on real SQLite files: checked copies, keeping N, bad backups refused
with nothing replaced, the exact ledger brought back, a damaged database refused at start."""

from __future__ import annotations

import random
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from app.core import audit
from app.core import backup as core
from app.core.operators import Operator, PermissionDenied, Role, SignInFailed
from app.core.progress import Progress
from app.core.recharge import recharge
from app.errors import Cancelled, CorruptDatabase
from app.simulator.demo_campus import create_demo_campus
from app.storage import backup as store
from app.storage import lease
from app.storage.db import close_database, open_database
from app.storage.models import Account
from tests.helpers import ledger_rows

ADMIN = Operator("admin", Role.ADMINISTRATOR)
DESK = Operator("desk", Role.CASHIER)
PASSWORD = "secret123"


@pytest.fixture
def station(tmp_path) -> Path:
    """A small demo campus with a few recharges booked; the database stays bound."""
    db_path = tmp_path / "station.db"
    create_demo_campus(db_path, buses=1, meters=3, seed=2, password=PASSWORD)
    _recharges(3)
    yield db_path
    close_database()


def _recharges(n: int, cents: int = 12_34) -> None:
    accounts = [a.id for a in Account.select().order_by(Account.id)]
    for k in range(n):
        recharge(DESK, accounts[k % len(accounts)], cents + k, "cash")


def _state(path: Path) -> dict[str, tuple[bytes, int]]:
    """The database's files (the file and its -wal; not the -shm, an index that any reader
    updates): bytes and mtime, and which files are there."""
    out = {}
    for p in sorted(path.parent.glob(path.name + "*")):
        if p.is_file() and not p.name.endswith("-shm"):
            out[p.name] = (p.read_bytes(), p.stat().st_mtime_ns)
    return out


# -- making backups ----------------------------------------------------------------------------
def test_backup_makes_a_checked_copy(station, tmp_path):
    result = core.backup(ADMIN, station, to_dir=tmp_path / "bk")
    assert result.path.parent == tmp_path / "bk"
    assert store.backup_time(station, result.path) is not None
    assert result.path.stat().st_size == result.size > 0
    assert result.problems == [] and result.removed == []
    assert store.check_file(result.path) == []
    assert ledger_rows(result.path) == ledger_rows(station)
    assert not result.changes.campus and result.changes.audit
    last = audit.entries(ADMIN, audit.AuditFilter(kind="backup"))[0]
    assert last.target == result.path.name and '"keep":30' in last.after
    assert not list((tmp_path / "bk").glob(".*"))  # no temporary file left


def test_default_folder_is_beside_the_database(station):
    result = core.backup(ADMIN, station)
    assert result.path.parent == station.parent / "backups"
    assert core.newest_backup(station) == result.path


def test_keep_removes_only_the_oldest_of_its_own_pattern(station, tmp_path):
    folder = tmp_path / "bk"
    first = core.backup(ADMIN, station, to_dir=folder).path
    old = [folder / f"station-2020010{d}-030000.db" for d in (1, 2, 3)]
    others = [folder / "other-20200101-030000.db", folder / "notes.txt",
              folder / "station-20200101-030000.db.bak", folder / "station.db"]
    for p in old + others:
        shutil.copy(first, p)
    second = core.backup(ADMIN, station, to_dir=folder, keep=2)
    third = core.backup(ADMIN, station, to_dir=folder, keep=2)  # likely the same second
    assert third.path != second.path
    remaining = store.backup_files(folder, station)
    assert remaining == [second.path, third.path]
    assert second.removed == old
    assert third.removed == [first]
    assert all(p.exists() for p in others)


def test_a_cancelled_backup_leaves_nothing(station, tmp_path):
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        core.backup(ADMIN, station, to_dir=tmp_path / "bk", progress=progress)
    assert list((tmp_path / "bk").iterdir()) == []


def test_a_cashier_may_not_make_backups(station, tmp_path):
    with pytest.raises(PermissionDenied):
        core.backup(DESK, station, to_dir=tmp_path / "bk")
    assert not (tmp_path / "bk").exists()


# -- bad backups -------------------------------------------------------------------------------
def _truncated(good: Path, bad: Path) -> None:
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])


def _random(good: Path, bad: Path) -> None:
    bad.write_bytes(random.Random(1).randbytes(good.stat().st_size))


def _unbalanced(good: Path, bad: Path) -> None:
    shutil.copy(good, bad)
    conn = sqlite3.connect(bad)
    conn.execute("DROP TRIGGER ledger_entry_no_update")
    conn.execute("UPDATE ledger_entry SET amount_cents = amount_cents + 1 "
                 "WHERE id = (SELECT MAX(id) FROM ledger_entry)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("spoil", [_truncated, _random, _unbalanced])
def test_a_bad_backup_is_refused_with_nothing_replaced(station, tmp_path, spoil):
    good = core.backup(ADMIN, station, to_dir=tmp_path / "bk").path
    bad = tmp_path / "bad.db"
    spoil(good, bad)
    problems = store.check_file(bad)
    assert problems
    if spoil is _unbalanced:
        assert any("unbalanced" in p for p in problems)
        assert any("sum to 1 cents" in p for p in problems)
    before = _state(station)
    with pytest.raises(core.BackupRefused, match="nothing was replaced"):
        core.restore(None, station, bad)
    assert _state(station) == before
    assert not list(tmp_path.glob("station.db.replaced-*"))


def test_check_file_reports_a_newer_schema_and_a_foreign_file(tmp_path, station):
    good = core.backup(ADMIN, station, to_dir=tmp_path / "bk").path
    assert any("newer" in p for p in store.check_file(good, schema_version=1))
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).close()
    assert store.check_file(foreign) and store.check_file(tmp_path / "missing.db")


# -- restoring ---------------------------------------------------------------------------------
def test_restore_brings_back_the_exact_ledger_and_keeps_the_replaced_file(station, tmp_path):
    assert lease.acquire("serve")[0]  # the backup is made while the buses are polled
    good = core.backup(ADMIN, station, to_dir=tmp_path / "bk").path
    lease.release()
    at_backup = ledger_rows(good)
    _recharges(4, cents=5_00)
    later = ledger_rows(station)
    assert later != at_backup
    result = core.restore(None, station, good)
    assert ledger_rows(station) == at_backup
    assert result.replaced_path is not None and result.replaced_path.exists()
    assert result.replaced_path.name.startswith("station.db.replaced-")
    assert ledger_rows(result.replaced_path) == later
    assert not Path(f"{station}-wal").exists() or store.check_file(station) == []
    # the restore is in the restored database's audit log, and the chain is whole
    entry = audit.entries(ADMIN, audit.AuditFilter(kind="restore"))[0]
    assert entry.operator.startswith("os:") and result.replaced_path.name in entry.before
    assert audit.verify().ok
    assert lease.holder() is None  # the backup's lease named a process of its time


def test_restore_needs_an_administrator_signed_in_against_the_backup(station, tmp_path):
    good = core.backup(ADMIN, station, to_dir=tmp_path / "bk").path
    with pytest.raises(SignInFailed):
        core.sign_in_for_restore(good, "admin", "wrong password")
    cashier = core.sign_in_for_restore(good, "cashier", PASSWORD)
    before = ledger_rows(station)
    with pytest.raises(PermissionDenied):
        core.restore(cashier, station, good)
    assert ledger_rows(station) == before
    assert not list(tmp_path.glob("station.db.replaced-*"))
    denied = audit.entries(ADMIN, audit.AuditFilter(kind="denied"))[0]
    assert denied.operator == "cashier" and denied.target == "restore"
    admin = core.sign_in_for_restore(good, "admin", PASSWORD)
    core.restore(admin, station, good)
    assert audit.entries(ADMIN, audit.AuditFilter(kind="restore"))[0].operator == "admin"


def test_restore_is_refused_while_the_buses_are_polled(station, tmp_path):
    good = core.backup(ADMIN, station, to_dir=tmp_path / "bk").path
    assert lease.acquire("serve")[0]
    before = _state(station)
    with pytest.raises(core.BackupRefused, match=r"serve \(pid \d+"):
        core.restore(None, station, good)
    assert _state(station) == before


def test_restore_is_refused_while_another_connection_has_the_database(station, tmp_path):
    good = core.backup(ADMIN, station, to_dir=tmp_path / "bk").path
    other = sqlite3.connect(station)
    other.execute("SELECT count(*) FROM meta").fetchone()
    try:
        with pytest.raises(core.BackupRefused, match="open in another program"):
            core.restore(None, station, good)
    finally:
        other.close()
    assert not list(tmp_path.glob("station.db.replaced-*"))


def test_declining_the_confirmation_replaces_nothing(station, tmp_path):
    good = core.backup(ADMIN, station, to_dir=tmp_path / "bk").path
    before = _state(station)
    with pytest.raises(core.BackupRefused):
        core.restore(None, station, good, confirm=lambda db, b: False)
    assert _state(station) == before


# -- a damaged database at start ---------------------------------------------------------------
def _smash_middle(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 2 // 4096 * 4096)
        f.write(random.Random(5).randbytes(16384))


def _smash_header(path: Path) -> None:
    with open(path, "r+b") as f:
        f.write(random.Random(5).randbytes(100))


@pytest.mark.parametrize("smash", [_smash_middle, _smash_header])
def test_a_damaged_database_is_refused_naming_the_newest_backup(station, tmp_path, smash):
    good = core.backup(ADMIN, station, to_dir=tmp_path / "bk").path
    site = tmp_path / "site"
    (site / "backups").mkdir(parents=True)
    damaged = site / "campus.db"
    shutil.copy(good, damaged)
    shutil.copy(good, site / "backups" / "campus-20250101-030000.db")
    newest = site / "backups" / "campus-20260101-030000.db"
    shutil.copy(good, newest)
    smash(damaged)
    before = damaged.read_bytes()
    with pytest.raises(CorruptDatabase) as caught:
        open_database(damaged, create=False)
    text = str(caught.value)
    assert "damaged" in text and "nothing was changed" in text
    assert f"python main.py restore --db {damaged} --from {newest}" in text
    assert damaged.read_bytes() == before
    # the newest backup does restore it
    core.restore(None, damaged, newest)
    assert ledger_rows(damaged) == ledger_rows(good)


def test_a_damaged_database_without_backups_says_where_they_were_looked_for(tmp_path, station):
    good = core.backup(ADMIN, station, to_dir=tmp_path / "bk").path
    damaged = tmp_path / "alone" / "campus.db"
    damaged.parent.mkdir()
    shutil.copy(good, damaged)
    _smash_header(damaged)
    with pytest.raises(CorruptDatabase, match=r"No backup was found in .*alone/backups"):
        open_database(damaged)


# -- the daily backup --------------------------------------------------------------------------
def test_daily_backup_is_due_once_a_day_after_its_hour():
    due = core.daily_backup_due
    now = datetime(2026, 5, 4, 3, 0, 30)
    assert due(now, None, 3)
    assert not due(now.replace(hour=2, minute=59), None, 3)
    assert due(now, datetime(2026, 5, 3, 3, 0, 5), 3)  # yesterday's
    assert due(now, datetime(2026, 5, 4, 1, 0, 0), 3)  # today, but before the hour
    assert not due(now, datetime(2026, 5, 4, 3, 0, 10), 3)  # done
    assert not due(datetime(2026, 5, 4, 23, 0), datetime(2026, 5, 4, 9, 0), 3)


def test_daily_backup_runs_as_the_system_and_only_when_due(station):
    assert core.daily_backup_needed(station, now=datetime.now().replace(hour=23))
    result = core.daily_backup(station)
    assert result.path.parent == station.parent / "backups"
    assert audit.entries(ADMIN, audit.AuditFilter(kind="backup"))[0].operator == "daily backup"
    stamp = store.backup_time(station, result.path)
    assert not core.daily_backup_due(stamp.replace(hour=23), stamp, 0)


def test_restore_where_the_database_is_missing(station, tmp_path):
    good = core.backup(ADMIN, station, to_dir=tmp_path / "bk").path
    fresh = tmp_path / "new" / "station.db"
    result = core.restore(None, fresh, good)
    assert result.replaced_path is None
    assert ledger_rows(fresh) == ledger_rows(good)
