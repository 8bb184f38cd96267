"""The double-entry ledger in the database: posting bookings and deriving balances.

A booking (``LedgerTxn``) has entries on book accounts that sum to zero (debit positive, credit
negative). A prepaid account's balance is what the station owes it: minus the sum of its entries
on the ``prepaid`` liability. Nothing is ever updated or deleted (database triggers refuse it);
a correction is a new booking.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from peewee import IntegrityError, fn

from app.errors import StorageError, UserFacingError
from app.storage.models import BookAccount, Counter, LedgerEntry, LedgerTxn, Receipt, database

#: The chart of accounts.
BOOKS = {
    "cash": "asset",  # the front desk's drawer
    "clearing:campus_card": "asset",
    "clearing:wechat": "asset",
    "clearing:alipay": "asset",
    "clearing:unionpay": "asset",  # UnionPay (银联, 云闪付)
    "bank": "asset",
    "prepaid": "liability",  # money held for each account (per account)
    "carried": "liability",  # money carried to a resident's next term
    "revenue:electricity": "revenue",
    "expense:allowance": "expense",  # the value of free allowance kWh, paid by the campus
    "equity:opening": "equity",  # balances adopted when an account is opened
}
METHOD_BOOKS = {"cash": "cash", "campus_card": "clearing:campus_card",
                "wechat": "clearing:wechat", "alipay": "clearing:alipay",
                "unionpay": "clearing:unionpay", "bank": "bank"}

Entry = tuple[str, int | None, int]  # (book code, prepaid account id or None, cents)


class DuplicateReference(UserFacingError):
    """A payment with this external reference is already booked."""


@dataclass(frozen=True)
class TxnRecord:
    id: int
    t: float
    kind: str
    account_id: int | None
    operator: str
    memo: str
    reference: str | None
    method: str
    amount_cents: int  # the effect on the account's balance (+ credit to the resident)


_book_ids: dict[str, int] = {}


def _book_id(code: str) -> int:
    if code not in BOOKS:
        raise ValueError(f"no book account {code!r}")
    if code not in _book_ids or database.obj is None:
        row = BookAccount.get_or_none(BookAccount.code == code)
        if row is None:
            row_id = BookAccount.insert(code=code, kind=BOOKS[code]).execute()
        else:
            row_id = row.id
        _book_ids[code] = row_id
    return _book_ids[code]


def reset_cache() -> None:
    """Forget cached ids (another database was opened)."""
    _book_ids.clear()


def post(kind: str, entries: list[Entry], *, operator: str, account_id: int | None = None,
         memo: str = "", reference: str | None = None, method: str = "",
         corrects: int | None = None, t: float | None = None) -> int:
    """Book one transaction. Refuses entries that do not sum to zero or are not whole cents."""
    if not entries:
        raise ValueError("a booking needs entries")
    for _code, _acct, cents in entries:
        if isinstance(cents, bool) or not isinstance(cents, int):
            raise TypeError(f"ledger amounts are integer cents, not {type(cents).__name__}")
    if sum(c for _, _, c in entries) != 0:
        raise ValueError(f"unbalanced booking: {entries}")
    if not operator:
        raise ValueError("every booking names its operator")
    with database.atomic():
        try:
            txn_id = LedgerTxn.insert(
                t=time.time() if t is None else t, kind=kind, account=account_id,
                operator=operator, memo=memo, reference=reference, method=method,
                corrects=corrects).execute()
        except IntegrityError:
            if reference is not None and LedgerTxn.select().where(
                    LedgerTxn.reference == reference).exists():
                raise DuplicateReference(f"payment {reference} is already booked") from None
            raise
        LedgerEntry.insert_many([
            {"txn": txn_id, "book": _book_id(code), "account": acct, "amount_cents": cents}
            for code, acct, cents in entries if cents != 0
        ]).execute()
    return txn_id


def reverse(txn_id: int, *, operator: str, memo: str) -> int:
    """Book the exact opposite of ``txn_id`` as a correction (once: a second reversal of the
    same booking is refused)."""
    original = LedgerTxn.get_or_none(LedgerTxn.id == txn_id)
    if original is None:
        raise UserFacingError(f"no booking {txn_id}")
    if LedgerTxn.select().where(LedgerTxn.corrects == txn_id).exists():
        raise UserFacingError(f"booking {txn_id} is already corrected")
    entries = [(BookAccount.get_by_id(e.book_id).code, e.account_id, -e.amount_cents)
               for e in LedgerEntry.select().where(LedgerEntry.txn == txn_id)]
    return post("correction", entries, operator=operator, account_id=original.account_id,
                memo=memo, corrects=txn_id, method=original.method)


def balance(account_id: int) -> int:
    """What the station holds for the account, in cents (derived, never stored)."""
    total = (LedgerEntry.select(fn.COALESCE(fn.SUM(LedgerEntry.amount_cents), 0))
             .where((LedgerEntry.account == account_id)
                    & (LedgerEntry.book == _book_id("prepaid"))).scalar())
    return -int(total)


def balances(account_ids: list[int] | None = None) -> dict[int, int]:
    """Every account's balance (``account_ids``: those accounts' only, in bulk)."""
    if account_ids is not None:
        out: dict[int, int] = {a: 0 for a in account_ids}
        for k in range(0, len(account_ids), 500):
            out.update(_balances(LedgerEntry.account.in_(account_ids[k:k + 500])))
        return out
    return _balances(LedgerEntry.account.is_null(False))


def _balances(which) -> dict[int, int]:
    q = (LedgerEntry.select(LedgerEntry.account, fn.SUM(LedgerEntry.amount_cents))
         .where((LedgerEntry.book == _book_id("prepaid")) & which)
         .group_by(LedgerEntry.account).tuples())
    return {acct: -int(total) for acct, total in q}


def trial_balance() -> dict[str, int]:
    """Sum per book account; all of them together are zero in a sound ledger."""
    q = (LedgerEntry.select(BookAccount.code, fn.SUM(LedgerEntry.amount_cents))
         .join(BookAccount).group_by(BookAccount.code).tuples())
    return {code: int(total) for code, total in q}


def unbalanced_txns() -> list[int]:
    q = (LedgerEntry.select(LedgerEntry.txn).group_by(LedgerEntry.txn)
         .having(fn.SUM(LedgerEntry.amount_cents) != 0).tuples())
    return [t for (t,) in q]


def txns(account_id: int, limit: int = 200) -> list[TxnRecord]:
    prepaid = _book_id("prepaid")
    q = (LedgerTxn.select(LedgerTxn, fn.COALESCE(fn.SUM(LedgerEntry.amount_cents), 0)
                          .alias("effect"))
         .join(LedgerEntry).where((LedgerEntry.account == account_id)
                                  & (LedgerEntry.book == prepaid))
         .group_by(LedgerTxn.id).order_by(LedgerTxn.id.desc()).limit(limit))
    return [TxnRecord(r.id, r.t, r.kind, r.account_id, r.operator, r.memo, r.reference,
                      r.method, -int(r.effect)) for r in q]


def txn(txn_id: int) -> TxnRecord | None:
    """One booking, with its effect on its account's balance."""
    row = LedgerTxn.get_or_none(LedgerTxn.id == txn_id)
    if row is None:
        return None
    effect = (LedgerEntry.select(fn.COALESCE(fn.SUM(LedgerEntry.amount_cents), 0))
              .where((LedgerEntry.txn == txn_id) & (LedgerEntry.book == _book_id("prepaid")))
              .scalar())
    return TxnRecord(row.id, row.t, row.kind, row.account_id, row.operator, row.memo,
                     row.reference, row.method, -int(effect))


def bookings_holding(ids: Iterable[str], prefixes: Iterable[str]
                     ) -> list[tuple[int, str, str]]:
    """(txn id, reference, method) of every booking whose reference is one of ``ids`` itself
    or ``prefix:id`` for one of ``prefixes``, in bulk: a large set of ids is probed through a
    temporary table, each form an indexed lookup."""
    wanted = list(dict.fromkeys(i for i in ids if i))
    heads = list(dict.fromkeys(prefixes))
    if len(wanted) <= 200:
        refs = [form for i in wanted for form in (i, *(f"{h}:{i}" for h in heads))]
        out: list[tuple[int, str, str]] = []
        for k in range(0, len(refs), 500):
            out.extend(LedgerTxn.select(LedgerTxn.id, LedgerTxn.reference, LedgerTxn.method)
                       .where(LedgerTxn.reference.in_(refs[k:k + 500])).tuples())
        return out
    db = database.obj
    forms = ", ".join(["p.id", *("? || p.id" for _h in heads)])
    with database.atomic():  # the temporary table lives and dies with this question
        db.execute_sql("CREATE TEMP TABLE IF NOT EXISTS reference_probe "
                       "(id TEXT PRIMARY KEY) WITHOUT ROWID")
        db.execute_sql("DELETE FROM temp.reference_probe")
        db.cursor().executemany("INSERT OR IGNORE INTO temp.reference_probe VALUES (?)",
                                ((i,) for i in wanted))
        rows = db.execute_sql(
            "SELECT t.id, t.reference, t.method FROM temp.reference_probe p "
            f"JOIN ledger_txn t ON t.reference IN ({forms})", [f"{h}:" for h in heads]).fetchall()
        db.execute_sql("DELETE FROM temp.reference_probe")
    return [(int(i), r, m) for i, r, m in rows]


def keep_receipt(receipt_no: int, txn_id: int) -> None:
    """Record which booking a receipt number went to (in the booking's transaction)."""
    Receipt.insert(no=receipt_no, txn=txn_id).execute()


def next_counter(name: str) -> int:
    """The next number of a gapless counter. Call inside the booking's transaction: a rollback
    takes the number back with the booking, so no number is skipped."""
    if not database.in_transaction():
        raise StorageError("a gapless counter is only taken inside a transaction")
    Counter.insert(name=name, value=0).on_conflict_ignore().execute()
    Counter.update(value=Counter.value + 1).where(Counter.name == name).execute()
    return int(Counter.get(Counter.name == name).value)
