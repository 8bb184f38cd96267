"""Time control: a window across midnight belongs to the day it starts on, an exception replaces
a day's windows (a holiday: none), and the reading service's turn trips a building's rooms when
lights-out begins, once, and closes them when it ends."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from app.core import automatic, schedules
from app.core.alarms import alarm_list
from app.core.schedules import parse_window, window_in_force
from app.errors import UserFacingError
from app.storage import campus
from app.storage.db import open_database
from app.storage.models import LatestReading, Outbox, RelayHold
from tests.helpers import operator

ADMIN = operator()
LIGHTS_OUT = [parse_window("Sun-Thu 23:00-06:00")]
# 2026-12-06 is a Sunday
SUN, MON, THU, FRI, SAT = (date(2026, 12, d) for d in (6, 7, 10, 11, 12))


def _at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm)


def test_parsing_days_and_times():
    w = parse_window("Sun-Thu 23:00-06:00")
    assert w.days == frozenset({6, 0, 1, 2, 3}) and w.as_json() == {
        "days": [0, 1, 2, 3, 6], "off": "23:00", "on": "06:00"}
    assert parse_window("mon,wed 12:30-13:30").days == frozenset({0, 2})
    assert parse_window("23:00-06:00", every_day=True).days == frozenset(range(7))
    for bad in ("Sun-Thu 25:00-06:00", "Someday 23:00-06:00", "23:00-06:00", "Sun 23:00"):
        with pytest.raises(UserFacingError):
            parse_window(bad)


def test_a_window_across_midnight_belongs_to_the_day_it_starts_on():
    assert window_in_force(LIGHTS_OUT, {}, _at(SUN, 22, 59)) is None
    start, end = window_in_force(LIGHTS_OUT, {}, _at(SUN, 23, 0))
    assert (start, end) == (_at(SUN, 23), _at(MON, 6))
    assert window_in_force(LIGHTS_OUT, {}, _at(MON, 5, 59))[0] == _at(SUN, 23)
    assert window_in_force(LIGHTS_OUT, {}, _at(MON, 6, 0)) is None
    # Thursday night runs into Friday morning; Friday and Saturday nights are free
    assert window_in_force(LIGHTS_OUT, {}, _at(FRI, 3))[0] == _at(THU, 23)
    assert window_in_force(LIGHTS_OUT, {}, _at(FRI, 23, 30)) is None
    assert window_in_force(LIGHTS_OUT, {}, _at(SAT, 3)) is None
    assert window_in_force(LIGHTS_OUT, {}, _at(SAT, 23, 30)) is None


def test_a_holiday_frees_the_night_that_starts_on_it_and_an_exception_replaces_it():
    holiday = {SUN: []}
    assert window_in_force(LIGHTS_OUT, holiday, _at(SUN, 23, 30)) is None
    assert window_in_force(LIGHTS_OUT, holiday, _at(MON, 2)) is None  # the same night
    assert window_in_force(LIGHTS_OUT, holiday, _at(MON, 23, 30))[0] == _at(MON, 23)
    exams = {MON: [parse_window("01:00-06:00", every_day=True)]}  # a later lights-out
    assert window_in_force(LIGHTS_OUT, exams, _at(MON, 23, 30)) is None
    assert window_in_force(LIGHTS_OUT, exams, _at(MON, 1, 30))[0] == _at(MON, 1)


@pytest.fixture
def campus_db(tmp_path):
    db = open_database(tmp_path / "s.db")
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    building = campus.add_node(root, "building", "1号宿舍楼")
    floor = campus.add_node(building, "floor", "1F")
    other = campus.add_node(root, "building", "2号宿舍楼")
    meters = []
    for k, parent in enumerate((floor, floor, other), start=1):
        node = campus.add_node(parent, "room", f"r{k}", f"1-10{k}")
        meters.append(campus.add_meter(bus, k, "acrel-ddsy1352", f"3100000000{k}", node))
        LatestReading.insert(meter=meters[-1], read_at=0, control_mode="auto",
                             online=True).execute()
    yield meters
    db.close()


def test_lights_out_trips_the_building_once_and_closes_it_in_the_morning(campus_db):
    a, b, _elsewhere = campus_db
    schedules.save_schedule(ADMIN, "lights-out", LIGHTS_OUT, building="1号宿舍楼")
    schedules.add_exception(ADMIN, FRI, [], note="no effect: Friday has no window")
    assert automatic.turn(_at(SUN, 22, 59).timestamp()).schedules_changed == 0
    assert automatic.turn(_at(SUN, 23, 0).timestamp()).schedules_changed == 1
    tripped = {o.meter_id for o in Outbox.select() if o.action == "trip"}
    assert tripped == {a, b}
    assert [x.text for x in alarm_list(ADMIN, kind="schedule_trip")] == [
        "schedule lights-out: 2 meter(s) tripped until 06:00"]
    assert automatic.turn(_at(MON, 1).timestamp()).schedules_changed == 0  # applied once
    assert Outbox.select().count() == 2
    assert automatic.turn(_at(MON, 6).timestamp()).schedules_changed == 1
    assert not RelayHold.select().exists() and alarm_list(ADMIN, kind="schedule_trip") == []
    # the trips were never sent (nobody polls here): each is followed by a close (never
    # withdrawn: a bus could be sending it that moment), so the rooms end on
    assert sorted((o.meter_id, o.action) for o in Outbox.select()) == [
        (a, "close"), (a, "trip"), (b, "close"), (b, "trip")]


def test_a_holiday_exception_keeps_the_night_free(campus_db):
    schedules.save_schedule(ADMIN, "lights-out", LIGHTS_OUT, building="1号宿舍楼")
    schedules.add_exception(ADMIN, SUN, [], schedule="lights-out", note="元旦")
    assert automatic.turn(_at(SUN, 23, 30).timestamp()).schedules_changed == 0
    assert automatic.turn(_at(MON, 23, 30).timestamp()).schedules_changed == 1
    assert RelayHold.select().count() == 2


def test_one_window_straight_into_the_next_keeps_the_rooms_off(campus_db):
    _a, _b, _elsewhere = campus_db
    schedules.save_schedule(ADMIN, "lights-out", LIGHTS_OUT, building="1号宿舍楼")
    schedules.add_exception(ADMIN, MON, [parse_window("01:00-06:00", every_day=True)],
                            schedule="lights-out", note="exams")
    automatic.turn(_at(SUN, 23).timestamp())
    Outbox.update(state="applied").execute()
    LatestReading.update(control_mode="forced_trip", read_at=_at(SUN, 23, 1).timestamp()).execute()
    # at 01:00 Monday's own window begins inside Sunday's: no close, no second trip
    assert automatic.turn(_at(MON, 1).timestamp()).schedules_changed == 1
    assert [o.action for o in Outbox.select()] == ["trip", "trip"]
    assert RelayHold.select().count() == 2
    assert len(alarm_list(ADMIN, kind="schedule_trip")) == 1


def test_holds_of_a_deleted_schedule_end(campus_db):
    schedules.save_schedule(ADMIN, "lights-out", LIGHTS_OUT, building="1号宿舍楼")
    automatic.turn(_at(SUN, 23).timestamp())
    # deleted behind the turn's back (as if it committed between the turn's chunks)
    from app.storage import rules
    rules.delete_schedule(rules.schedule_named("lights-out").id)
    assert RelayHold.select().count() == 2
    automatic.turn(_at(SUN, 23, 5).timestamp())
    assert not RelayHold.select().exists()
