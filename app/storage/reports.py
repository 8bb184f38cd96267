"""The questions the financial reports ask the ledger: set-based, one pass per question.

Every question takes a period ``[start, end)`` of booking times (``ledger_txn.t``), so a report
of a past period never sees what was booked after it. Amounts are integer cents as booked
(debit positive); the callers turn them into the account's point of view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from app.storage import ledger
from app.storage.models import ReportRecord, database


@dataclass(frozen=True)
class AccountRow:
    id: int
    number: str
    node_id: int
    opened_at: float
    closed_at: float | None


@dataclass(frozen=True)
class RechargeRow:
    txn_id: int
    t: float
    account_id: int | None
    method: str
    amount_cents: int  # the credit to the account (positive for a recharge)
    operator: str
    reference: str | None
    kind: str  # recharge or refund
    corrected_by: int | None


def _db():
    return database.obj


def prepaid_movements(start: float, end: float) -> list[tuple[int, str, str, int]]:
    """(account, kind, method, sum of entries on ``prepaid``) of the bookings in the period."""
    prepaid = ledger._book_id("prepaid")
    rows = _db().execute_sql(
        "SELECT e.account_id, t.kind, t.method, SUM(e.amount_cents) FROM ledger_txn t "
        "JOIN ledger_entry e ON e.txn_id = t.id WHERE t.t >= ? AND t.t < ? AND e.book_id = ? "
        "AND e.account_id IS NOT NULL GROUP BY e.account_id, t.kind, t.method",
        (start, end, prepaid)).fetchall()
    return [(int(a), k, m or "", int(s)) for a, k, m, s in rows]


def prepaid_sums_before(t: float) -> dict[int, int]:
    """Sum of each account's entries on ``prepaid`` booked before ``t``."""
    prepaid = ledger._book_id("prepaid")
    rows = _db().execute_sql(
        "SELECT e.account_id, SUM(e.amount_cents) FROM ledger_entry e "
        "JOIN ledger_txn t ON t.id = e.txn_id WHERE t.t < ? AND e.book_id = ? "
        "AND e.account_id IS NOT NULL GROUP BY e.account_id", (t, prepaid)).fetchall()
    return {int(a): int(s) for a, s in rows}


def prepaid_total(start: float, end: float) -> int:
    """Sum of every entry on ``prepaid`` in the period (the ledger's own figure)."""
    prepaid = ledger._book_id("prepaid")
    row = _db().execute_sql(
        "SELECT COALESCE(SUM(e.amount_cents), 0) FROM ledger_txn t JOIN ledger_entry e "
        "ON e.txn_id = t.id WHERE t.t >= ? AND t.t < ? AND e.book_id = ?",
        (start, end, prepaid)).fetchone()
    return int(row[0])


def allowance_by_account(start: float, end: float) -> dict[int, int]:
    """Each account's free allowance booked in the period (entries on ``expense:allowance`` of
    the bookings that name the account, corrections included)."""
    book = ledger._book_id("expense:allowance")
    rows = _db().execute_sql(
        "SELECT t.account_id, SUM(e.amount_cents) FROM ledger_txn t JOIN ledger_entry e "
        "ON e.txn_id = t.id WHERE t.t >= ? AND t.t < ? AND e.book_id = ? "
        "AND t.account_id IS NOT NULL GROUP BY t.account_id", (start, end, book)).fetchall()
    return {int(a): int(s) for a, s in rows}


def accounts() -> list[AccountRow]:
    rows = _db().execute_sql(
        "SELECT id, number, node_id, opened_at, closed_at FROM account ORDER BY id").fetchall()
    return [AccountRow(int(i), n, int(node), o, c) for i, n, node, o, c in rows]


def any_account_opened_before(t: float) -> bool:
    return _db().execute_sql("SELECT EXISTS (SELECT 1 FROM account WHERE opened_at < ?)",
                             (t,)).fetchone()[0] == 1


def occupants_at(t: float) -> dict[int, str]:
    """The name of who lived in each room at ``t`` (the last to move in, if several)."""
    rows = _db().execute_sql(
        "SELECT node_id, name FROM occupant WHERE moved_in <= ? AND (moved_out IS NULL OR "
        "moved_out > ?) ORDER BY node_id, moved_in, id", (t, t)).fetchall()
    return {int(n): name for n, name in rows}


def money_bookings(start: float, end: float, operator: str | None = None
                   ) -> list[RechargeRow]:
    """Recharges and refunds booked in the period (by ``operator`` only, if given), in booking
    order, each with the correction that reversed it, if any."""
    prepaid = ledger._book_id("prepaid")
    sql = ("SELECT t.id, t.t, t.account_id, t.method, -SUM(e.amount_cents), t.operator, "
           "t.reference, t.kind, (SELECT MIN(c.id) FROM ledger_txn c WHERE c.corrects = t.id) "
           "FROM ledger_txn t JOIN ledger_entry e ON e.txn_id = t.id AND e.book_id = ? "
           "WHERE t.t >= ? AND t.t < ? AND t.kind IN ('recharge', 'refund')")
    params: list = [prepaid, start, end]
    if operator is not None:
        sql += " AND t.operator = ?"
        params.append(operator)
    sql += " GROUP BY t.id ORDER BY t.t, t.id"
    return [RechargeRow(int(i), t, a, m or "", int(c), op, ref, k, corr)
            for i, t, a, m, c, op, ref, k, corr in _db().execute_sql(sql, params).fetchall()]


def receipts_of(txn_ids: list[int]) -> dict[int, int]:
    """The receipt number of each of the bookings that has one."""
    out: dict[int, int] = {}
    for k in range(0, len(txn_ids), 500):
        chunk = txn_ids[k:k + 500]
        rows = _db().execute_sql(f"SELECT txn_id, no FROM receipt WHERE txn_id IN "
                                 f"({', '.join('?' * len(chunk))})", chunk).fetchall()
        out.update((int(t), int(n)) for t, n in rows)
    return out


def receipts_between(lo: int, hi: int) -> dict[int, tuple[int, str]]:
    """Receipt number -> (booking, its operator) for the receipts ``lo``..``hi`` recorded
    (schema 8 keeps every one; of those issued before, the numbers of payments imported to
    station-kept accounts were kept nowhere)."""
    rows = _db().execute_sql(
        "SELECT r.no, r.txn_id, t.operator FROM receipt r JOIN ledger_txn t ON t.id = r.txn_id "
        "WHERE r.no BETWEEN ? AND ?", (lo, hi)).fetchall()
    return {int(n): (int(t), op) for n, t, op in rows}


# -- stored reports (schema 8) ----------------------------------------------------------------
@dataclass(frozen=True)
class StoredReport:
    id: int
    month: str
    kind: str
    paths: list[str]
    totals: dict
    made_at: float
    made_by: str


def store_report(month: str, kind: str, paths: list[str], totals: dict, made_at: float,
                 made_by: str) -> int:
    """Record a report made (a later one of the same month and kind is another record)."""
    return ReportRecord.insert(month=month, kind=kind, paths=json.dumps(paths),
                               totals=json.dumps(totals, sort_keys=True), made_at=made_at,
                               made_by=made_by).execute()


def stored_reports(kind: str | None = None, month: str | None = None) -> list[StoredReport]:
    q = ReportRecord.select().order_by(ReportRecord.id)
    if kind is not None:
        q = q.where(ReportRecord.kind == kind)
    if month is not None:
        q = q.where(ReportRecord.month == month)
    return [StoredReport(r.id, r.month, r.kind, json.loads(r.paths), json.loads(r.totals),
                         r.made_at, r.made_by) for r in q]
