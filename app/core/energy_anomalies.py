"""Anomaly marks for the energy analysis (``core/energy_analysis``): hints for a person to look
at, never acts.

* ``high_day``: a room used more than ``HIGH_FACTOR`` times its own norm (the median of the
  days with use among the ``NORM_DAYS`` before) and at least ``HIGH_FLOOR_WH``; a room needs
  ``NORM_MIN_DAYS`` such days to have a norm.
* ``held_use``: a meter used energy in whole 15-minute intervals while it was tripped: from
  the station's automatic trip (``ControlLog``) or any trip the meter confirmed (an operator's,
  through the outbox) to the next close sent to it.
* ``schedule_use``: a room used energy inside one of its lights-out windows (a schedule of its
  building or tariff group) while not tripped: keep power, a warden's close, or tampering.

The quarter hour a trip or a window begins in is left out: the energy of the seconds before it
is split over that quarter hour (``core/energy``).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.core.progress import Progress
from app.i18n import N_, _
from app.storage import energy_stats as store

INTERVAL_S = 900
#: A day is far above the norm at this many times the room's median ...
HIGH_FACTOR = 3
#: ... and at least this much (a room that uses 200 Wh a day is not anomalous at 700).
HIGH_FLOOR_WH = 2_000
NORM_DAYS = 28
NORM_MIN_DAYS = 14
#: Use while tripped below this is metering noise (the interval the trip fell in, rounding).
HELD_MIN_WH = 20
#: Use inside a lights-out window below this is a phone charger, not a heater.
SCHEDULE_MIN_WH = 50
#: Rooms whose norms are worked out per statement (one progress step each).
ROOMS_PER_STEP = 500

ANOMALY_KINDS = {"high_day": N_("far above its norm"),
                 "held_use": N_("used while tripped"),
                 "schedule_use": N_("used during lights-out")}


def midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day).timestamp())


@dataclass(frozen=True)
class Anomaly:
    kind: str  # high_day, held_use, schedule_use
    node_id: int  # the room
    room: str
    path: str
    day: str
    wh: int  # the day's use (high_day) or the use in the period (the others)
    norm_wh: int | None = None  # the room's median day (high_day)
    start: float | None = None  # the period (held_use, schedule_use)
    end: float | None = None
    reason: str = ""  # why it was tripped, or the schedule's name

    @property
    def kind_text(self) -> str:
        return _(ANOMALY_KINDS[self.kind])

    @property
    def reason_text(self) -> str:
        """Why the room was tripped, in words, or the lights-out schedule's name."""
        if self.kind == "held_use":
            from app.core.control_rules import REASON_TEXT

            label = REASON_TEXT.get(self.reason)
            return _(label) if label else self.reason
        return self.reason


class Labels:
    """Room numbers and paths from one read of the tree."""

    def __init__(self) -> None:
        self.nodes = store.node_labels()

    def room(self, node_id: int) -> str:
        _parent, _kind, name, code = self.nodes.get(node_id, (None, "", str(node_id), ""))
        return code or name

    def path(self, node_id: int) -> str:
        names: list[str] = []
        current: int | None = node_id
        while current is not None and current in self.nodes:
            parent, kind, name, code = self.nodes[current]
            if kind != "campus":
                names.append(code if kind in store.ROOM_KINDS and code else name)
            current = parent
        return " › ".join(reversed(names)) or self.room(node_id)


def steps(rooms: int) -> int:
    """The progress steps ``find`` takes for that many rooms."""
    return max(1, math.ceil(rooms / ROOMS_PER_STEP)) + 2


def find(node_id: int, rooms: list[int], first: date, last: date, labels: Labels,
         progress: Progress, done: int, total: int) -> list[Anomaly]:
    """The marks of ``rooms`` (those under ``node_id``) over the range, by day then room;
    reports progress from ``done`` of ``total`` (``steps`` of them)."""
    out: list[Anomaly] = []
    text = _("Looking for anomalies…")
    norm_from = (first - timedelta(days=NORM_DAYS)).isoformat()
    for k in range(0, max(len(rooms), 1), ROOMS_PER_STEP):
        progress.step(done, total, text)
        done += 1
        chunk = rooms[k:k + ROOMS_PER_STEP]
        out += _high_days(store.room_days(chunk, norm_from, last.isoformat()),
                          first.isoformat(), labels)
    progress.step(done, total, text)
    t0, t1 = midnight(first), midnight(last + timedelta(days=1))
    held = _held_use(node_id, t0, t1, labels)
    progress.step(done + 1, total, text)
    out += held + _schedule_use(node_id, first, last, labels, progress, held)
    out.sort(key=lambda a: (a.day, a.path, a.kind))
    return out


def _schedule_use(node_id: int, first: date, last: date, labels: Labels, progress: Progress,
                  held: list[Anomaly]) -> list[Anomaly]:
    """Use inside the enabled schedules' windows by the rooms under the node they cover, once
    a room and window, dated by the day the (range-clipped) window starts; a window that
    overlaps a period the room is marked as used while tripped in (``held``) is not marked
    again."""
    from app.core.schedules import exceptions_of, replace_day, windows_from_json
    from app.storage import rules

    out: list[Anomaly] = []
    seen: set[tuple[int, int]] = set()  # (room, window start): two schedules, one window
    tripped: dict[int, list[tuple[float, float]]] = {}
    for h in held:
        tripped.setdefault(h.node_id, []).append((h.start or 0, h.end or 0))
    t0, t1 = midnight(first), midnight(last + timedelta(days=1))
    for s in rules.schedules():
        if not s.enabled:
            continue
        progress.check()
        root = _schedule_root(node_id, s.node_id, labels)
        if root is None:
            continue
        windows, exceptions = windows_from_json(s.windows), exceptions_of(s.id)
        spans: dict[int, int] = {}
        day = first - timedelta(days=1)
        while day <= last:
            todays = ([replace_day(w, day) for w in exceptions[day]] if day in exceptions
                      else [w for w in windows if day.weekday() in w.days])
            for w in todays:
                a, b = (int(x.timestamp()) for x in w.span(day))
                a, b = max(a + INTERVAL_S, t0), min(b, t1)  # the trip's own quarter left out
                if b - a >= INTERVAL_S:
                    spans[a] = b
            day += timedelta(days=1)
        group = None if s.node_id is not None else s.tariff_group
        ordered = sorted(spans.items())
        for k in range(0, len(ordered), 100):
            progress.check()
            for room, a, wh in store.room_use_in_spans(root, ordered[k:k + 100],
                                                       SCHEDULE_MIN_WH, group):
                start_day = datetime.fromtimestamp(a).date().isoformat()
                if (room, a) in seen or any(
                        ha < spans[a] and a < hb for ha, hb in tripped.get(room, ())):
                    continue
                seen.add((room, a))
                out.append(Anomaly("schedule_use", room, labels.room(room), labels.path(room),
                                   start_day, wh, start=a, end=spans[a], reason=s.name))
    return out


def _high_days(rows: list[tuple[int, str, int]], first: str, labels: Labels) -> list[Anomaly]:
    """Days far above the room's own norm; ``rows`` by room then day, from NORM_DAYS before."""
    out: list[Anomaly] = []
    ordinals: dict[str, int] = {}  # a few hundred distinct days among millions of rows
    window: deque[tuple[int, int]] = deque()  # the room's days with use, oldest first
    ordered: list[int] = []  # their Wh, sorted (the median's)
    current = None
    insort, bisect_left = bisect.insort, bisect.bisect_left
    for room, day_text, wh in rows:
        if room != current:
            current = room
            window.clear()
            ordered.clear()
        day = ordinals.get(day_text)
        if day is None:
            day = ordinals[day_text] = date.fromisoformat(day_text).toordinal()
        horizon = day - NORM_DAYS
        while window and window[0][0] < horizon:
            ordered.pop(bisect_left(ordered, window.popleft()[1]))
        if wh >= HIGH_FLOOR_WH and day_text >= first and len(ordered) >= NORM_MIN_DAYS:
            n = len(ordered)
            median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) // 2
            if wh > HIGH_FACTOR * median:
                out.append(Anomaly("high_day", room, labels.room(room), labels.path(room),
                                   day_text, wh, norm_wh=median))
        if wh > 0:
            window.append((day, wh))
            insort(ordered, wh)
    return out


def _held_use(node_id: int, t0: int, t1: int, labels: Labels) -> list[Anomaly]:
    """Use in whole intervals while a meter was tripped, split per local day."""
    spans: list[tuple[int, int, int]] = []  # (meter, start, end)
    meta: dict[tuple[int, int], tuple[int, str, int]] = {}
    open_: dict[int, tuple[float, str, int]] = {}  # meter -> (trip time, reason, room)

    def period(meter: int, a: float, b: float, reason: str, room: int) -> None:
        start = max(math.ceil(a / INTERVAL_S) * INTERVAL_S + INTERVAL_S, t0)
        end = min(int(b // INTERVAL_S) * INTERVAL_S, t1)
        while end - start >= INTERVAL_S:  # one span per local day
            day = datetime.fromtimestamp(start).date()
            cut = min(end, midnight(day + timedelta(days=1)))
            spans.append((meter, start, cut))
            meta[(meter, start)] = (room, reason, cut)
            start = cut

    for meter, room, t, action, reason in store.relay_events(node_id, t0 - NORM_DAYS * 86_400,
                                                             t1):
        if action == "trip":
            open_.setdefault(meter, (t, reason, room))
        elif meter in open_:
            a, why, where = open_.pop(meter)
            period(meter, a, t, why, where)
    for meter, (a, why, where) in open_.items():
        period(meter, a, t1, why, where)
    out = []
    for (meter, start), wh in store.meter_spans(spans).items():
        if wh < HELD_MIN_WH:
            continue
        room, reason, end = meta[(meter, start)]
        out.append(Anomaly("held_use", room, labels.room(room), labels.path(room),
                           datetime.fromtimestamp(start).date().isoformat(), wh,
                           start=start, end=end, reason=reason))
    return out


def _schedule_root(node_id: int, schedule_node: int | None, labels: Labels) -> int | None:
    """Where a schedule and the analysed node meet: the lower of the two, None if apart."""
    if schedule_node is None:
        return node_id

    def chain(n: int) -> list[int]:
        out = []
        current: int | None = n
        while current is not None and current in labels.nodes:
            out.append(current)
            current = labels.nodes[current][0]
        return out

    if schedule_node in chain(node_id):
        return node_id
    if node_id in chain(schedule_node):
        return schedule_node
    return None
