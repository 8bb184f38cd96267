"""The window and the alarms, on a real SQLite file with alarms raised through the core: the tree
marks each room's worst open alarm (badge, colour, the alarm's text in the tooltip), rolled up to
its floor and building, and follows alarms raised and cleared; the notifier announces a new
danger alarm once (never one that existed before the window opened), and can be muted."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QToolTip

from app.core import alarms
from app.storage import accounts, campus
from app.ui import settings as ui_options
from app.ui.alarm_notifier import AlarmNotice
from app.ui.icons import ALARM_COLOURS
from tests.gui.conftest import store_readings


def _meter_of(window, code: str) -> int:
    idx = window.ctx.index
    return idx.meters_of[idx.exact(code)][0]


def _looked(qtbot, window) -> None:
    """Let the notifier look at the alarms now, and wait until it has."""
    with qtbot.waitSignal(window.ctx.runner.jobDone, timeout=5_000):
        window.alarm_notifier.check()


def _tooltip(window, node_id: int) -> str:
    return window.tree.model.data(window.tree.model.index_of(node_id),
                                  Qt.ItemDataRole.ToolTipRole)


def _show_tooltip(window, node_id: int) -> QToolTip:
    """Show the tree's tooltip of ``node_id`` over its row (for the screenshot); its label."""
    tree = window.tree
    rect = tree.view.visualRect(tree.proxy.mapFromSource(tree.model.index_of(node_id)))
    QToolTip.showText(tree.view.viewport().mapToGlobal(rect.center()), _tooltip(window, node_id),
                      tree.view.viewport())
    QApplication.processEvents()
    labels = [w for w in QApplication.topLevelWidgets()
              if w.metaObject().className() == "QTipLabel" and w.isVisible()]
    assert labels
    return labels[0]


def test_the_tree_marks_each_rooms_worst_open_alarm(qtbot, seed_campus, open_window, shoot):
    store_readings(lambda i: 120.0)
    meter_101 = campus.meters()[0]
    alarms.raise_alarm("meter_offline", 2, {"meter": "B01/1", "why": "3 polls failed"},
                       meter_id=meter_101.id)
    window = open_window(seed_campus)
    window.resize(1600, 800)  # at 1280 the room panel leaves the tree no room for names
    window.alarm_notifier.timer.stop()
    model, idx = window.tree.model, window.ctx.index
    room_101, room_103, room_105 = (idx.exact(c) for c in ("1-101", "1-103", "1-105"))
    floor, building = idx.ancestors(room_101)[:2]
    # raised before the window opened: marked from the start
    assert model.alarm_level(room_101) == 2 and model.alarm_level(building) == 2
    assert "Alarm, level 2: meter B01/1 does not answer: 3 polls failed" \
        in _tooltip(window, room_101)
    assert model.data(model.index_of(room_101), Qt.ItemDataRole.ForegroundRole) \
        == ALARM_COLOURS[2]
    # raised while it runs: through a meter, and through an account (low balance, level 3)
    acct = accounts.open_account_for_node(room_103)
    alarms.raise_alarm("low_balance", 3, {"room": "1-103", "account": acct.number,
                                          "balance": "-2.40", "level": 3},
                       account_id=acct.id)
    alarms.raise_alarm("low_balance", 1, {"room": "1-105", "account": "-", "balance": "18.00",
                                          "level": 1},
                       account_id=accounts.open_account_for_node(room_105).id)
    alarms.raise_alarm("power_limit", 2, {"meter": "B01/3", "power": 2350},
                       meter_id=_meter_of(window, "1-103"))
    with qtbot.waitSignal(window.alarm_notifier.roomsChanged, timeout=5_000):
        window.alarm_notifier.check()
    assert model.alarm_level(room_103) == 3 and model.alarm_level(room_105) == 1
    assert model.alarm_level(floor) == 3 and model.alarm_level(building) == 3
    tip = _tooltip(window, room_103)
    assert "level 3: room 1-103" in tip and "(1 more open alarm" in tip
    assert "3 rooms with open alarms, the worst of level 3" in _tooltip(window, building)
    assert model.data(model.index_of(room_105), Qt.ItemDataRole.ForegroundRole) is None
    window.tree.select_node(idx.exact("1-104"))
    label = _show_tooltip(window, room_103)
    shoot(window, "window_tree_alarms")
    shoot(label, "window_tree_alarm_tooltip")
    QToolTip.hideText()
    # cleared: the mark goes, and the building's worst is what is left
    alarms.clear_alarm("low_balance", account_id=acct.id)
    alarms.clear_alarm("power_limit", meter_id=_meter_of(window, "1-103"))
    _looked(qtbot, window)
    assert model.alarm_level(room_103) == 0 and "Alarm" not in _tooltip(window, room_103)
    assert model.alarm_level(building) == 2
    assert model.alarm_level(idx.exact("2号宿舍楼")) == 0
    # the window's own timer looks too
    alarms.raise_alarm("malicious_load", 3, {"meter": "B01/3", "power": 1800},
                       meter_id=_meter_of(window, "1-103"))
    window.alarm_notifier.timer.setInterval(100)
    window.alarm_notifier.start()
    qtbot.waitUntil(lambda: model.alarm_level(room_103) == 3, timeout=5_000)
    window.alarm_notifier.timer.stop()
    # in Chinese: the alarm's text follows at the next look
    window.language_actions["zh_CN"].trigger()
    _looked(qtbot, window)
    label = _show_tooltip(window, room_103)
    shoot(window, "window_tree_alarms_zh_CN")
    shoot(label, "window_tree_alarm_tooltip_zh_CN")
    QToolTip.hideText()
    window.language_actions["en"].trigger()


def test_a_new_danger_alarm_is_announced_once(qtbot, seed_campus, open_window, ui_settings):
    meters = campus.meters()
    before = alarms.raise_alarm("meter_offline", 3, {"meter": "B01/1", "why": "x"},
                                meter_id=meters[0].id)
    window = open_window(seed_campus)
    notifier = window.alarm_notifier
    notifier.timer.stop()
    assert notifier.last_id == before
    with qtbot.assertNotEmitted(notifier.raised):  # it existed before the window opened
        _looked(qtbot, window)
    # a warning is marked but not announced
    alarms.raise_alarm("meter_offline", 2, {"meter": "B01/2", "why": "x"},
                       meter_id=meters[1].id)
    with qtbot.assertNotEmitted(notifier.raised):
        _looked(qtbot, window)
    danger = alarms.raise_alarm("malicious_load", 3, {"meter": "B01/3", "power": 1500},
                                meter_id=meters[2].id)
    with qtbot.waitSignal(notifier.raised, timeout=5_000) as blocker:
        notifier.check()
    notice = blocker.args[0]
    assert isinstance(notice, AlarmNotice)
    assert [a.id for a in notice.alarms] == [danger] and notice.sounded
    assert notice.title == "1 new danger alarm"
    assert notice.text.startswith("1-103: meter B01/3 tripped itself on a malicious load")
    with qtbot.assertNotEmitted(notifier.raised):  # once, not again
        _looked(qtbot, window)
    # muted from the Settings menu: still announced (the tray), without the sound
    assert window.alarm_sound.isChecked()
    assert window.alarm_sound in window.menus["settings"].actions()
    window.alarm_sound.trigger()
    assert ui_settings.get(ui_options.ALARM_SOUND) is False
    bus = campus.buses()[1]
    alarms.raise_alarm("bus_down", 3, {"bus": bus.name, "error": "gateway gone"},
                       bus_id=bus.id)
    with qtbot.waitSignal(notifier.raised, timeout=5_000) as blocker:
        notifier.check()
    assert not blocker.args[0].sounded
    assert blocker.args[0].text == "bus B02 is down: gateway gone"
    # a raised alarm cleared before the next look is not news any more
    alarms.raise_alarm("power_limit", 3, {"meter": "B01/5", "power": 3000},
                       meter_id=meters[4].id)
    alarms.clear_alarm("power_limit", meter_id=meters[4].id)
    with qtbot.assertNotEmitted(notifier.raised):
        _looked(qtbot, window)


def test_the_mute_is_remembered(qtbot, seed_campus, open_window, ui_settings):
    ui_settings.set(ui_options.ALARM_SOUND, False)
    window = open_window(seed_campus)
    assert not window.alarm_sound.isChecked() and window.alarm_notifier.muted()
    window.alarm_sound.trigger()
    assert ui_settings.get(ui_options.ALARM_SOUND) is True
    assert window.alarm_sound.text() == "&Sound for new danger alarms"
