"""Energy analysis over a real SQLite database: four rooms in two buildings with 60 days of
15-minute and daily energy, a tripped room that kept using energy, a room lit during
lights-out, last year's month; daily sums, the intraday curve, the ranking's shares, the
anomaly marks, and cancelling."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import pytest

from app.core import energy_analysis as ea
from app.core.progress import Progress
from app.errors import Cancelled, UserFacingError
from app.storage import campus, rules
from app.storage.models import ControlLog, DailyEnergy, IntervalEnergy, Outbox, database
from tests.helpers import operator

VIEWER = operator("viewer")
LAST = date(2026, 11, 30)
FIRST = LAST - timedelta(days=59)
SPIKE = date(2026, 11, 20)  # room 1-101 uses 5x its usual that day
TRIPPED = date(2026, 11, 25)  # room 1-102 tripped 12:00-18:00 and used energy anyway
NIGHT = date(2026, 11, 10)  # an operator tripped 2-201 at 00:00, closed it at 03:00


def _t(day: date, hh: int = 0, mm: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hh, mm).timestamp())


def _per_slot(room: str, day: date, slot: int) -> int:
    """Wh room ``room`` uses in quarter hour ``slot`` of ``day``."""
    hour = slot // 4
    if room == "1-101":
        return 100 * (5 if day == SPIKE else 1)  # 9.6 kWh a day; 48 kWh the spike day
    if room == "1-102":
        return 50  # all day, also while it was tripped
    if room == "1-103":
        return 30 if 8 <= hour < 12 else 0  # mornings only: nothing while tripped
    return 40 if hour >= 23 or hour < 6 else 0  # 2-201: at night, in lights-out


@pytest.fixture
def db(tmp_path):
    from app.storage.db import open_database

    open_database(tmp_path / "e.db")
    root = campus.add_node(None, "campus", "校园")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    a = campus.add_node(root, "building", "1号楼")
    floor = campus.add_node(a, "floor", "1F")
    b = campus.add_node(root, "building", "2号楼")
    nodes, meters = {}, {}
    for k, (parent, code) in enumerate(((floor, "1-101"), (floor, "1-102"), (floor, "1-103"),
                                        (b, "2-201")), start=1):
        nodes[code] = campus.add_node(parent, "room", code, code)
        meters[code] = campus.add_meter(bus, k, "acrel-ddsy1352", f"31{k:09d}", nodes[code])
    intervals, daily = [], []
    for n in range(60):
        day = FIRST + timedelta(days=n)
        t0 = _t(day)
        for code, meter in meters.items():
            total = 0
            for slot in range(96):
                wh = _per_slot(code, day, slot)
                if wh:
                    intervals.append((meter, t0 + slot * 900, wh))
                    total += wh
            if total:
                daily.append((meter, day.isoformat(), total))
    for day in range(1, 31):  # last November, 1-101 only: 5 kWh a day
        daily.append((meters["1-101"], date(2025, 11, day).isoformat(), 5_000))
    with database.atomic():
        for k in range(0, len(intervals), 500):
            IntervalEnergy.insert_many(intervals[k:k + 500], fields=[
                IntervalEnergy.meter, IntervalEnergy.start, IntervalEnergy.energy_wh]).execute()
        DailyEnergy.insert_many(daily, fields=[DailyEnergy.meter, DailyEnergy.day,
                                               DailyEnergy.energy_wh]).execute()
        for code in ("1-102", "1-103"):
            ControlLog.insert(t=_t(TRIPPED, 12), meter=meters[code], action="trip",
                              reason="power_limit").execute()
            ControlLog.insert(t=_t(TRIPPED, 18), meter=meters[code], action="close",
                              reason="power_limit").execute()
    for action, hh in (("trip", 0), ("close", 3)):  # through the outbox, not the station's
        Outbox.insert(meter=meters["2-201"], action=action, state="applied",
                      created_at=_t(NIGHT, hh) - 5, updated_at=_t(NIGHT, hh)).execute()
    Outbox.insert(meter=meters["2-201"], action="trip", state="failed",  # never tripped
                  created_at=_t(NIGHT, 4), updated_at=_t(NIGHT, 4)).execute()
    rules.save_schedule("lights-out B", b, "", [{"days": [0, 1, 2, 3, 4, 5, 6],
                                                   "off": "23:00", "on": "06:00"}], True, "t")
    return {"root": root, "a": a, "floor": floor, "b": b, **nodes}


def test_daily_use_sums_every_room_under_the_node(db):
    use = ea.daily_use(VIEWER, db["a"], FIRST, LAST)
    assert len(use.days) == 60 and use.days[0].day == FIRST.isoformat()
    by_day = {d.day: d.wh for d in use.days}
    usual = 9_600 + 4_800 + 16 * 30
    assert by_day[(SPIKE - timedelta(days=1)).isoformat()] == usual
    assert by_day[SPIKE.isoformat()] == usual + 4 * 9_600
    campus_use = ea.daily_use(VIEWER, db["root"], FIRST, LAST)
    assert campus_use.total_wh == use.total_wh + 60 * 28 * 40
    room = ea.daily_use(VIEWER, db["1-103"], LAST, LAST)
    assert [(d.day, d.wh) for d in room.days] == [(LAST.isoformat(), 480)]
    # days before any data are there, at 0
    early = ea.daily_use(VIEWER, db["a"], FIRST - timedelta(days=2), FIRST)
    assert [d.wh for d in early.days] == [0, 0, usual]


def test_intraday_curve_has_96_quarter_hours(db):
    curve = ea.intraday(VIEWER, db["floor"], SPIKE)
    assert len(curve.slot_wh) == 96
    assert curve.slot_wh[0] == 500 + 50 and curve.slot_wh[8 * 4] == 500 + 50 + 30
    assert curve.total_wh == ea.daily_use(VIEWER, db["floor"], SPIKE, SPIKE).total_wh
    assert ea.Intraday.slot_label(95) == "23:45"


def test_month_against_last_year_where_data_exists(db):
    month = ea.month_vs_last_year(VIEWER, db["1-101"], date(2026, 11, 15))
    assert (month.month, month.last_year) == ("2026-11", "2025-11")
    assert len(month.days) == 30
    assert month.last_year_total_wh == 30 * 5_000
    assert month.total_wh == 30 * 9_600 + 4 * 9_600
    assert round(month.change_percent) == round((month.total_wh - 150_000) * 100 / 150_000)
    other = ea.month_vs_last_year(VIEWER, db["2-201"], date(2026, 11, 1))
    assert other.last_year_total_wh is None and other.change_percent is None


def test_ranking_shares_add_up_to_100_percent(db):
    ranking = ea.top_consumers(VIEWER, db["root"], FIRST, LAST, limit=10)
    assert [r.room for r in ranking.rooms] == ["1-101", "1-102", "2-201", "1-103"]
    assert sum(r.wh for r in ranking.rooms) == ranking.total_wh
    assert sum(r.share_permille for r in ranking.rooms) + ranking.others_permille == 1000
    assert ranking.rooms[0].path == "1号楼 › 1F › 1-101"
    top2 = ea.top_consumers(VIEWER, db["root"], FIRST, LAST, limit=2)
    assert len(top2.rooms) == 2 and top2.others_count == 2
    assert sum(r.share_permille for r in top2.rooms) + top2.others_permille == 1000
    assert sum(r.wh for r in top2.rooms) + top2.others_wh == top2.total_wh


def test_anomalies_find_the_high_day_use_while_tripped_and_in_lights_out(db):
    marks = ea.anomalies(VIEWER, db["root"], FIRST, LAST)
    high = [m for m in marks if m.kind == "high_day"]
    assert [(m.room, m.day, m.wh, m.norm_wh) for m in high] == [
        ("1-101", SPIKE.isoformat(), 48_000, 9_600)]
    held = [m for m in marks if m.kind == "held_use"]
    # 12:00-18:00 tripped: the quarter the trip fell in left out, 23 quarters at 50 Wh;
    # 00:00-03:00 by an operator: 10 quarters at 40 Wh (the close was queued at 02:59:55, its
    # quarter left out too; the failed trip after it is no trip)
    assert [(m.room, m.day, m.wh, m.reason) for m in held] == [
        ("2-201", NIGHT.isoformat(), 10 * 40, "operator"),
        ("1-102", TRIPPED.isoformat(), 23 * 50, "power_limit")]
    assert held[1].reason_text != "power_limit" and "limit" in held[1].reason_text
    lit = [m for m in marks if m.kind == "schedule_use"]
    assert lit and {m.room for m in lit} == {"2-201"} and all(m.reason == "lights-out B"
                                                               for m in lit)
    # the night the operator tripped 2-201 in (it began on the 9th) is marked as used while
    # tripped, not again as lights-out use; the night that begins on the 10th is
    lit_days = {m.day for m in lit}
    assert (NIGHT - timedelta(days=1)).isoformat() not in lit_days
    assert NIGHT.isoformat() in lit_days and len(lit_days) == 60 - 1
    assert len(lit) == 61 - 1  # the night before the range is cut to its first morning
    assert all(m.wh == 27 * 40 for m in lit if FIRST < date.fromisoformat(m.day) < LAST)
    # the analysis of building 1 has no lights-out marks (the schedule is building 2's)
    assert {m.kind for m in ea.anomalies(VIEWER, db["a"], FIRST, LAST)} == {"high_day",
                                                                          "held_use"}
    assert high[0].kind_text == "far above its norm"


def test_analyse_asks_everything_and_reports_progress(db):
    seen: list[tuple[int, int]] = []
    result = ea.analyse(VIEWER, db["a"], FIRST, LAST, day=SPIKE, top=3,
                        progress=Progress(lambda n, total, _text: seen.append((n, total))))
    assert result.node == "1号楼" and result.kind == "building"
    assert result.intraday.day == SPIKE.isoformat() and result.month.month == "2026-11"
    assert SPIKE.isoformat() in result.anomaly_days and TRIPPED.isoformat() in \
        result.anomaly_days
    assert seen[-1][0] == seen[-1][1] and all(n <= total for n, total in seen)
    assert [n for n, _t in seen] == sorted(n for n, _t in seen)


def test_cancel_stops_the_work(db):
    cancelled = Progress()
    cancelled.cancel()
    with pytest.raises(Cancelled):
        ea.analyse(VIEWER, db["root"], FIRST, LAST, progress=cancelled)
    steps: list[int] = []
    progress = Progress(lambda n, _total, _text: steps.append(n))

    def cancel_after_first(n, _total, _text):
        steps.append(n)
        progress.cancel()

    progress._listener = cancel_after_first
    with pytest.raises(Cancelled):
        ea.analyse(VIEWER, db["root"], FIRST, LAST, progress=progress)
    assert steps == [0]


def test_refusals(db):
    with pytest.raises(UserFacingError):
        ea.daily_use(VIEWER, db["a"], LAST, FIRST)
    with pytest.raises(UserFacingError):
        ea.daily_use(VIEWER, 99_999, FIRST, LAST)
    with pytest.raises(UserFacingError):
        ea.daily_use(VIEWER, db["a"], LAST - timedelta(days=ea.MAX_DAYS), LAST)
    with pytest.raises(TypeError):  # the acting operator, not a name
        ea.daily_use("viewer", db["a"], FIRST, LAST)


def test_kwh_text_is_exact():
    assert ea.kwh(0) == "0.0" and ea.kwh(1_949) == "1.9" and ea.kwh(1_950) == "2.0"
    assert ea.kwh(9_999, 2) == "10.00" and ea.kwh(None) == "" and ea.kwh(-1_500) == "-1.5"
    assert ea.kwh(12_345, 0) == "12"


def test_a_campus_query_is_quick(db):
    started = time.perf_counter()
    ea.analyse(VIEWER, db["root"], FIRST, LAST)
    assert time.perf_counter() - started < 2.0


def test_the_workbook_holds_the_tables_as_numbers(db, tmp_path):
    import openpyxl

    from app.core.energy_export import write_workbook

    analysis = ea.analyse(VIEWER, db["root"], FIRST, LAST, day=SPIKE)
    path = write_workbook(analysis, tmp_path / "e.xlsx")
    wb = openpyxl.load_workbook(path)
    daily = wb["Daily use"]
    assert daily.freeze_panes == "A2" and daily.max_row == 61
    values = [daily.cell(row=r, column=2).value for r in range(2, 62)]
    assert all(isinstance(v, (int, float)) for v in values)
    assert round(sum(values) * 1000) == analysis.daily.total_wh
    spike_row = 2 + (SPIKE - FIRST).days
    assert "far above its norm" in daily.cell(row=spike_row, column=3).value
    intraday = wb["Intraday"]
    assert intraday.max_row == 97 and intraday.cell(row=2, column=2).number_format == "#,##0.000"
    top = wb["Top consumers"]
    assert [top.cell(row=r, column=2).value for r in range(2, 6)] == ["1-101", "1-102", "2-201",
                                                                     "1-103"]
    assert abs(sum(top.cell(row=r, column=5).value for r in range(2, 6)) - 1) < 1e-9
    marks = wb["Anomalies"]
    assert {marks.cell(row=r, column=4).value for r in range(2, marks.max_row + 1)} == {
        "far above its norm", "used while tripped", "used during lights-out"}
    assert not list(tmp_path.glob("*.part"))
