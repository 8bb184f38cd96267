"""Energy analysis: what a room, a floor, a building or the campus used, when, against last
year, who used most, and the days that look wrong. Plain Qt-free questions returning records,
so the window, the command line and the residents' portal ask the same ones.

Energy is whole Wh throughout (kWh only when shown). Each question takes the operator asking
(``Permission.VIEW``); the long ones take a ``Progress`` and stop at its next step when it is
cancelled. The sums are set-based (``storage/energy_stats``): a campus of 10,000 rooms is one
statement per month of days, not one per room.

The anomaly marks (a day far above the room's norm, use while tripped or in lights-out) are
found by ``core/energy_anomalies``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

from app.core import energy_anomalies as anomaly_marks
from app.core.energy_anomalies import ANOMALY_KINDS, INTERVAL_S, Anomaly, Labels, midnight
from app.core.operators import Operator, Permission, require
from app.core.progress import Progress, quiet
from app.errors import UserFacingError
from app.i18n import _
from app.storage import energy_stats as store

__all__ = ["ANOMALY_KINDS", "Analysis", "Anomaly", "DailyUse", "DayUse", "Intraday",
           "MonthComparison", "MonthDay", "Ranking", "RoomShare", "analyse", "anomalies",
           "daily_use", "intraday", "kwh", "month_vs_last_year", "top_consumers"]

#: The longest range the view asks for (about three years of days).
MAX_DAYS = 1_100
#: Days summed per statement (one progress step each).
DAYS_PER_STEP = 31


# -- records ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DayUse:
    day: str  # local YYYY-MM-DD
    wh: int


@dataclass(frozen=True)
class DailyUse:
    node_id: int
    first: str
    last: str
    days: list[DayUse]  # every day of the range, oldest first (0 Wh where nothing was used)

    @property
    def total_wh(self) -> int:
        return sum(d.wh for d in self.days)


@dataclass(frozen=True)
class Intraday:
    node_id: int
    day: str
    slot_wh: list[int]  # 96 quarter hours from local midnight (92 or 100 on a DST day)

    @property
    def total_wh(self) -> int:
        return sum(self.slot_wh)

    @staticmethod
    def slot_label(k: int) -> str:
        return f"{k * 15 // 60:02d}:{k * 15 % 60:02d}"


@dataclass(frozen=True)
class MonthDay:
    day: int  # day of the month
    wh: int | None  # None: no data that day
    last_year_wh: int | None


@dataclass(frozen=True)
class MonthComparison:
    node_id: int
    month: str  # YYYY-MM
    last_year: str  # the same month a year before
    days: list[MonthDay]

    @property
    def total_wh(self) -> int:
        return sum(d.wh or 0 for d in self.days)

    @property
    def last_year_total_wh(self) -> int | None:
        """None when last year's month has no data at all."""
        if all(d.last_year_wh is None for d in self.days):
            return None
        return sum(d.last_year_wh or 0 for d in self.days)

    @property
    def same_days_last_year_wh(self) -> int | None:
        """Last year's use on the days of the month this year has data for (a fair comparison
        while the month is running)."""
        if self.last_year_total_wh is None:
            return None
        return sum(d.last_year_wh or 0 for d in self.days if d.wh is not None)

    @property
    def change_percent(self) -> float | None:
        """This month against the same days last year, in percent (None: nothing to compare)."""
        before = self.same_days_last_year_wh
        if not before:
            return None
        return (self.total_wh - before) * 100 / before


@dataclass(frozen=True)
class RoomShare:
    node_id: int
    room: str  # its number or name
    path: str  # building › floor › room
    wh: int
    share_permille: int  # of the node's total, in tenths of a percent


@dataclass(frozen=True)
class Ranking:
    node_id: int
    first: str
    last: str
    total_wh: int
    rooms: list[RoomShare]  # the top ones, most first
    others_wh: int = 0  # the rooms after the top ones, together
    others_count: int = 0
    others_permille: int = 0


@dataclass(frozen=True)
class Analysis:
    """Everything the energy view shows for a node and a range, asked in one go."""

    node_id: int
    node: str  # its path
    kind: str  # room, shop, floor, building, campus
    daily: DailyUse
    intraday: Intraday
    month: MonthComparison
    ranking: Ranking
    anomalies: list[Anomaly] = field(default_factory=list)

    @property
    def anomaly_days(self) -> set[str]:
        return {a.day for a in self.anomalies}


# -- helpers ------------------------------------------------------------------------------------
def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]


def _check(operator: Operator, node_id: int, first: date | None = None,
           last: date | None = None) -> tuple[str, str, str]:
    require(operator, Permission.VIEW)
    found = store.node_exists(node_id)
    if found is None:
        raise UserFacingError(_("no such room, floor or building ({id})").format(id=node_id))
    if first is not None and last is not None:
        if first > last:
            raise UserFacingError(_("the range ends before it begins"))
        if (last - first).days >= MAX_DAYS:
            raise UserFacingError(_("choose at most {n} days").format(n=MAX_DAYS))
    return found


def _permille(parts: list[int], total: int) -> list[int]:
    """Tenths of a percent of each part, largest remainders rounded up: they sum to 1000."""
    if total <= 0:
        return [0] * len(parts)
    out = [p * 1000 // total for p in parts]
    short = 1000 - sum(out)
    by_remainder = sorted(range(len(parts)), key=lambda k: (-(parts[k] * 1000 % total), k))
    for k in by_remainder[:short]:
        out[k] += 1
    return out


# -- the questions ------------------------------------------------------------------------------
def daily_use(operator: Operator, node_id: int, first: date, last: date,
              progress: Progress | None = None) -> DailyUse:
    """Each day's use under the node over ``first``..``last`` (whole days, local time)."""
    _check(operator, node_id, first, last)
    return _daily(node_id, first, last, progress or quiet(), 0, 1)


def _daily(node_id: int, first: date, last: date, progress: Progress, done: int,
           total: int) -> DailyUse:
    days = _days(first, last)
    found: dict[str, int] = {}
    for k in range(0, len(days), DAYS_PER_STEP):
        progress.step(done, total, _("Daily use…"))
        chunk = days[k:k + DAYS_PER_STEP]
        found.update(store.daily_totals(node_id, chunk[0], chunk[-1]))
        done += 1
    return DailyUse(node_id, days[0], days[-1], [DayUse(d, found.get(d, 0)) for d in days])


def intraday(operator: Operator, node_id: int, day: date) -> Intraday:
    """The day's use under the node per quarter hour, from local midnight."""
    _check(operator, node_id)
    return _intraday(node_id, day)


def _intraday(node_id: int, day: date) -> Intraday:
    t0, t1 = midnight(day), midnight(day + timedelta(days=1))
    found = store.interval_totals(node_id, t0, t1)
    return Intraday(node_id, day.isoformat(),
                    [found.get(t, 0) for t in range(t0, t1, INTERVAL_S)])


def _month_days(month: date) -> tuple[date, date]:
    first = month.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt - timedelta(days=1)


def month_vs_last_year(operator: Operator, node_id: int, month: date) -> MonthComparison:
    """The month of ``month`` day by day against the same month a year before."""
    _check(operator, node_id)
    return _month(node_id, month)


def _month(node_id: int, month: date) -> MonthComparison:
    first, last = _month_days(month)
    before = first.replace(year=first.year - 1)
    b_first, b_last = _month_days(before)
    now = store.daily_totals(node_id, first.isoformat(), last.isoformat())
    then = store.daily_totals(node_id, b_first.isoformat(), b_last.isoformat())
    rows = []
    for k in range(1, last.day + 1):
        this_day = first.replace(day=k).isoformat()
        that_day = b_first.replace(day=k).isoformat() if k <= b_last.day else None
        rows.append(MonthDay(k, now.get(this_day), then.get(that_day) if that_day else None))
    return MonthComparison(node_id, first.strftime("%Y-%m"), b_first.strftime("%Y-%m"), rows)


def top_consumers(operator: Operator, node_id: int, first: date, last: date,
                  limit: int = 10) -> Ranking:
    """The rooms under the node that used most over the range, with their share of the node's
    use (the rest together as "others", so the shares add up to 100 %)."""
    _check(operator, node_id, first, last)
    return _ranking(node_id, first, last, limit, Labels())


def _ranking(node_id: int, first: date, last: date, limit: int, labels: Labels) -> Ranking:
    totals = store.room_totals(node_id, first.isoformat(), last.isoformat())
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    top, rest = ordered[:limit], ordered[limit:]
    total = sum(totals.values())
    others = sum(wh for _n, wh in rest)
    shares = _permille([wh for _n, wh in top] + [others], total)
    rooms = [RoomShare(n, labels.room(n), labels.path(n), wh, shares[k])
             for k, (n, wh) in enumerate(top)]
    return Ranking(node_id, first.isoformat(), last.isoformat(), total, rooms, others,
                   len(rest), shares[-1])


def anomalies(operator: Operator, node_id: int, first: date, last: date,
              progress: Progress | None = None) -> list[Anomaly]:
    """The anomaly marks of the rooms under the node over the range (see the module's note),
    by day then room."""
    _check(operator, node_id, first, last)
    progress = progress or quiet()
    rooms = store.rooms_under(node_id)
    total = anomaly_marks.steps(len(rooms))
    return anomaly_marks.find(node_id, rooms, first, last, Labels(), progress, 0, total)


def analyse(operator: Operator, node_id: int, first: date, last: date, *,
            day: date | None = None, month: date | None = None, top: int = 10,
            progress: Progress | None = None) -> Analysis:
    """The energy view's whole question: daily use, the intraday curve of ``day`` (the range's
    last day), ``month`` (the last day's) against last year, the top consumers and the marks."""
    kind = _check(operator, node_id, first, last)[0]
    progress = progress or quiet()
    labels = Labels()
    rooms = store.rooms_under(node_id)
    day_steps = math.ceil(((last - first).days + 1) / DAYS_PER_STEP)
    total = day_steps + 3 + anomaly_marks.steps(len(rooms))
    daily = _daily(node_id, first, last, progress, 0, total)
    done = day_steps
    progress.step(done, total, _("Intraday curve…"))
    curve = _intraday(node_id, day or last)
    progress.step(done + 1, total, _("This month against last year…"))
    compared = _month(node_id, month or last)
    progress.step(done + 2, total, _("Top consumers…"))
    ranking = _ranking(node_id, first, last, top, labels)
    marks = anomaly_marks.find(node_id, rooms, first, last, labels, progress, done + 3, total)
    progress.step(total, total)
    return Analysis(node_id, labels.path(node_id), kind, daily, curve, compared, ranking, marks)


def kwh(wh: int | None, places: int = 1) -> str:
    """Wh as kWh text ("12.3"), exactly (no float on the way)."""
    if wh is None:
        return ""
    sign = "-" if wh < 0 else ""
    whole, rest = divmod(abs(wh), 1000)
    if places <= 0:
        return f"{sign}{(abs(wh) + 500) // 1000}"
    scale = 10 ** (3 - places)
    frac = (rest + scale // 2) // scale
    if frac >= 10 ** places:
        whole, frac = whole + 1, 0
    return f"{sign}{whole}.{frac:0{places}d}"
