"""Time control: weekly schedules that trip a building's or a tariff group's rooms, e.g. off
23:00-06:00 Sunday to Thursday, with holidays and exceptions.

A window belongs to the day it starts on: "Sun-Thu 23:00-06:00" is in force from Sunday 23:00
to Monday 06:00, ..., Thursday 23:00 to Friday 06:00; an end at or before the start crosses
midnight. An exception for a day replaces the windows *starting* that day: none (a holiday:
the night of 2026-12-31 is free) or others (exam week: 01:00-06:00). An exception of one
schedule beats one for every schedule on the same day. Times are the station's local time.

``apply`` (run every few seconds by the reading service) trips a schedule's rooms when a window
begins (a ``schedule`` hold, ``core/relay_holds``, and one ``schedule_trip`` alarm per window)
and ends the holds when it ends; a window is applied once, so a room a warden closes by hand at
midnight stays on until the next window. Keep power overrides schedules like every automatic
trip.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock

from app.core import control, relay_holds
from app.core.alarms import clear_alarm_ids, raise_alarm
from app.core.audit import act
from app.core.operators import Operator, Permission
from app.errors import UserFacingError
from app.i18n import _
from app.storage import alarms as alarm_store
from app.storage import holds as hold_store
from app.storage import rules as store
from app.storage.models import database
from app.storage.rules import ExceptionRecord, ScheduleRecord

log = logging.getLogger("voltkeeper.control")

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TEXT = re.compile(r"^\s*(?P<days>[A-Za-z,\-]+)\s+(?P<off>\d{1,2}:\d{2})\s*-\s*"
                   r"(?P<on>\d{1,2}:\d{2})\s*$")


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # Monday 0 .. Sunday 6: the days it starts on
    off: clock
    on: clock

    def as_json(self) -> dict:
        return {"days": sorted(self.days), "off": self.off.strftime("%H:%M"),
                "on": self.on.strftime("%H:%M")}

    def span(self, day: date) -> tuple[datetime, datetime]:
        """When the window starting on ``day`` begins and ends."""
        start = datetime.combine(day, self.off)
        end_day = day if self.on > self.off else day + timedelta(days=1)
        return start, datetime.combine(end_day, self.on)


def _clock(text: str) -> clock:
    try:
        hours, minutes = (int(x) for x in text.split(":"))
        return clock(hours % 24 if hours == 24 and minutes == 0 else hours, minutes)
    except ValueError:
        raise UserFacingError(_("{text!r} is not a time of day (use 23:00)").format(
            text=text)) from None


def _days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.lower().split(","):
        ends = part.split("-")
        try:
            idx = [DAY_NAMES.index(e.strip()[:3]) for e in ends]
        except ValueError:
            raise UserFacingError(_("{text!r} is not a day or a range of days (use Sun-Thu or "
                                    "Mon,Wed)").format(text=part)) from None
        if len(idx) == 1:
            out.add(idx[0])
        elif len(idx) == 2:
            d = idx[0]
            while True:
                out.add(d)
                if d == idx[1]:
                    break
                d = (d + 1) % 7
        else:
            raise UserFacingError(_("{text!r} is not a day or a range of days (use Sun-Thu or "
                                    "Mon,Wed)").format(text=part))
    return frozenset(out)


def parse_window(text: str, *, every_day: bool = False) -> Window:
    """"Sun-Thu 23:00-06:00" (or "23:00-06:00" with ``every_day``, for an exception)."""
    if every_day and re.fullmatch(r"\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*", text):
        text = "mon-sun " + text
    m = _TEXT.match(text)
    if m is None:
        raise UserFacingError(_("{text!r} is not a window (use: Sun-Thu 23:00-06:00)")
                              .format(text=text))
    return Window(_days(m["days"]), _clock(m["off"]), _clock(m["on"]))


def windows_from_json(rows: list[dict]) -> list[Window]:
    return [Window(frozenset(int(d) for d in r["days"]), _clock(r["off"]), _clock(r["on"]))
            for r in rows]


def window_in_force(windows: list[Window], exceptions: dict[date, list[Window]],
                    at: datetime) -> tuple[datetime, datetime] | None:
    """The (start, end) of the window in force at ``at``, or None. ``exceptions``: per day,
    the windows that replace that day's (an empty list: none)."""
    for day in (at.date(), at.date() - timedelta(days=1)):
        if day in exceptions:
            todays = [replace_day(w, day) for w in exceptions[day]]
        else:
            todays = [w for w in windows if day.weekday() in w.days]
        for w in todays:
            start, end = w.span(day)
            if start <= at < end:
                return start, end
    return None


def replace_day(w: Window, day: date) -> Window:
    return Window(frozenset({day.weekday()}), w.off, w.on)


# -- operations ---------------------------------------------------------------------------------
def save_schedule(operator: Operator, name: str, windows: list[Window], *,
                  building: str | None = None, group: str | None = None,
                  enabled: bool = True) -> int:
    """Create or change a schedule for a building (any node of the tree by name) or a tariff
    group."""
    name = name.strip()
    if not name:
        raise UserFacingError(_("give the schedule a name"))
    if (building is None) == (group is None):
        raise UserFacingError(_("a schedule is for a building or for a tariff group"))
    if not windows:
        raise UserFacingError(_("a schedule needs at least one window"))
    node_id = None
    if building is not None:
        node_id = control.named_node(building)
    else:
        control.select_nodes(group=group)
    before = store.schedule_named(name)
    with act(operator, Permission.CONTROL_BATCH, "schedule_save", target=name,
             before=None if before is None else before.windows) as a:
        schedule_id = store.save_schedule(name, node_id, group or "",
                                          [w.as_json() for w in windows], enabled,
                                          operator.name)
        a.after = {"windows": [w.as_json() for w in windows], "building": building,
                   "group": group, "enabled": enabled}
    return schedule_id


def delete_schedule(operator: Operator, name: str) -> None:
    """Remove a schedule; the rooms it holds now are released."""
    found = _schedule(name)
    with act(operator, Permission.CONTROL_BATCH, "schedule_delete", target=name,
             before=found.windows):
        relay_holds.release(None, "schedule", source=found.name)
        store.delete_schedule(found.id)


def add_exception(operator: Operator, day: date, windows: list[Window], *,
                  schedule: str | None = None, note: str = "") -> int:
    """A day a schedule (None: every schedule) does something else: ``windows`` replace the
    windows starting that day; none is a holiday."""
    schedule_id = None if schedule is None else _schedule(schedule).id
    with act(operator, Permission.CONTROL_BATCH, "schedule_exception",
             target=f"{schedule or '*'} {day.isoformat()}") as a:
        exception_id = store.save_exception(schedule_id, day.isoformat(),
                                            [w.as_json() for w in windows], note.strip())
        a.after = {"windows": [w.as_json() for w in windows], "note": note.strip()}
    return exception_id


def remove_exception(operator: Operator, exception_id: int) -> None:
    with act(operator, Permission.CONTROL_BATCH, "schedule_exception_remove",
             target=str(exception_id)):
        if not store.delete_exception(exception_id):
            raise UserFacingError(_("no exception {id}").format(id=exception_id))


def _schedule(name: str) -> ScheduleRecord:
    found = store.schedule_named(name.strip())
    if found is None:
        raise UserFacingError(_("no schedule named {name!r}").format(name=name))
    return found


# -- the reading service's turn -----------------------------------------------------------------
def exceptions_of(schedule_id: int, every: list[ExceptionRecord] | None = None
                  ) -> dict[date, list[Window]]:
    """The schedule's exceptions by day (its own beat those for every schedule); ``every``:
    all exceptions, when the caller has read them already."""
    out: dict[date, list[Window]] = {}
    every = store.exceptions() if every is None else every
    for e in sorted(every, key=lambda e: e.schedule_id is not None):
        if e.schedule_id in (None, schedule_id):
            out[date.fromisoformat(e.day)] = windows_from_json(e.windows)
    return out


def target_meters(s: ScheduleRecord) -> list[int]:
    if s.node_id is not None:
        rooms = control.select_rooms(node_ids=[s.node_id])
    else:
        rooms = control.select_rooms(group=s.tariff_group)
    return sorted(hold_store.enabled_meters_of_nodes(rooms))


#: Meters held or released per transaction: the write lock is never held for long, so desks
#: and the buses go on while lights-out begins for 10,000 rooms.
CHUNK = 200
#: Schedules whose building or group has no room, told once (not every turn).
_told_empty: set[str] = set()


def apply(now: float | None = None) -> int:
    """Begin and end the schedules' windows (see the module's note), in chunks. Returns how
    many schedules changed."""
    now = time.time() if now is None else now
    at = datetime.fromtimestamp(now)
    every, excepts = store.schedules(), store.exceptions()
    _release_orphans({x.name for x in every}, now)
    changed = 0
    for s in every:
        span = None
        if s.enabled:
            span = window_in_force(windows_from_json(s.windows), exceptions_of(s.id, excepts),
                                   at)
        start = None if span is None else span[0].timestamp()
        if start == s.applied:
            continue
        meters: list[int] = []
        if start is not None:
            try:
                meters = target_meters(s)
                _told_empty.discard(s.name)
            except UserFacingError as exc:  # its building or group has no room (any more)
                if s.name not in _told_empty:
                    log.warning("schedule %s: %s", s.name, exc)
                    _told_empty.add(s.name)
        if _apply_one(s, meters, start, span, now):
            changed += 1
    return changed


def _apply_one(s: ScheduleRecord, meters: list[int], start: float | None,
               span: tuple[datetime, datetime] | None, now: float) -> bool:
    """One schedule's change, chunk by chunk, each chunk in its own transaction after checking
    that the schedule is still as read (an operator may change or delete it meanwhile: the
    next turn then works from what it is now). False when it was given up."""
    held = {h.meter_id for h in hold_store.holds(reason="schedule", source=s.name)}
    if start is None:  # the window ended (or the schedule was disabled)
        work = [(relay_holds.release, sorted(held))]
    else:  # a window began, or the next one straight after the last
        targeted = set(meters)
        work = [(relay_holds.release, sorted(held - targeted)),
                (relay_holds.renew, sorted(held & targeted)),
                (relay_holds.hold, sorted(targeted - held))]
    for action, ids in work:
        for k in range(0, len(ids), CHUNK):
            with database.atomic():
                if not _unchanged(s):
                    return False
                chunk = ids[k:k + CHUNK]
                if action is relay_holds.hold:
                    action(chunk, "schedule", source=s.name, now=now,
                           detail=span[1].strftime("%Y-%m-%d %H:%M"))
                else:
                    action(chunk, "schedule", source=s.name, now=now)
    with database.atomic():
        if not _unchanged(s):
            return False
        _alarm(s, start, span, len(meters), now)
        store.mark_applied(s.id, start)
    return True


def _unchanged(s: ScheduleRecord) -> bool:
    now = store.schedule_named(s.name)
    return now is not None and now.id == s.id and now.applied == s.applied \
        and now.windows == s.windows and now.enabled == s.enabled \
        and (now.node_id, now.tariff_group) == (s.node_id, s.tariff_group)


def _alarm(s: ScheduleRecord, start: float | None, span: tuple[datetime, datetime] | None,
           meters: int, now: float) -> None:
    """One ``schedule_trip`` alarm per window, cleared when it ends."""
    clear_alarm_ids([a.id for a in alarm_store.find_alarms(kind="schedule_trip", limit=10_000)
                     if json.loads(a.data or "{}").get("schedule") == s.name], t=now)
    if start is not None and span is not None:
        raise_alarm("schedule_trip", 1, {"schedule": s.name, "rooms": meters,
                                         "until": span[1].strftime("%H:%M")}, once=False, t=now)
        log.info("schedule %s: %d meters off until %s", s.name, meters, span[1])
    else:
        log.info("schedule %s ended", s.name)


def _release_orphans(names: set[str], now: float) -> None:
    """Holds of a schedule that no longer exists (deleted while it was being applied) end;
    ``names``: the schedules there are."""
    for source in hold_store.hold_sources("schedule") - names:
        relay_holds.release(None, "schedule", source=source, now=now)
