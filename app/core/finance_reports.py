"""The reports finance signs, computed from the ledger: the period, where each account is, and
the monthly report (the recharge journal, shift settlement and arrears list: ``cash_reports``).

A period is ``[start, end)`` in the station's local time; a report takes the bookings with a
time in it only, so a past period's report gives the same figures whatever is booked later.
Every figure is integer cents from set-based questions (``storage/reports.py``).

The monthly report per account (and per building, and in total)::

    opening + recharges + allowance - consumption - refunds - carried + corrections
        + adoptions + other = closing

``consumption`` is the value of the energy used (what was charged plus the free allowance);
``allowance`` is the free part, paid by the campus (it never passes through ``prepaid``, so
both appear and cancel). ``check`` proves the identity for every account and that the totals
equal the ledger's own movement on ``prepaid`` in the period; a report that fails it is never
printed.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field

from app.core.operators import Operator, Permission, require
from app.core.progress import Progress, quiet
from app.core.recharge import METHODS as METHOD_NAMES
from app.errors import UserFacingError
from app.i18n import _
from app.storage import campus
from app.storage import reports as store

#: The payment methods in the order the reports show them (named once, in core/recharge).
METHODS = tuple(METHOD_NAMES)


def method_text(method: str) -> str:
    label = METHOD_NAMES.get(method)
    return _(label) if label else method or _("other")


class ReportMismatch(UserFacingError):
    """The report's figures do not reconcile with the ledger (a defect: never printed)."""


# -- periods -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    first_day: dt.date
    last_day: dt.date  # inclusive

    @property
    def start(self) -> float:
        return _local_midnight(self.first_day)

    @property
    def end(self) -> float:
        return _local_midnight(self.last_day + dt.timedelta(days=1))

    @property
    def month(self) -> str | None:
        """``YYYY-MM`` when the period is one whole month."""
        nxt = _next_month(self.first_day)
        if self.first_day.day == 1 and self.last_day == nxt - dt.timedelta(days=1):
            return self.first_day.strftime("%Y-%m")
        return None

    @property
    def label(self) -> str:
        if self.month:
            return _("{year}-{month:02d}").format(year=self.first_day.year,
                                                  month=self.first_day.month)
        return f"{self.first_day.isoformat()} – {self.last_day.isoformat()}"

    @property
    def slug(self) -> str:
        return self.month or f"{self.first_day.isoformat()}_{self.last_day.isoformat()}"


def _local_midnight(day: dt.date) -> float:
    return time.mktime((day.year, day.month, day.day, 0, 0, 0, 0, 0, -1))


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_period(text: str) -> Period:
    m = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", text or "")
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise UserFacingError(_("{text!r} is not a month (YYYY-MM)").format(text=text))
    first = dt.date(int(m.group(1)), int(m.group(2)), 1)
    return Period(first, _next_month(first) - dt.timedelta(days=1))


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise UserFacingError(_("{text!r} is not a date (YYYY-MM-DD)").format(text=text)) \
            from None


def range_period(first: str, last: str) -> Period:
    """From ``first`` to ``last``, both days included."""
    a, b = _date(first), _date(last)
    if b < a:
        raise UserFacingError(_("the period ends ({last}) before it starts ({first})")
                              .format(first=first, last=last))
    return Period(a, b)


def previous_month(now: float | None = None) -> Period:
    today = dt.date.fromtimestamp(time.time() if now is None else now)
    first_this = today.replace(day=1)
    last_prev = first_this - dt.timedelta(days=1)
    return Period(last_prev.replace(day=1), last_prev)


# -- where each account is ---------------------------------------------------------------------
@dataclass(frozen=True)
class Place:
    room: str
    building: str
    sort: tuple


def account_places() -> dict[int, Place]:
    """Each node's room label and building name (the building ancestor, else the campus)."""
    nodes = {n.id: n for n in campus.nodes()}  # in (sort_key, id) order
    children: dict[int | None, list[int]] = {}
    for n in nodes.values():
        children.setdefault(n.parent_id, []).append(n.id)
    order: dict[int, int] = {}  # the campus tree's order: building, floor, room
    stack = list(reversed(children.get(None, [])))
    while stack:
        nid = stack.pop()
        order[nid] = len(order)
        stack.extend(reversed(children.get(nid, [])))
    out: dict[int, Place] = {}
    for n in nodes.values():
        building, p = None, n
        while p is not None:
            if p.kind == "building":
                building = p
                break
            p = nodes.get(p.parent_id) if p.parent_id is not None else None
        b_name = building.name if building else ""
        out[n.id] = Place(n.code or n.name, b_name,
                          (order.get(building.id, -1) if building else -1,
                           order.get(n.id, len(order)), n.id))
    return out


def building_filter(places: dict[int, Place], building: str | None) -> set[str] | None:
    if not building:
        return None
    names = {p.building for p in places.values()}
    wanted = building.strip()
    if wanted in names:
        return {wanted}
    codes = {n.code: n.name for n in campus.nodes() if n.kind == "building" and n.code}
    if wanted in codes:
        return {codes[wanted]}
    raise UserFacingError(_("no building {name!r} (known: {names})").format(
        name=building, names=", ".join(sorted(n for n in names if n))))


def building_names(operator: Operator) -> list[str]:
    """The campus's buildings in the tree's order (what a report may be limited to)."""
    require(operator, Permission.REPORTS)
    return [n.name for n in campus.nodes() if n.kind == "building"]


# -- the monthly report ------------------------------------------------------------------------
@dataclass
class Figures:
    opening: int = 0
    recharges: dict[str, int] = field(default_factory=dict)
    allowance: int = 0
    consumption: int = 0  # the energy's value: charged + allowance
    refunds: int = 0
    carried: int = 0
    corrections: int = 0
    adoptions: int = 0
    other: int = 0
    closing: int = 0

    @property
    def recharged(self) -> int:
        return sum(self.recharges.values())

    @property
    def charged(self) -> int:
        return self.consumption - self.allowance

    def expected_closing(self) -> int:
        return (self.opening + self.recharged + self.allowance - self.consumption
                - self.refunds - self.carried + self.corrections + self.adoptions + self.other)

    def add(self, o: Figures) -> None:
        self.opening += o.opening
        for m, c in o.recharges.items():
            self.recharges[m] = self.recharges.get(m, 0) + c
        self.allowance += o.allowance
        self.consumption += o.consumption
        self.refunds += o.refunds
        self.carried += o.carried
        self.corrections += o.corrections
        self.adoptions += o.adoptions
        self.other += o.other
        self.closing += o.closing

    def is_empty(self) -> bool:
        return not any((self.opening, self.recharged, self.allowance, self.consumption,
                        self.refunds, self.carried, self.corrections, self.adoptions,
                        self.other, self.closing))

    def as_dict(self) -> dict:
        return {"opening": self.opening,
                "recharges": {m: self.recharges.get(m, 0) for m in METHODS},
                "allowance": self.allowance, "consumption": self.consumption,
                "refunds": self.refunds, "carried": self.carried,
                "corrections": self.corrections, "adoptions": self.adoptions,
                "other": self.other, "closing": self.closing}


@dataclass(frozen=True)
class AccountLine:
    account_id: int
    number: str
    room: str
    building: str
    occupant: str
    figures: Figures


@dataclass
class MonthlyReport:
    campus: str
    period: Period
    building: str | None
    lines: list[AccountLine]
    buildings: list[tuple[str, Figures]]
    totals: Figures
    ledger_movement: int  # the ledger's own movement on prepaid in the period (account view)
    made_at: float
    made_by: str

    def check(self) -> None:
        """Refuse a report whose figures do not reconcile, to the cent."""
        for line in self.lines:
            f = line.figures
            if f.expected_closing() != f.closing:
                raise ReportMismatch(_("{room}: the figures give {expected} but the ledger's "
                                       "closing balance is {closing} (cents)").format(
                    room=line.room, expected=f.expected_closing(), closing=f.closing))
        t = self.totals
        if self.building is None and t.closing - t.opening != self.ledger_movement:
            raise ReportMismatch(_("the report's movement {report} differs from the ledger's "
                                   "{ledger} (cents)").format(report=t.closing - t.opening,
                                                              ledger=self.ledger_movement))
        whole = Figures()
        for _name, f in self.buildings:
            whole.add(f)
        if whole != t:
            raise ReportMismatch(_("the buildings do not add up to the total"))

    def totals_json(self) -> dict:
        return {"period": self.period.slug, "building": self.building or "",
                "totals": self.totals.as_dict(),
                "buildings": {name: f.as_dict() for name, f in self.buildings},
                "accounts": len(self.lines)}


_KIND_FIELD = {"consumption": "consumption", "refund": "refunds", "carry": "carried",
               "correction": "corrections", "opening": "adoptions"}


def compute_monthly(period: Period, building: str | None = None,
                    progress: Progress | None = None, made_by: str = "") -> MonthlyReport:
    """The monthly report's figures (no role check: see ``monthly``)."""
    progress = progress or quiet()
    start, end = period.start, period.end
    places = account_places()
    only = building_filter(places, building)
    progress.step(0, 5, _("reading the ledger"))
    before = store.prepaid_sums_before(start)
    progress.step(1, 5)
    until = store.prepaid_sums_before(end)
    progress.step(2, 5)
    moves = store.prepaid_movements(start, end)
    allowance = store.allowance_by_account(start, end)
    ledger_movement = -store.prepaid_total(start, end)
    progress.step(3, 5, _("adding up"))
    occupants = store.occupants_at(end - 1)
    figures: dict[int, Figures] = {}

    def fig(acct: int) -> Figures:
        f = figures.get(acct)
        if f is None:
            f = figures[acct] = Figures()
        return f

    for acct, kind, method, cents in moves:
        f = fig(acct)
        if kind == "recharge":
            f.recharges[method] = f.recharges.get(method, 0) - cents
        elif kind == "consumption":
            f.consumption += cents
        elif kind in ("refund", "carry"):
            setattr(f, _KIND_FIELD[kind], getattr(f, _KIND_FIELD[kind]) + cents)
        elif kind in ("correction", "opening"):
            setattr(f, _KIND_FIELD[kind], getattr(f, _KIND_FIELD[kind]) - cents)
        else:
            f.other -= cents
    for acct, cents in allowance.items():
        f = fig(acct)
        f.allowance += cents
        f.consumption += cents
    lines: list[tuple[tuple, AccountLine]] = []
    for a in store.accounts():
        if a.opened_at >= end and a.id not in figures:
            continue
        f = figures.get(a.id) or Figures()
        f.opening = -before.get(a.id, 0)
        f.closing = -until.get(a.id, 0)
        if f.is_empty() and a.closed_at is not None and a.closed_at < start:
            continue
        place = places.get(a.node_id) or Place(str(a.node_id), "", (-1, -1, a.node_id))
        if only is not None and place.building not in only:
            continue
        lines.append(((*place.sort, a.id), AccountLine(
            a.id, a.number, place.room, place.building, occupants.get(a.node_id, ""), f)))
    lines.sort(key=lambda x: x[0])
    per_building: dict[str, Figures] = {}
    totals = Figures()
    for _key, line in lines:
        per_building.setdefault(line.building, Figures()).add(line.figures)
        totals.add(line.figures)
    progress.step(4, 5)
    report = MonthlyReport(campus.campus_name(), period, building, [x for _k, x in lines],
                           list(per_building.items()), totals, ledger_movement, time.time(),
                           made_by)
    report.check()
    progress.step(5, 5)
    return report


def monthly(operator: Operator, period: Period, building: str | None = None,
            progress: Progress | None = None) -> MonthlyReport:
    """The monthly report, for an operator who may print reports."""
    require(operator, Permission.REPORTS)
    return compute_monthly(period, building, progress, operator.name)
