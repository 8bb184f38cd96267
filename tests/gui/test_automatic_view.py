"""The automatic-control screen (Station > Automatic control…) on the seed's campus in a real
SQLite file: a building's power limit, an allowed appliance, a schedule typed wrong then right,
a holiday, a limiting plan applied and undone, why meters are held off, and a cashier refused.
Everything it does goes through the core operations; what is checked is read back from the
database. Screenshots of every tab in English and in Chinese."""

from __future__ import annotations

import time
from datetime import date

import pytest
from PySide6.QtCore import QDate, QItemSelectionModel
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from app.core import control, limit_plans, power_limits, relay_holds, schedules
from app.storage import campus
from app.storage import holds as hold_store
from app.storage import rules as rule_store
from app.ui.language import apply_language
from app.views.automatic_forms import GROUP, ExceptionForm, PlanForm, ScheduleForm
from app.views.automatic_view import WHERE, AutomaticView
from tests.helpers import operator

BUILDING = "1号宿舍楼"


def _open(qtbot, window) -> AutomaticView:
    window.trigger("automatic")
    view = window.dialogs["automatic"]
    qtbot.waitUntil(lambda: view.snap is not None, timeout=10_000)
    return view


def _then_read(qtbot, view: AutomaticView, act) -> None:
    """Do ``act`` and wait until the view has read the rules again after it."""
    before = view.snap
    act()
    qtbot.waitUntil(lambda: view.snap is not before, timeout=10_000)


def _ok(form) -> None:
    form.buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def _answer(monkeypatch, answer=QMessageBox.StandardButton.Yes) -> list[str]:
    asked: list[str] = []

    def question(_parent, _title, text, *_a, **_k):
        asked.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


def _rooms_of(name: str) -> list[int]:
    return control.select_rooms(building=name)


def _column(table, col: int) -> list[str]:
    return [table.item(r, col).text() for r in range(table.rowCount())]


def test_a_buildings_limit_and_an_allowed_appliance(qtbot, seed_campus, open_window):
    window = open_window(seed_campus)
    view = _open(qtbot, window)
    tab = view.limits
    assert tab.table.rowCount() == 324  # the whole campus
    building = window.ctx.index.exact(BUILDING)
    tab.where.setCurrentIndex(tab.where.findData(building))
    rooms = _rooms_of(BUILDING)
    assert tab.table.rowCount() == len(rooms)
    tab.scope.setCurrentIndex(tab.scope.findData(WHERE))
    assert tab.scope.currentText() == f"Every room of {BUILDING} ({len(rooms)})"
    tab.limit.setValue(800)
    _then_read(qtbot, view, tab.set_button.click)
    assert view.message.text() == f"{BUILDING}: power limit 800 W set, sent to " \
                                  f"{len(rooms)} meters"
    assert rule_store.power_limits(rooms) == {n: 800 for n in rooms}
    assert set(_column(tab.table, 3)) == {"800 W"}
    assert tab.count.text() == f"{len(rooms)} rooms, {len(rooms)} with a limit"
    # two rooms picked in the table lose it again
    tab.find.setText("1-10")
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for row in (0, 2):
        tab.table.selectionModel().select(tab.table.model().index(row, 0), flags)
    picked = tab.selected_rooms()
    assert len(picked) == 2
    tab.scope.setCurrentIndex(tab.scope.findData("selected"))
    _then_read(qtbot, view, tab.remove_button.click)
    assert set(rule_store.power_limits(rooms)) == set(rooms) - set(picked)
    # the meters' own malicious-load rule for the same two
    tab.detect.setCurrentIndex(tab.detect.findData(True))
    tab.threshold.setValue(1500)
    _then_read(qtbot, view, tab.detect_button.click)
    assert view.message.text().endswith(": 4 settings sent to the meters")

    view.tabs.setCurrentWidget(view.appliances)
    ap = view.appliances
    ap.room.setText("1-101")
    ap.name.setText("电水壶")
    ap.rated.setValue(1200)
    _then_read(qtbot, view, ap.add_button.click)
    assert view.message.text() == "1-101: 电水壶 (1200 W) allowed"
    assert _column(ap.table, 1) == ["电水壶"] and _column(ap.table, 2) == ["1200 W"]
    (allowed,) = rule_store.appliances()
    assert (allowed.name, allowed.rated_w) == ("电水壶", 1200)
    assert allowed.node_id == window.ctx.index.exact("1-101")
    ap.room.setText("1-102")
    assert ap.table.rowCount() == 0
    ap.name.setText("  ")
    _then_read(qtbot, view, ap.add_button.click)  # no name: the core says so, adds nothing
    assert view.message.text() == "give the appliance's name"
    assert len(rule_store.appliances()) == 1
    ap.room.clear()
    ap.table.selectRow(0)
    _then_read(qtbot, view, ap.remove_button.click)
    assert rule_store.appliances() == [] and ap.table.rowCount() == 0


def test_a_schedule_typed_wrong_then_right_and_a_holiday(qtbot, seed_campus, open_window,
                                                         monkeypatch):
    window = open_window(seed_campus)
    view = _open(qtbot, window)
    view.tabs.setCurrentWidget(view.schedules)
    view.schedules.add_button.click()
    form = view.form
    assert isinstance(form, ScheduleForm) and form.isVisible()
    form.name.setText("熄灯 1号楼")
    form.target.node.setCurrentIndex(form.target.node.findText(BUILDING))
    form.windows.setPlainText("Sun-Thu 23:00-06:00\nSat 25:00-06:00")
    _ok(form)
    assert form.isVisible() and form.message.text() == "'25:00' is not a time of day (use 23:00)"
    form.windows.setPlainText("Sun-Thu 23:00")
    _ok(form)
    assert "is not a window (use: Sun-Thu 23:00-06:00)" in form.message.text()
    assert rule_store.schedules() == []
    form.windows.setPlainText("Sun-Thu 23:00-06:00\nSat 1:00-5:00")
    _then_read(qtbot, view, lambda: _ok(form))
    assert not form.isVisible() and view.message.text() == "Schedule 熄灯 1号楼 saved"
    (saved,) = rule_store.schedules()
    assert saved.node_id == window.ctx.index.exact(BUILDING) and saved.enabled
    assert saved.windows == [{"days": [0, 1, 2, 3, 6], "off": "23:00", "on": "06:00"},
                             {"days": [5], "off": "01:00", "on": "05:00"}]
    table = view.schedules.table
    assert [table.item(0, c).text() for c in range(5)] == [
        "熄灯 1号楼", BUILDING, "Sun-Thu 23:00-06:00; Sat 01:00-05:00", "yes", "no"]
    # edited: the form opens with what is saved, and the text round-trips
    table.selectRow(0)
    view.schedules.edit_button.click()
    form = view.form
    assert form.windows.toPlainText() == "Sun-Thu 23:00-06:00\nSat 01:00-05:00"
    form.enabled.setChecked(False)
    _then_read(qtbot, view, lambda: _ok(form))
    assert not rule_store.schedules()[0].enabled and table.item(0, 3).text() == "no"

    view.schedules.add_exception_button.click()
    form = view.form
    assert isinstance(form, ExceptionForm)
    form.day.setDate(QDate(2026, 10, 1))
    form.schedule.setCurrentIndex(form.schedule.findData("熄灯 1号楼"))
    form.note.setText("国庆")
    _then_read(qtbot, view, lambda: _ok(form))
    (holiday,) = rule_store.exceptions()
    assert (holiday.day, holiday.windows, holiday.note) == ("2026-10-01", [], "国庆")
    assert _column(view.schedules.exceptions, 2) == ["none (a holiday)"]
    view.schedules.add_exception_button.click()  # exam week: a shorter night for all
    form = view.form
    form.day.setDate(QDate(2026, 12, 28))
    form.windows.setText("01:00-06:00")
    _then_read(qtbot, view, lambda: _ok(form))
    assert _column(view.schedules.exceptions, 1) == ["熄灯 1号楼", "every schedule"]
    assert _column(view.schedules.exceptions, 2) == ["none (a holiday)", "01:00-06:00"]
    view.schedules.exceptions.selectRow(1)
    _then_read(qtbot, view, view.schedules.remove_exception_button.click)
    assert [e.day for e in rule_store.exceptions()] == ["2026-10-01"]

    asked = _answer(monkeypatch, QMessageBox.StandardButton.No)
    table.selectRow(0)
    view.schedules.remove_button.click()
    assert "The rooms it keeps off now are switched on again." in asked[0]
    assert len(rule_store.schedules()) == 1
    _answer(monkeypatch)
    _then_read(qtbot, view, view.schedules.remove_button.click)
    assert rule_store.schedules() == [] and table.rowCount() == 0


def test_a_plan_defined_applied_and_undone(qtbot, seed_campus, open_window, monkeypatch):
    shops = control.select_rooms(group="shop")
    # one shop already has a lower limit of its own: the plan keeps it, and undo leaves it
    power_limits.set_power_limit(operator(), shops[:1], 200)
    window = open_window(seed_campus)
    view = _open(qtbot, window)
    view.tabs.setCurrentWidget(view.plans)
    view.plans.add_button.click()
    form = view.form
    assert isinstance(form, PlanForm)
    form.name.setText("缺电：商铺限 300 W")
    form.action.setCurrentIndex(form.action.findData("limit"))
    form.limit.setValue(300)
    form.target.kind.setCurrentIndex(form.target.kind.findData(GROUP))
    assert form.target.group.currentText() == "dorm (312 rooms)"
    form.target.group.setCurrentIndex(form.target.group.findData("shop"))
    _then_read(qtbot, view, lambda: _ok(form))
    table = view.plans.table
    assert [table.item(0, c).text() for c in range(5)] == [
        "缺电：商铺限 300 W", "lower the limit 300 W", "tariff group shop", "12", "no"]

    asked = _answer(monkeypatch)
    table.selectRow(0)
    view.plans.apply_button.click()
    qtbot.waitUntil(lambda: table.item(0, 4).text().startswith("since"), timeout=10_000)
    assert asked == ["Apply plan 缺电：商铺限 300 W: lower the power limit of 12 rooms (tariff "
                     "group shop) to 300 W?"]
    assert table.item(0, 4).text().endswith(", by administrator")
    assert not view.plans.apply_button.isEnabled() and view.plans.undo_button.isEnabled()
    assert rule_store.power_limits(shops) == {shops[0]: 200} | {n: 300 for n in shops[1:]}
    view.plans.undo_button.click()
    qtbot.waitUntil(lambda: table.item(0, 4).text() == "no", timeout=10_000)
    assert asked[1] == "Undo plan 缺电：商铺限 300 W: put 12 rooms back as they were?"
    assert view.message.text() == "Plan 缺电：商铺限 300 W undone for 12 rooms"
    assert rule_store.power_limits(shops) == {shops[0]: 200}

    # a tripping plan: its rooms are held off, and say so on the last tab
    limit_plans.save_plan(operator(), "停商铺", "trip", group="shop")
    _then_read(qtbot, view, view.load)
    table.selectRow(1 if table.item(1, 0).text() == "停商铺" else 0)
    asked.clear()
    _answer(monkeypatch, QMessageBox.StandardButton.No)
    view.plans.apply_button.click()
    qtbot.wait(300)
    assert rule_store.plan_named("停商铺").applied_at is None  # answered no: nothing
    asked = _answer(monkeypatch)
    view.plans.apply_button.click()
    qtbot.waitUntil(lambda: view.holds.table.rowCount() == 12, timeout=10_000)
    assert asked == ["Apply plan 停商铺: trip 12 rooms (tariff group shop)?"]
    assert set(_column(view.holds.table, 2)) == {"limiting plan"}
    assert set(_column(view.holds.table, 4)) == {"停商铺"}
    assert set(_column(view.holds.table, 6)) == {"when the plan is undone"}


def test_why_a_room_is_dark(qtbot, seed_campus, open_window):
    meter = campus.meters()[0]  # 1-101, B01/1
    now = time.time()
    relay_holds.hold([meter.id], "power_limit", detail="1850", restore_at=now + 120, now=now)
    relay_holds.hold([meter.id], "operator", source="wang", detail="查寝：违规电器", trip=False)
    other = next(m for m in campus.meters() if m.node_id == control.select_rooms(room="3-204")[0])
    relay_holds.hold([other.id], "arrears", detail="-3.20")
    window = open_window(seed_campus)
    view = _open(qtbot, window)
    view.tabs.setCurrentWidget(view.holds)
    table = view.holds.table
    assert table.rowCount() == 3 and view.holds.count.text() == "2 meters held off · 2 rooms"
    view.holds.find.setText("3-204")
    assert [table.item(0, c).text() for c in range(8)] == [
        "3-204", window.ctx.index.bus_address(other.id), "in arrears", "balance -3.20",
        "the station", table.item(0, 5).text(), "when the account is recharged", ""]
    view.holds.find.setText("1-101")
    rows = {table.item(r, 2).text(): [table.item(r, c).text() for c in range(8)]
            for r in range(table.rowCount())}
    limit = rows["over its power limit"]
    assert limit[1] == "B01/1" and limit[3] == "drawing 1850 W" and limit[4] == "the station"
    assert limit[6].startswith("automatically at ")
    by_hand = rows["tripped by an operator"]
    assert by_hand[3:5] == ["查寝：违规电器", "wang"]
    assert by_hand[6] == "until an operator acts"
    # the desk closes 3-204 by hand: its arrears hold stays, without effect, until recharged
    relay_holds.operator_closes([other.id], "李四")
    view.holds.find.setText("3-204")
    _then_read(qtbot, view, view.refresh_button.click)
    assert [table.item(0, c).text() for c in (2, 6, 7)] == [
        "in arrears", "on again, closed by hand", "李四"]
    assert view.holds.count.text() == "0 meters held off · 0 rooms"


@pytest.mark.parametrize("role", ["cashier", "viewer"])
def test_a_cashier_or_viewer_is_refused(qtbot, seed_campus, open_window, shoot, role):
    window = open_window(seed_campus, role=role)
    view = _open(qtbot, window)
    assert view.note.isVisible() and "control_batch" in view.note.text()
    tab = view.limits
    tab.where.setCurrentIndex(tab.where.findData(window.ctx.index.exact(BUILDING)))
    tab.scope.setCurrentIndex(tab.scope.findData(WHERE))
    _then_read(qtbot, view, tab.set_button.click)
    assert view.message.text().startswith(f"permission denied: {role} ({role}) may not")
    assert rule_store.power_limits() == {}
    shoot(view, f"automatic_refused_{role}")
    view.schedules.add_button.click()
    form = view.form
    form.name.setText("x")
    form.windows.setPlainText("Mon 23:00-06:00")
    _ok(form)
    qtbot.waitUntil(lambda: "permission denied" in form.message.text(), timeout=10_000)
    assert form.isVisible() and rule_store.schedules() == []
    form.reject()


def _everything(db) -> None:
    """One of each rule and hold, made through the core."""
    op = operator()
    floor = control.select_rooms(building="1-2F")
    power_limits.set_power_limit(op, floor, 800, selection="1-2F")
    power_limits.set_power_limit(op, control.select_rooms(room="1-101"), 1500)
    for room, name, watts in (("1-101", "电水壶", 1200), ("1-101", "laptop charger", 90),
                              ("S-01", "微波炉 microwave", 1100)):
        power_limits.add_appliance(op, control.select_rooms(room=room)[0], name, watts,
                                   room=room)
    schedules.save_schedule(op, "熄灯 1-3号楼 weeknights",
                            [schedules.parse_window("Sun-Thu 23:00-06:00")],
                            building=BUILDING)
    schedules.save_schedule(op, "shops closed at night",
                            [schedules.parse_window("Mon-Sun 01:00-06:00"),
                             schedules.parse_window("Sat 23:30-07:00")], group="shop")
    schedules.add_exception(op, date(2026, 10, 1), [], note="国庆节 National Day")
    schedules.add_exception(op, date(2026, 12, 28), [schedules.parse_window(
        "01:00-06:00", every_day=True)], schedule="熄灯 1-3号楼 weeknights", note="exam week")
    limit_plans.save_plan(op, "缺电：商铺先停", "trip", group="shop")
    limit_plans.save_plan(op, "一级限电 2号楼", "limit", building="2号宿舍楼", limit_w=400)
    limit_plans.apply_plan(op, "一级限电 2号楼")
    meters = {m.node_id: m.id for m in campus.meters()}
    now = time.time()
    relay_holds.hold([meters[control.select_rooms(room="1-101")[0]]], "power_limit",
                     detail="1850", restore_at=now + 120, now=now)
    relay_holds.hold([meters[control.select_rooms(room="3-204")[0]]], "arrears",
                     detail="-3.20")
    relay_holds.hold([meters[control.select_rooms(room="2-305")[0]]], "operator",
                     source="王老师", detail="查寝：违规电器 (heater found)", trip=False)
    relay_holds.hold([meters[n] for n in control.select_rooms(building="4-1F")[:3]],
                     "schedule", source="熄灯 1-3号楼 weeknights", detail="2026-06-02 06:00")
    dark = meters[control.select_rooms(room="4-105")[0]]
    relay_holds.hold([dark], "malicious_load", detail="2100", restore_at=None)
    relay_holds.operator_closes([meters[control.select_rooms(room="3-204")[0]]], "李四")
    assert hold_store.holds()


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_screenshots_of_every_tab(qtbot, seed_campus, open_window, shoot, language):
    _everything(seed_campus)
    apply_language(language)
    window = open_window(seed_campus)
    view = _open(qtbot, window)
    view.limits.where.setCurrentIndex(view.limits.where.findText("1号宿舍楼 › 2F"))
    view.limits.table.selectRow(2)
    suffix = "" if language == "en" else f"_{language}"
    for name, tab in (("limits", view.limits), ("appliances", view.appliances),
                      ("schedules", view.schedules), ("plans", view.plans),
                      ("holds", view.holds)):
        view.tabs.setCurrentWidget(tab)
        shoot(view, f"automatic_{name}{suffix}")
    view.schedules.table.selectRow(0)
    view.schedules.edit_button.click()
    shoot(view.form, f"automatic_schedule_form{suffix}")
    view.form.reject()
    view.plans.add_button.click()
    shoot(view.form, f"automatic_plan_form{suffix}")
    view.form.reject()
    view.schedules.add_exception_button.click()
    shoot(view.form, f"automatic_exception_form{suffix}")
    view.form.reject()
