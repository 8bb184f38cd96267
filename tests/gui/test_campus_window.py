"""The campus window on the seed's campus: tree, search, room table, language, remembered
layout. Each test saves a screenshot under artifacts/."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QInputMethodEvent
from PySide6.QtWidgets import QApplication

from app.storage import campus
from app.ui import settings as ui_options
from app.ui.settings import UiSettings
from app.views.campus_tree import NODE_ID_ROLE
from app.views.room_table import COL, SORT_ROLE

from .conftest import store_readings


def _walk(model, parent=None):
    from PySide6.QtCore import QModelIndex

    parent = parent or QModelIndex()
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        yield index
        yield from _walk(model, index)


def test_tree_shows_the_demo_campus(open_window, seed_campus, shoot):
    store_readings()
    window = open_window(seed_campus)
    model = window.tree.model
    kinds: dict[str, int] = {}
    for index in _walk(model):
        node = window.ctx.index.nodes[index.data(NODE_ID_ROLE)]
        kinds[node.kind] = kinds.get(node.kind, 0) + 1
    # 12 buses x 27 meters: 6 dormitory buildings of 52 rooms, a shops street of 12 shops
    assert kinds == {"campus": 1, "building": 7, "floor": 36, "room": 312, "shop": 12}
    assert kinds["room"] + kinds["shop"] == campus.count_meters() == 324
    top = model.index(0, 0)
    assert top.data() == "湘塘校区"
    assert model.index(0, 1).data() == "324/324"
    buildings = [model.index(r, 0, top).data() for r in range(model.rowCount(top))]
    assert buildings == [f"{n}号宿舍楼" for n in range(1, 7)] + ["商业街"]
    assert window.tree.view.isExpanded(window.tree.proxy.mapFromSource(top))
    window.tree.view.expand(window.tree.proxy.mapFromSource(model.index(0, 0, top)))
    shoot(window, "gui_tree")


def test_search_finds_a_room(qtbot, open_window, seed_campus, shoot):
    store_readings()
    window = open_window(seed_campus)
    idx = window.ctx.index
    tree = window.tree

    qtbot.keyClicks(tree.search, "3-204")
    qtbot.waitUntil(lambda: window.panel.title.text() == "3-204", timeout=3000)
    assert window.stack.currentWidget() is window.panel
    assert tree.result.text() == "1 found"

    # by an occupant's name (one nobody else on campus shares)
    names: dict[str, list[int]] = {}
    for node_id, occupants in idx.occupants_of.items():
        for o in occupants:
            names.setdefault(o.name, []).append(node_id)
    name, (room,) = next((n, r) for n, r in sorted(names.items()) if len(r) == 1
                         and idx.nodes[r[0]].code != "3-204")
    tree.search.clear()
    commit = QInputMethodEvent()  # Chinese is typed through an input method
    commit.setCommitString(name)
    QApplication.sendEvent(tree.search, commit)
    qtbot.keyClick(tree.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tree.current_node() == room, timeout=3000)
    assert name in window.panel.people.text()

    # a meter by bus/address and by serial
    for text, code in (("B03/12", "2-202"), ("3/12", "2-202"), ("310000005007", "3-107")):
        tree.search.setText(text)
        tree.run_search()
        assert window.panel.title.text() == code, text
    tree.search.setText("B03/12")
    tree.run_search()
    shoot(window, "gui_search")


def test_building_table_sorts_numerically(qtbot, open_window, seed_campus, shoot):
    # powers whose text order differs from their numeric order (5 < 40 < 300 < 1200 < 10000)
    powers = [5.0, 1200.0, 40.0, 300.0, 10_000.0, 85.5, 0.0, 2000.0, 9.0]
    store_readings(lambda i: powers[i % len(powers)])
    window = open_window(seed_campus)
    building = next(n for n in window.ctx.index.nodes.values() if n.name == "2号宿舍楼")
    window.tree.select_node(building.id)
    assert window.stack.currentWidget() is window.table
    proxy = window.table.proxy
    assert proxy.rowCount() == 52

    header = window.table.view.horizontalHeader()
    col = COL["power"]
    x = header.sectionViewportPosition(col) + header.sectionSize(col) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, header.height() // 2))
    first_order = header.sortIndicatorOrder()

    def shown():
        return [proxy.index(r, col).data(SORT_ROLE) for r in range(proxy.rowCount())]

    values = shown()
    assert values == sorted(values, reverse=first_order == Qt.SortOrder.DescendingOrder)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, header.height() // 2))
    assert header.sortIndicatorOrder() != first_order
    values = shown()
    assert values == sorted(values, reverse=first_order != Qt.SortOrder.DescendingOrder)
    if header.sortIndicatorOrder() != Qt.SortOrder.DescendingOrder:
        window.table.view.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    texts = list(dict.fromkeys(proxy.index(r, col).data() for r in range(proxy.rowCount())))
    assert texts == ["10.00 kW", "2000 W", "1200 W", "300 W", "86 W", "40 W", "9 W", "5 W",
                     "0 W"]
    assert "52 rooms" in window.table.summary.text()
    shoot(window, "gui_building_table")


@pytest.mark.parametrize("language", ["zh_CN"])
def test_language_switch_shows_chinese(open_window, seed_campus, ui_settings, shoot,
                                       language):
    store_readings()
    window = open_window(seed_campus)
    window.tree.select_node(window.ctx.index.exact("1-101"))
    assert window.panel.captions["voltage"].text() == "Voltage"
    window.language_actions[language].trigger()
    assert window.panel.captions["voltage"].text() == "电压"
    assert window.panel.captions["money"].text() == "剩余金额"
    assert window.menus["settings"].title().startswith("设置")
    assert window.buses_label.text().startswith("总线")
    assert ui_settings.get(ui_options.LANGUAGE) == language
    shoot(window, "gui_zh_CN_room")
    window.tree.select_node(window.ctx.index.exact("1号宿舍楼"))
    assert window.table.model.headerData(COL["money"], Qt.Orientation.Horizontal) == "表内金额"
    assert window.table.model.headerData(COL["balance"], Qt.Orientation.Horizontal) == "余额"
    shoot(window, "gui_zh_CN_building")
    window.language_actions["en"].trigger()
    assert window.panel.captions["voltage"].text() == "Voltage"


def test_layout_and_selection_are_remembered(open_window, seed_campus, tmp_path):
    store_readings()
    settings = UiSettings.at(tmp_path / "remember.ini")
    window = open_window(seed_campus, settings=settings)
    room = window.ctx.index.exact("4-305")
    window.tree.select_node(room)
    window.splitter.setSizes([420, 860])
    sizes = window.splitter.sizes()
    window.close()

    again = open_window(seed_campus, settings=UiSettings.at(tmp_path / "remember.ini"))
    assert again.tree.current_node() == room
    assert again.panel.title.text() == "4-305"
    assert again.splitter.sizes() == sizes


def test_an_empty_database_says_how_to_make_a_campus(open_window, tmp_path, shoot):
    window = open_window(tmp_path / "empty.db", start=True)
    assert window.tree.model.rowCount() == 0
    assert "init-demo" in window.placeholder.text()
    assert window.buses_label.text() == "Buses healthy: 0/0"
    shoot(window, "gui_empty_database")
