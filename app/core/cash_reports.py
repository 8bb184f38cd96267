"""The recharge journal, a cashier's shift settlement (what the cashier took, by method, the
receipt number range and its gaps explained) and the arrears list, from the ledger."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from app.core.finance_reports import METHODS, Period, Place, account_places, building_filter
from app.core.operators import Operator, Permission, require
from app.core.recharge import receipt_number
from app.i18n import _
from app.storage import campus
from app.storage import reports as store


# -- the recharge journal ----------------------------------------------------------------------
@dataclass(frozen=True)
class JournalLine:
    txn_id: int
    t: float
    receipt: int | None
    room: str
    building: str
    account: str
    kind: str  # recharge or refund
    method: str
    amount_cents: int  # the credit to the account: negative for a refund
    operator: str
    reference: str
    corrected_by: int | None


@dataclass
class Journal:
    campus: str
    period: Period
    building: str | None
    operator: str | None  # one cashier's only
    lines: list[JournalLine]
    by_method: dict[str, int]
    made_at: float
    made_by: str

    @property
    def total(self) -> int:
        return sum(self.by_method.values())


def compute_journal(period: Period, building: str | None = None, cashier: str | None = None,
                    made_by: str = "") -> Journal:
    places = account_places()
    only = building_filter(places, building)
    accounts = {a.id: a for a in store.accounts()}
    rows = store.money_bookings(period.start, period.end, cashier)
    receipts = store.receipts_of([r.txn_id for r in rows if r.kind == "recharge"])
    lines: list[JournalLine] = []
    by_method: dict[str, int] = {}
    for r in rows:
        a = accounts.get(r.account_id) if r.account_id is not None else None
        place = places.get(a.node_id) if a else None
        if only is not None and (place is None or place.building not in only):
            continue
        lines.append(JournalLine(r.txn_id, r.t, receipts.get(r.txn_id),
                                 place.room if place else "", place.building if place else "",
                                 a.number if a else "", r.kind, r.method, r.amount_cents,
                                 r.operator, r.reference or "", r.corrected_by))
        by_method[r.method] = by_method.get(r.method, 0) + r.amount_cents
    return Journal(campus.campus_name(), period, building, cashier, lines, by_method,
                   time.time(), made_by)


def journal(operator: Operator, period: Period, building: str | None = None) -> Journal:
    require(operator, Permission.REPORTS)
    return compute_journal(period, building, made_by=operator.name)


# -- a cashier's shift settlement --------------------------------------------------------------
@dataclass(frozen=True)
class ReceiptGap:
    first: int
    last: int
    operator: str | None  # who issued them; None: the receipts are not found (missing)

    def text(self) -> str:
        span = receipt_number(self.first) if self.first == self.last else \
            f"{receipt_number(self.first)}–{receipt_number(self.last)}"
        if self.operator is None:
            return _("{span}: missing (no booking with these receipt numbers is found)") \
                .format(span=span)
        return _("{span}: issued by {operator}").format(span=span, operator=self.operator)


@dataclass
class Shift:
    journal: Journal
    cashier: str
    recharges: dict[str, int]  # by method
    refunds: dict[str, int]  # paid out, by method (positive)
    first_receipt: int | None
    last_receipt: int | None
    gaps: list[ReceiptGap]

    @property
    def net(self) -> dict[str, int]:
        return {m: self.recharges.get(m, 0) - self.refunds.get(m, 0)
                for m in METHODS if self.recharges.get(m) or self.refunds.get(m)}


def _gaps(mine: Iterable[int], lo: int, hi: int) -> list[ReceiptGap]:
    have = set(mine)
    others = store.receipts_between(lo, hi)
    gaps: list[ReceiptGap] = []
    for n in range(lo, hi + 1):
        if n in have:
            continue
        who = others[n][1] if n in others else None
        if gaps and gaps[-1].last == n - 1 and gaps[-1].operator == who:
            gaps[-1] = ReceiptGap(gaps[-1].first, n, who)
        else:
            gaps.append(ReceiptGap(n, n, who))
    return gaps


def compute_shift(period: Period, cashier: str, made_by: str = "") -> Shift:
    j = compute_journal(period, cashier=cashier, made_by=made_by)
    recharges: dict[str, int] = {}
    refunds: dict[str, int] = {}
    for line in j.lines:
        if line.kind == "recharge":
            recharges[line.method] = recharges.get(line.method, 0) + line.amount_cents
        else:
            refunds[line.method] = refunds.get(line.method, 0) - line.amount_cents
    mine = [line.receipt for line in j.lines if line.receipt is not None]
    lo, hi = (min(mine), max(mine)) if mine else (None, None)
    gaps = _gaps(mine, lo, hi) if lo is not None and hi is not None else []
    return Shift(j, cashier, recharges, refunds, lo, hi, gaps)


def shift(operator: Operator, period: Period, cashier: str) -> Shift:
    require(operator, Permission.REPORTS)
    return compute_shift(period, cashier, made_by=operator.name)


# -- arrears -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArrearsLine:
    room: str
    building: str
    account: str
    occupant: str
    balance_cents: int


@dataclass
class Arrears:
    campus: str
    at: float  # balances before this moment
    period: Period | None
    building: str | None
    lines: list[ArrearsLine]
    made_at: float
    made_by: str

    @property
    def total(self) -> int:
        return sum(line.balance_cents for line in self.lines)


def compute_arrears(at: float, building: str | None = None, period: Period | None = None,
                    made_by: str = "") -> Arrears:
    """Accounts open at ``at`` with a balance at or below zero then."""
    places = account_places()
    only = building_filter(places, building)
    sums = store.prepaid_sums_before(at)
    occupants = store.occupants_at(at - 1e-6)
    lines = []
    for a in store.accounts():
        if a.opened_at >= at or (a.closed_at is not None and a.closed_at < at):
            continue
        bal = -sums.get(a.id, 0)
        if bal > 0:
            continue
        place = places.get(a.node_id) or Place(str(a.node_id), "", (-1, -1, a.node_id))
        if only is not None and place.building not in only:
            continue
        lines.append((place.sort, ArrearsLine(place.room, place.building, a.number,
                                              occupants.get(a.node_id, ""), bal)))
    lines.sort(key=lambda x: x[0])
    return Arrears(campus.campus_name(), at, period, building, [x for _k, x in lines],
                   time.time(), made_by)


def arrears(operator: Operator, at: float, building: str | None = None,
            period: Period | None = None) -> Arrears:
    require(operator, Permission.REPORTS)
    return compute_arrears(at, building, period, made_by=operator.name)
