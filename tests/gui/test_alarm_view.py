"""The alarm list: active and history, filtered by kind and level, acknowledged with a comment
that the audit log keeps. On a real SQLite file, alarms raised through the core."""

from __future__ import annotations

from app.core import alarms
from app.storage import campus
from app.views import window_actions


def test_the_alarm_list_filters_and_acknowledges(qtbot, seed_campus, open_window, shoot):
    meters = campus.meters()
    bus = campus.buses()[0]
    alarms.raise_alarm("meter_offline", 2, {"meter": meters[0].id, "why": "3 failures"},
                       meter_id=meters[0].id)
    alarms.raise_alarm("bus_down", 3, {"bus": bus.name, "error": "gateway gone"},
                       bus_id=bus.id)
    cleared = alarms.raise_alarm("meter_offline", 2, {"meter": meters[1].id, "why": "x"},
                                 meter_id=meters[1].id)
    alarms.clear_alarm("meter_offline", meter_id=meters[1].id)
    window = open_window(seed_campus)
    window_actions.alarms(window)
    view = window.dialogs["alarms"]
    qtbot.waitUntil(lambda: view.table.rowCount() == 2, timeout=5_000)
    assert {view.table.item(r, 4).text() for r in range(2)} == {"B01/1", "B01"}
    view.level.setCurrentIndex(view.level.findData(3))
    assert view.table.rowCount() == 1 and view.table.item(0, 4).text() == "B01"
    view.level.setCurrentIndex(0)
    view.which.setCurrentIndex(1)  # with history
    qtbot.waitUntil(lambda: view.table.rowCount() == 3, timeout=5_000)
    assert str(cleared) in {view.table.item(r, 0).text() for r in range(3)}
    view.kind.setCurrentIndex(view.kind.findData("bus_down"))
    assert view.table.rowCount() == 1
    view.table.selectRow(0)
    view.acknowledge("网关已更换")
    me = window.ctx.operator.name
    qtbot.waitUntil(lambda: view.table.rowCount() == 1
                    and view.table.item(0, 7).text() == me, timeout=5_000)
    shoot(view, "alarm_list")
    rows = alarms.alarm_rows(window.ctx.operator, active=True)
    assert [r["acknowledged_by"] for r in rows if r["kind"] == "bus_down"] == [me]
