"""The control view on a window that polls an in-process simulator over Modbus-TCP: a floor's
trip asks once more, shows each meter's progress and ends confirmed on every meter that
answers; a silent meter's command is withdrawn when the operator cancels; the tree offers it
to a role that may control meters, and not to a cashier."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.views import window_actions


def _answer_yes(holder: list) -> None:
    """Answer the confirmation the batch asks with Yes."""
    def click() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            holder.append(box.text())
            box.button(QMessageBox.StandardButton.Yes).click()

    timer = QTimer()
    timer.timeout.connect(click)
    timer.start(50)
    holder.append(timer)


def _send(dialog, action: str, reason: str) -> list:
    """Send ``action`` with ``reason``, answering the batch's question Yes; what it asked."""
    dialog.reason.setText(reason)
    dialog.action.setCurrentIndex(dialog.action.findData(action))
    asked: list = []
    _answer_yes(asked)
    dialog.send()
    asked[0].stop()
    return asked


def _floor_dialog(window):
    ctx = window.ctx
    rooms = [n for n in ctx.index.meters_of if n in ctx.index.nodes]
    floor = ctx.index.parent_of(rooms[0])
    window.tree.select_node(floor)
    window_actions.control(window)
    return window.dialogs["control"], rooms


def test_a_floor_trip_shows_each_meter_confirmed(qtbot, live_campus, open_window, shoot):
    db, sim = live_campus
    window = open_window(db, start=True)
    ctx = window.ctx
    qtbot.waitUntil(lambda: ctx.source.polling, timeout=10_000)
    qtbot.waitUntil(lambda: all(ctx.store.meter(m) is not None and ctx.store.meter(m).online
                                for m in ctx.index.meters), timeout=20_000)
    dialog, rooms = _floor_dialog(window)
    assert dialog.table.rowCount() == len(rooms) and "5 meters in 5 rooms" in dialog.scope.text()
    dialog.send()  # no reason yet: refused, nothing sent
    assert "reason" in dialog.message.text() and dialog.job is None
    asked = _send(dialog, "trip", "消防检查")
    assert any("5 meters in 5 rooms" in str(a) for a in asked[1:])
    qtbot.waitUntil(lambda: dialog.outcomes is not None, timeout=30_000)
    assert [o.outcome for o in dialog.outcomes] == ["confirmed"] * 5
    assert {dialog.table.item(r, 2).text() for r in range(5)} == {"confirmed"}
    assert dialog.message.text() == "every meter confirmed"
    assert all(not sim.meter(1, u).snapshot().relay_closed for u in range(1, 6))
    shoot(dialog, "control_floor_trip")


def test_cancel_withdraws_what_a_silent_meter_did_not_get(qtbot, live_campus, open_window):
    db, sim = live_campus
    window = open_window(db, start=True)
    ctx = window.ctx
    qtbot.waitUntil(lambda: all(ctx.store.meter(m) is not None and ctx.store.meter(m).online
                                for m in ctx.index.meters), timeout=20_000)
    sim.set_faults("1.3:offline")
    dialog, _rooms = _floor_dialog(window)
    _send(dialog, "close", "test")
    qtbot.waitUntil(lambda: sum(dialog.table.item(r, 2).text() == "confirmed"
                                for r in range(5)) == 4, timeout=30_000)
    dialog.cancel_or_close()
    qtbot.waitUntil(lambda: dialog.outcomes is not None, timeout=10_000)
    failed = [o for o in dialog.outcomes if o.outcome == "failed"]
    assert [o.meter for o in failed] == ["B01/3"]
    assert failed[0].reason == "cancelled by the operator"
    assert "1 of 5 meters failed" in dialog.message.text()


def test_the_tree_offers_control_only_to_roles_that_may(qtbot, seed_campus, open_window):
    admin = open_window(seed_campus)
    assert admin.tree.menu_actions["control"] and admin.actions_["control"].isVisible()
    cashier = open_window(seed_campus, role="cashier", name="carol")
    assert not cashier.tree.menu_actions["control"]
    assert not cashier.actions_["control"].isVisible()
