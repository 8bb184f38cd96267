"""The control view's other targets, on a window that polls an in-process simulator: the rooms of
a tariff group, and rooms picked by hand (Ctrl+click in the tree, then checked in the dialog's
filtered list). Each asks once more, shows every meter confirmed, and leaves the other rooms as
they were; a role that may control one meter only is not offered them. Screenshots in English
and in Chinese."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.storage.models import Account, Node
from app.ui.language import apply_language
from app.views import window_actions
from app.views.control_dialog import GROUP, NODE, PICKED
from tests.gui.test_control_view import _send


def _wait_online(qtbot, window) -> None:
    ctx = window.ctx
    qtbot.waitUntil(lambda: all(ctx.store.meter(m) is not None and ctx.store.meter(m).online
                                for m in ctx.index.meters), timeout=20_000)


def _ctrl_click(qtbot, window, code: str) -> None:
    tree = window.tree
    proxy = tree.proxy.mapFromSource(tree.model.index_of(window.ctx.index.exact(code)))
    rect = tree.view.visualRect(proxy)
    qtbot.mouseClick(tree.view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ControlModifier, rect.center())


def _relays(sim) -> list[bool]:
    return [sim.meter(1, u).snapshot().relay_closed for u in range(1, 6)]


def test_a_tariff_group_is_tripped_and_nothing_else(qtbot, live_campus, open_window, shoot):
    db, sim = live_campus
    staff = [n.id for n in Node.select().where(Node.code.in_(["1-104", "1-105"]))]
    Account.update(tariff_group="staff").where(Account.node.in_(staff)).execute()
    window = open_window(db, start=True)
    _wait_online(qtbot, window)
    window.tree.select_node(window.ctx.index.exact("1-101"))
    window_actions.control(window)
    dialog = window.dialogs["control"]
    assert dialog.target.currentData() == NODE and dialog.table.rowCount() == 1
    assert not dialog.group.isVisible() and not dialog.picker.isVisible()
    dialog.target.setCurrentIndex(dialog.target.findData(GROUP))
    assert dialog.group.isVisible() and not dialog.picker.isVisible()
    assert [dialog.group.itemText(i) for i in range(dialog.group.count())] \
        == ["dorm (3 rooms)", "staff (2 rooms)"]
    dialog.group.setCurrentIndex(dialog.group.findData("staff"))
    assert dialog.scope.text() == "tariff group staff: 2 meters in 2 rooms"
    assert [dialog.table.item(r, 0).text() for r in range(2)] == ["1-104", "1-105"]
    asked = _send(dialog, "trip", "限电：先停教工")
    assert any("trip 2 meters in 2 rooms of tariff group staff?" == str(a) for a in asked[1:])
    assert not dialog.target.isEnabled() and not dialog.group.isEnabled()
    qtbot.waitUntil(lambda: dialog.outcomes is not None, timeout=30_000)
    assert [o.outcome for o in dialog.outcomes] == ["confirmed"] * 2
    assert dialog.message.text() == "every meter confirmed"
    assert _relays(sim) == [True, True, True, False, False]
    shoot(dialog, "control_group")
    dialog.close()
    apply_language("zh_CN")
    window_actions.control(window)
    dialog = window.dialogs["control"]
    dialog.target.setCurrentIndex(dialog.target.findData(GROUP))
    dialog.group.setCurrentIndex(dialog.group.findData("staff"))
    shoot(dialog, "control_group_zh_CN")
    dialog.close()


def test_rooms_picked_by_hand(qtbot, live_campus, open_window, shoot):
    db, sim = live_campus
    window = open_window(db, start=True)
    _wait_online(qtbot, window)
    window.tree.select_node(window.ctx.index.exact("1-101"))
    _ctrl_click(qtbot, window, "1-103")
    index = window.ctx.index
    assert window.tree.selected_nodes() == [index.exact("1-101"), index.exact("1-103")]
    window_actions.control(window)
    dialog = window.dialogs["control"]
    assert dialog.target.currentData() == PICKED and dialog.picker.isVisible()
    assert dialog.picked() == [index.exact("1-101"), index.exact("1-103")]
    assert dialog.table.rowCount() == 2 and dialog.picked_count.text() == "2 rooms picked"
    dialog.find.setText("1-105")  # the tree's search: room, occupant, meter, building
    shown = [i for i in dialog._items() if not i.isHidden()]
    assert [i.text() for i in shown] == ["1号宿舍楼 › 1F › 1-105"]
    dialog.pick_shown.click()
    dialog.find.clear()
    assert dialog.table.rowCount() == 3
    assert dialog.scope.text() == "1-101, 1-103, 1-105: 3 meters in 3 rooms"
    asked = _send(dialog, "trip", "查寝：违规电器")
    assert "trip 3 meters in the 3 rooms picked (1-101, 1-103, 1-105)?" in map(str, asked[1:])
    qtbot.waitUntil(lambda: dialog.outcomes is not None, timeout=30_000)
    assert [o.outcome for o in dialog.outcomes] == ["confirmed"] * 3
    assert {dialog.table.item(r, 2).text() for r in range(3)} == {"confirmed"}
    assert _relays(sim) == [False, True, False, True, False]
    shoot(dialog, "control_picked")
    dialog.close()
    apply_language("zh_CN")
    window_actions.control(window)
    dialog = window.dialogs["control"]
    dialog.find.setText("1-10")
    shoot(dialog, "control_picked_zh_CN")
    dialog.close()


def test_nothing_selected_opens_the_list_and_one_meter_roles_get_no_batch(
        qtbot, seed_campus, open_window, monkeypatch):
    window = open_window(seed_campus)
    assert window.tree.current_node() == 0
    window_actions.control(window)
    dialog = window.dialogs["control"]
    assert dialog.target.findData(NODE) == -1 and dialog.target.currentData() == PICKED
    assert not dialog.send_button.isEnabled() and dialog.table.rowCount() == 0
    assert dialog.message.text() == "check the rooms to control in the list"
    assert dialog.room_list.count() == 324  # every room and shop with a meter
    dialog.find.setText("商业街")  # a building: its shops
    dialog.pick_shown.click()
    assert len(dialog.picked()) == 12 and dialog.send_button.isEnabled()
    dialog.pick_none.click()
    assert dialog.picked() == [] and not dialog.send_button.isEnabled()
    dialog.close()
    maintenance = open_window(seed_campus, role="maintenance", name="mike")
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "information",
                        lambda _parent, _title, text: asked.append(text))
    window_actions.control(maintenance)  # nothing selected, and no batch: told to select
    assert asked and "Select a room" in asked[0]
    maintenance.tree.select_node(maintenance.ctx.index.exact("1-101"))
    window_actions.control(maintenance)
    dialog = maintenance.dialogs["control"]
    model = dialog.target.model()
    assert model.item(dialog.target.findData(NODE)).isEnabled()
    assert not model.item(dialog.target.findData(GROUP)).isEnabled()
    assert not model.item(dialog.target.findData(PICKED)).isEnabled()
