"""The energy analysis view, opened from the Station menu on the seed's campus with 60 days of
stored energy: select a building and its charts and tables fill (a spike day marked and listed),
the view follows the tree, the tables export to a workbook with numeric cells, a long query is
cancelled while the window goes on working; screenshots in English and Chinese."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import openpyxl
import pytest
from PySide6.QtCore import QTimer

from app.core import energy_analysis as ea
from app.storage import campus
from app.storage.models import DailyEnergy, IntervalEnergy, database
from app.ui.language import apply_language

TODAY = date.today()
FIRST = TODAY - timedelta(days=29)


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day).timestamp())


def seed_energy(spike_room: int) -> None:
    """60 days of daily use for every room (and last year's month), and the quarter hours of
    the last three days; ``spike_room`` uses 6x its usual on the day before yesterday."""
    meters = [(m.id, m.node_id) for m in campus.meters() if m.node_id is not None]
    spike = TODAY - timedelta(days=2)
    daily, intervals = [], []
    for k, (meter, node) in enumerate(meters):
        usual = 1_500 + (k * 137) % 4_000
        for n in range(60):
            day = TODAY - timedelta(days=n)
            factor = 6 if node == spike_room and day == spike else 1
            daily.append((meter, day.isoformat(), usual * factor + (n * 31) % 400))
        for n in range(28):
            day = TODAY.replace(day=1) - timedelta(days=365) + timedelta(days=n)
            daily.append((meter, day.isoformat(), usual * 9 // 10))
        for n in range(3):
            day = TODAY - timedelta(days=n)
            t0 = _midnight(day)
            for slot in range(96):
                hour = slot // 4
                wh = usual // 96 * (3 if 18 <= hour < 23 else 1 if 7 <= hour < 18 else 0)
                if wh:
                    intervals.append((meter, t0 + slot * 900, wh))
    with database.atomic():
        for k in range(0, len(daily), 1000):
            DailyEnergy.insert_many(daily[k:k + 1000], fields=[
                DailyEnergy.meter, DailyEnergy.day, DailyEnergy.energy_wh]).on_conflict_replace() \
                .execute()
        for k in range(0, len(intervals), 1000):
            IntervalEnergy.insert_many(intervals[k:k + 1000], fields=[
                IntervalEnergy.meter, IntervalEnergy.start, IntervalEnergy.energy_wh]).execute()


def _buildings(window) -> list[int]:
    idx = window.ctx.index
    return [n for n, rec in idx.nodes.items() if rec.kind == "building"]


def _open_view(window, qtbot, node: int):
    assert window.tree.select_node(node)
    window.trigger("energy")
    view = window.dialogs["energy"]
    qtbot.waitUntil(lambda: view.analysis is not None and view.job is None, timeout=10_000)
    return view


def test_a_building_fills_the_charts_and_tables(qtbot, seed_campus, open_window, shoot):
    window = open_window(seed_campus)
    building = _buildings(window)[0]
    spike_room = window.ctx.index.leaves_under(building)[3]
    seed_energy(spike_room)
    view = _open_view(window, qtbot, building)
    assert view.analysis.node_id == building
    assert view.daily_table.rowCount() == 30
    heights = view.daily_bars.opts["height"]
    assert len(heights) == 30 and min(heights) > 0
    spike = (TODAY - timedelta(days=2)).isoformat()
    row = [view.daily_table.item(r, 0).text() for r in range(30)].index(spike)
    assert window.ctx.index.nodes[spike_room].code in view.daily_table.item(row, 2).text()
    assert view.anomaly_table.rowCount() >= 1
    assert view.anomaly_table.item(0, 0).text() == spike
    # the table beside each chart says what the chart draws
    total = sum(d.wh for d in view.analysis.daily.days)
    assert view.status.text().count(ea.kwh(total)) == 1
    assert view.intraday_table.rowCount() == 96
    assert view.month_table.rowCount() >= 28
    assert "%" in view.month_summary.text()
    assert view.rank_table.rowCount() == 11  # top 10 and the others
    assert view.rank_table.item(10, 3).text().endswith("%")
    assert "1号" in view.node_label.text() or view.node_label.text()
    shoot(view, "energy_daily_en")
    for tab, name in ((1, "intraday"), (2, "month"), (3, "ranking")):
        view.tabs.setCurrentIndex(tab)
        shoot(view, f"energy_{name}_en")
    # a double-click on a day shows its curve
    view.tabs.setCurrentIndex(0)
    view.daily_table.cellDoubleClicked.emit(28, 0)
    qtbot.waitUntil(lambda: view.analysis.intraday.day == view.analysis.daily.days[28].day,
                    timeout=5_000)
    assert view.tabs.currentIndex() == 1
    # the view follows the tree's selection
    other = _buildings(window)[1]
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        window.tree.select_node(other)
    assert view.analysis.node_id == other
    room = window.ctx.index.leaves_under(other)[0]
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        window.tree.select_node(room)
    assert view.rank_table.rowCount() == 1 and view.rank_table.item(0, 3).text() == "100.0 %"
    # the tree's context menu asks for a node too (the same screen)
    assert window.tree.menu_actions["energy"]
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        window.tree.nodeAction.emit(building, "energy")
    assert view.analysis.node_id == building and window.dialogs["energy"] is view


def test_export_writes_numbers_with_a_kwh_format(qtbot, seed_campus, open_window, tmp_path):
    window = open_window(seed_campus)
    building = _buildings(window)[0]
    seed_energy(window.ctx.index.leaves_under(building)[0])
    view = _open_view(window, qtbot, building)
    target = tmp_path / "energy.xlsx"
    with qtbot.waitSignal(view.exported, timeout=10_000) as blocker:
        view.export(target)
    assert blocker.args == [str(target)]
    wb = openpyxl.load_workbook(target)
    assert wb.sheetnames == ["Daily use", "Intraday", "Month vs last year", "Top consumers",
                             "Anomalies"]
    daily = wb["Daily use"]
    assert daily.freeze_panes == "A2"
    assert [c.value for c in daily[1]] == ["Day", "kWh", "Anomalies"]
    cells = [daily.cell(row=r, column=2) for r in range(2, 32)]
    assert all(isinstance(c.value, (int, float)) for c in cells)
    assert all(c.number_format == "#,##0.000" for c in cells)
    assert round(sum(c.value for c in cells) * 1000) == view.analysis.daily.total_wh
    top = wb["Top consumers"]
    shares = [top.cell(row=r, column=5).value for r in range(2, top.max_row + 1)]
    assert all(isinstance(s, (int, float)) for s in shares) and abs(sum(shares) - 1) < 1e-9
    assert top.cell(row=2, column=5).number_format == "0.0%"


def test_cancel_stops_a_long_query_and_the_window_keeps_working(qtbot, seed_campus,
                                                                open_window, monkeypatch):
    window = open_window(seed_campus)
    building = _buildings(window)[0]
    seed_energy(window.ctx.index.leaves_under(building)[0])
    view = _open_view(window, qtbot, building)
    shown = view.analysis
    slow = ea.store.daily_totals

    def daily_totals(*args):  # a slow disk: each month of days takes a while
        time.sleep(0.05)
        return slow(*args)

    monkeypatch.setattr(ea.store, "daily_totals", daily_totals)
    monkeypatch.setattr(ea, "DAYS_PER_STEP", 1)
    view.first.setDate(view.first.date().addDays(-900))
    view.show_button.click()
    job = view.job
    qtbot.waitUntil(lambda: view.bar.value() >= 3, timeout=10_000)
    assert view.cancel_button.isVisible() and not view.show_button.isEnabled()
    # the window answers meanwhile: its event loop runs, the tree selects
    ticks: list[int] = []
    QTimer.singleShot(0, lambda: ticks.append(1))
    qtbot.waitUntil(lambda: ticks == [1], timeout=1_000)
    window.tree.search.setText(window.ctx.index.nodes[building].name)
    started = time.monotonic()
    with qtbot.waitSignal(window.ctx.runner.jobDone, timeout=5_000,
                          check_params_cb=lambda j: j is job):
        view.cancel_button.click()
    assert time.monotonic() - started < 2
    assert job.cancelled and view.status.text() == "Cancelled."
    assert view.analysis is shown and view.show_button.isEnabled()
    assert not view.bar.isVisible()


@pytest.mark.parametrize("language", ["zh_CN"])
def test_screenshots_in_chinese(qtbot, seed_campus, open_window, shoot, language):
    window = open_window(seed_campus)
    building = _buildings(window)[0]
    seed_energy(window.ctx.index.leaves_under(building)[2])
    apply_language(language)
    view = _open_view(window, qtbot, building)
    shoot(view, f"energy_daily_{language}")
    for tab, name in ((1, "intraday"), (2, "month"), (3, "ranking")):
        view.tabs.setCurrentIndex(tab)
        shoot(view, f"energy_{name}_{language}")
