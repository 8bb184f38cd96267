"""Schema versions. Version N's step upgrades a database of version N-1; never edit a shipped
step, add a new one. A database newer than this program is refused (not silently used)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from peewee import SqliteDatabase

from app.errors import StorageError
from app.storage.models import (
    ALL_MODELS,
    CAPABILITY_MODELS,
    COMMISSIONING_MODELS,
    CONTROL_MODELS,
    LEDGER_MODELS,
    OPERATOR_MODELS,
    PORTAL_MODELS,
    REPORT_MODELS,
    Meta,
)

log = logging.getLogger("voltkeeper.storage")


def _v1(db: SqliteDatabase) -> None:
    """First release: campus tree, buses, meters, readings, energy, statistics, lease."""
    db.create_tables(ALL_MODELS)


_APPEND_ONLY = ("ledger_txn", "ledger_entry")


def _v2(db: SqliteDatabase) -> None:
    """Prepaid accounts, tariffs, the double-entry ledger (append-only: triggers refuse any
    UPDATE or DELETE of a booking), gapless counters, the durable outbox, billing state."""
    db.create_tables(LEDGER_MODELS)
    for table in _APPEND_ONLY:
        _append_only(db, table, "the ledger is append-only")


def _append_only(db: SqliteDatabase, table: str, message: str) -> None:
    """Triggers that refuse any UPDATE or DELETE of ``table``'s rows."""
    for op in ("UPDATE", "DELETE"):
        db.execute_sql(
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END")


def _v3(db: SqliteDatabase) -> None:
    """Operators with roles, the hash-chained audit log (append-only like the ledger), station
    settings."""
    db.create_tables(OPERATOR_MODELS)
    _append_only(db, "audit_entry", "the audit log is append-only")


def _v4(db: SqliteDatabase) -> None:
    """What each meter lacks and the bad values it sent; the polling threads' states."""
    db.create_tables(CAPABILITY_MODELS)


def _v5(db: SqliteDatabase) -> None:
    """Commands for meters carry a MAC (core/commands.py); the process that upgrades signs the
    rows already queued (``upgraded_from`` tells it, never a mark in the database)."""
    columns = {c.name for c in db.get_columns("outbox")}
    if "mac" not in columns:
        db.execute_sql("ALTER TABLE outbox ADD COLUMN mac VARCHAR(255) NOT NULL DEFAULT ''")


def _v6(db: SqliteDatabase) -> None:
    """Alarms of a bus (bus_down), and acknowledging an alarm with a comment."""
    columns = {c.name for c in db.get_columns("alarm")}
    for name, sql in (("bus_id", "INTEGER REFERENCES bus (id) ON DELETE CASCADE"),
                      ("acknowledged_by", "VARCHAR(255)"), ("acknowledged_at", "REAL"),
                      ("ack_comment", "TEXT NOT NULL DEFAULT ''")):
        if name not in columns:
            db.execute_sql(f"ALTER TABLE alarm ADD COLUMN {name} {sql}")


def _v7(db: SqliteDatabase) -> None:
    """Automatic control (room power limits, allowed appliances, why a relay is held open,
    schedules, limiting plans) and the SMS outbox. A meter the station tripped before holds
    it for a reason now: a station-money account's meter for arrears (billing closed those when
    money came), any other for an operator (nobody closed those but an operator)."""
    db.create_tables(CONTROL_MODELS)
    if "previous" not in {c.name for c in db.get_columns("outbox")}:
        db.execute_sql("ALTER TABLE outbox ADD COLUMN previous TEXT NOT NULL DEFAULT ''")
    now = "CAST(strftime('%s','now') AS REAL)"
    db.execute_sql(
        "INSERT INTO relay_hold (meter_id, reason, source, since, overridden_by, detail) "
        "SELECT DISTINCT r.meter_id, "
        "CASE WHEN a.mode = 'station' THEN 'arrears' ELSE 'operator' END, "
        f"CASE WHEN a.mode = 'station' THEN '' ELSE 'schema 7' END, {now}, '', "
        "'tripped before schema 7' FROM latest_reading r JOIN meter m ON m.id = r.meter_id "
        "LEFT JOIN account a ON a.node_id = m.node_id AND a.closed_at IS NULL "
        "WHERE r.control_mode = 'forced_trip'")


def _v8(db: SqliteDatabase) -> None:
    """Reports made and kept: the monthly report the reading service makes on the 1st (its
    files and totals); which booking each receipt number went to (append-only), filled from
    where recharges kept them before: the meter's command in the outbox, and the audit entry of
    a recharge at the desk (an imported payment to a station-kept account kept its number
    nowhere: a shift settlement names it missing)."""
    db.create_tables(REPORT_MODELS)
    triggers = {name for (name,) in db.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()}
    if "receipt_no_update" not in triggers:  # a database taken back to an older version
        _append_only(db, "receipt", "receipt numbers are append-only")
    db.execute_sql("INSERT OR IGNORE INTO receipt (no, txn_id) SELECT o.receipt_no, o.txn_id "
                   "FROM outbox o JOIN ledger_txn t ON t.id = o.txn_id "
                   "WHERE o.receipt_no IS NOT NULL ORDER BY o.receipt_no")
    db.execute_sql(
        "INSERT OR IGNORE INTO receipt (no, txn_id) SELECT json_extract(a.after, '$.receipt'), "
        "t.id FROM audit_entry a JOIN ledger_txn t ON t.id = json_extract(a.after, '$.txn') "
        "WHERE a.kind = 'recharge' AND json_valid(a.after) "
        "AND json_extract(a.after, '$.receipt') IS NOT NULL ORDER BY a.id")


def _v9(db: SqliteDatabase) -> None:
    """Consumption is booked once a day, not at every billing run: a month's billing state
    keeps the day it has not booked yet. A month before the current one was booked to the cent
    by the old billing (it booked every run): settled. Commissioning and bus diagnostics: a
    tool's hold on a bus."""
    db.create_tables(COMMISSIONING_MODELS)
    columns = {c.name for c in db.get_columns("billing_month")}
    for name, sql in (("open_day", "VARCHAR(255) NOT NULL DEFAULT ''"),
                      ("open_cost", "VARCHAR(255) NOT NULL DEFAULT '0'"),
                      ("open_allowance", "VARCHAR(255) NOT NULL DEFAULT '0'"),
                      ("settled", "INTEGER NOT NULL DEFAULT 0")):
        if name not in columns:
            db.execute_sql(f"ALTER TABLE billing_month ADD COLUMN {name} {sql}")
    db.execute_sql("CREATE INDEX IF NOT EXISTS billing_month_settled ON billing_month (settled)")
    db.execute_sql("UPDATE billing_month SET settled = 1 "
                   "WHERE month < strftime('%Y-%m', 'now', 'localtime')")


def _v10(db: SqliteDatabase) -> None:
    """The residents' portal and online payment (issue 13)."""
    db.create_tables(PORTAL_MODELS)


STEPS: list[Callable[[SqliteDatabase], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8,
                                                 _v9, _v10]
SCHEMA_VERSION = len(STEPS)
#: The schema version this process found before it upgraded the database it opened last
#: (None: it needed no upgrade). Known to this process only.
upgraded_from: int | None = None


def current_version(db: SqliteDatabase) -> int:
    if not db.table_exists("meta"):
        return 0
    row = Meta.get_or_none(Meta.key == "schema_version")
    return int(row.value) if row else 0


def upgrade(db: SqliteDatabase) -> int:
    """Bring the database to SCHEMA_VERSION, one step per transaction. Returns the version.

    A database that needs nothing is only read (no write lock): opening it does not wait for
    another process's long transaction, and a read-only command works while one runs."""
    global upgraded_from
    version = current_version(db)
    upgraded_from = version if version < SCHEMA_VERSION else None
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the database has schema version {version}, newer than this program "
            f"({SCHEMA_VERSION}): update VoltKeeper")
    while version < SCHEMA_VERSION:
        step = STEPS[version]
        with db.atomic("IMMEDIATE"):
            if current_version(db) != version:  # another process upgraded meanwhile
                version = current_version(db)
                continue
            log.info("upgrading database schema %d -> %d", version, version + 1)
            step(db)
            Meta.insert(key="schema_version", value=str(version + 1)).on_conflict_replace() \
                .execute()
        version += 1
    return version
