"""Bus and meter health kept: what each bus and meter did on the wire, per minute and per hour.

Each bus's poller counts in memory and hands one batch of ``CommRow`` a minute to the writer
(``core/comm_tally``), which stores it here (``store``): rows are added to, never replaced, so
a poller restarted within a minute (or a test flushing every second) adds to the same minute.

Kept: minute rows for 48 hours (``MINUTE_KEEP_S``); ``roll_up`` (the writer's maintenance, every
ten minutes) sums the older ones into hour rows, kept for 90 days (``HOUR_KEEP_S``), and deletes
the rows of meters that are gone. A row is a dozen small integers (``meter`` 0 is the bus's own
row, its cycles), about 30 bytes: 2,880 minute rows and 2,160 hour rows per meter, some 150 KB
per meter once both are full.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from peewee import EXCLUDED, Case, fn

from app.storage.models import CommHour, CommMinute, Meter, database

#: Minute rows are kept this long, then summed into hour rows.
MINUTE_KEEP_S = 48 * 3600
#: Hour rows are kept this long.
HOUR_KEEP_S = 90 * 86400
#: Rows per INSERT statement (SQLite's bound on variables).
_CHUNK = 400

_SUMS = ("polls", "ok", "transactions", "timeouts", "crc_errors", "exceptions",
         "latency_sum_ms", "cycles", "cycle_sum_s")
_MAXES = ("latency_max_ms", "cycle_max_s")


@dataclass
class CommRow:
    """What a bus (``meter_id`` 0) or one of its meters did in the minute from ``start``."""

    bus_id: int
    meter_id: int
    start: int
    polls: int = 0
    ok: int = 0
    transactions: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    exceptions: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0
    cycles: int = 0
    cycle_sum_s: float = 0.0
    cycle_max_s: float = 0.0
    wire_limit_s: float | None = None

    def add(self, other: CommRow) -> None:
        for name in _SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in _MAXES:
            setattr(self, name, max(getattr(self, name), getattr(other, name)))
        if other.wire_limit_s is not None:
            self.wire_limit_s = other.wire_limit_s


def _columns(row: CommRow) -> dict:
    d = asdict(row)
    d["bus"] = d.pop("bus_id")
    d["meter"] = d.pop("meter_id")
    return d


def _upsert(model, rows: list[dict]) -> None:
    update = {getattr(model, c): getattr(model, c) + getattr(EXCLUDED, c) for c in _SUMS}
    for c in _MAXES:
        mine, theirs = getattr(model, c), getattr(EXCLUDED, c)
        update[mine] = Case(None, [(theirs > mine, theirs)], mine)
    update[model.wire_limit_s] = fn.COALESCE(EXCLUDED.wire_limit_s, model.wire_limit_s)
    for i in range(0, len(rows), _CHUNK):
        model.insert_many(rows[i:i + _CHUNK]).on_conflict(
            conflict_target=[model.start, model.bus, model.meter], update=update).execute()


def store(rows: Sequence[CommRow]) -> None:
    """Add the rows to their minutes, in one transaction."""
    if not rows:
        return
    with database.atomic():
        _upsert(CommMinute, [_columns(r) for r in rows])


def roll_up(now: float | None = None) -> tuple[int, int]:
    """Sum the minute rows older than ``MINUTE_KEEP_S`` into hour rows and delete them; delete
    hour rows older than ``HOUR_KEEP_S`` and the rows of meters that are gone. Returns (minute
    rows rolled up, hour rows deleted)."""
    now = time.time() if now is None else now
    cutoff = int(now - MINUTE_KEEP_S)
    M = CommMinute
    hour = (M.start / 3600) * 3600  # (peewee reads % as GLOB)
    with database.atomic():
        query = (M.select(hour.alias("hour"), M.bus.alias("bus"), M.meter,
                          *[fn.SUM(getattr(M, c)).alias(c) for c in _SUMS],
                          *[fn.MAX(getattr(M, c)).alias(c) for c in _MAXES],
                          fn.MAX(M.wire_limit_s).alias("wire_limit_s"))
                 .where(M.start < cutoff).group_by(hour, M.bus, M.meter).dicts())
        hours = []
        for d in query:
            d["start"] = d.pop("hour")
            hours.append(d)
        if hours:
            _upsert(CommHour, hours)
        rolled = M.delete().where(M.start < cutoff).execute() if hours else 0
        gone = CommHour.delete().where(CommHour.start < int(now - HOUR_KEEP_S)).execute()
        known = Meter.select(Meter.id)
        for model in (CommMinute, CommHour):
            model.delete().where((model.meter != 0) & model.meter.not_in(known)).execute()
    return rolled, gone


@dataclass(frozen=True)
class Span:
    """The starts of the oldest and newest rows found, and the length of a row there (s)."""

    first: int
    last: int
    last_length_s: int


def totals(since: float, until: float | None = None,
           bus_ids: Iterable[int] | None = None) -> tuple[dict[tuple[int, int], CommRow],
                                                          Span | None]:
    """Per (bus, meter) the sums of the rows from ``since`` (a minute's start at or after it;
    beyond the minutes kept, the hours from the hour that holds it) to ``until``; and the span
    of the rows found (None: none)."""
    found: dict[tuple[int, int], CommRow] = {}
    span: Span | None = None
    wanted = None if bus_ids is None else list(bus_ids)
    for model, low in ((CommMinute, int(since)), (CommHour, int(since) - int(since) % 3600)):
        where = model.start >= low
        if until is not None:
            where &= model.start < until
        if wanted is not None:
            where &= model.bus.in_(wanted)
        query = (model.select(model.bus.alias("bus_id"), model.meter.alias("meter_id"),
                              fn.MIN(model.start).alias("start"),
                              fn.MAX(model.start).alias("last"),
                              *[fn.SUM(getattr(model, c)).alias(c) for c in _SUMS],
                              *[fn.MAX(getattr(model, c)).alias(c) for c in _MAXES],
                              fn.MAX(model.wire_limit_s).alias("wire_limit_s"))
                 .where(where).group_by(model.bus, model.meter).dicts())
        length = 60 if model is CommMinute else 3600
        for d in query:
            last = d.pop("last")
            row = CommRow(**d)
            if span is None:
                span = Span(row.start, last, length)
            else:
                newest = (last, length) if last > span.last else (span.last, span.last_length_s)
                span = Span(min(span.first, row.start), *newest)
            key = (row.bus_id, row.meter_id)
            if key in found:
                found[key].add(row)
            else:
                found[key] = row
    return found, span
