"""Stale is shown as stale in the window: when the bus's gateway goes away, the tree, the room
table and the panel show its meters offline, not ``online`` with their last readings; an old
read is stale; and a window that cannot start on a bad database says why and exits.

The window polls the in-process simulator over Modbus-TCP, on a real SQLite file.
"""

from __future__ import annotations

import shutil
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.core.live import BusLive, LiveBatch
from app.storage import campus
from app.ui.live_store import MeterState
from app.views.room_table import COL
from tests.gui.conftest import store_readings


def test_a_bus_whose_gateway_is_gone_shows_its_meters_offline(qtbot, live_campus, open_window,
                                                               shoot):
    db, sim = live_campus
    window = open_window(db, start=True)
    ctx = window.ctx
    assert ctx.source.polling
    rooms = [n for n in ctx.index.meters_of if n in ctx.index.nodes]
    assert len(rooms) == 5
    live_states = (MeterState.ONLINE, MeterState.LOW_BALANCE, MeterState.KEEP_POWER,
                   MeterState.TRIPPED)
    qtbot.waitUntil(lambda: all(ctx.room_state(n) in live_states for n in rooms),
                    timeout=15_000)
    tree = window.tree.model
    floor = ctx.index.parent_of(rooms[0])
    window.tree.select_node(floor)  # the floor's table
    sim.stop()  # the gateway is gone
    qtbot.waitUntil(lambda: all(ctx.room_state(n) is MeterState.OFFLINE for n in rooms),
                    timeout=30_000)
    qtbot.waitUntil(lambda: all(tree.index_of(n, 1).data() == "offline" for n in rooms),
                    timeout=5_000)
    table = window.table.model
    assert {table.index(r, COL["state"]).data() for r in range(table.rowCount())} \
        == {"offline"}
    assert window.bus_problem_label.text().startswith("B01 down: ")
    # the containers count no meter as answering
    building = ctx.index.parent_of(floor)
    assert tree.index_of(building, 1).data() == "0/5"
    window.tree.select_node(rooms[0])
    assert window.panel.state_text.text() == "offline"
    shoot(window, "stale_bus_down")


def test_a_read_that_grows_old_or_whose_bus_is_down_is_stale(qtbot, open_window, seed_campus):
    store_readings()
    window = open_window(seed_campus)
    ctx = window.ctx
    meter = campus.meters()[0].id
    node = ctx.index.node_of_meter(meter)
    assert not ctx.is_stale(meter) and ctx.room_state(node) is not MeterState.STALE
    # nobody has read it for an hour (nobody polls): its stored "online" is not believed
    assert ctx.is_stale(meter, now=time.time() + 3600)
    # its bus is down: nothing on it is read now
    bus_id = ctx.index.meters[meter].bus_id
    ctx.bridge.push(LiveBatch([], [BusLive(bus_id, "down", None, None, "gateway gone", 0, 27)]))
    ctx.bridge.flush()
    assert ctx.is_stale(meter) and ctx.room_state(node) is MeterState.STALE


def test_a_reading_that_ages_with_nothing_new_turns_stale_in_the_tree(qtbot, open_window,
                                                                        seed_campus):
    store_readings(age_s=27)  # the polling process stored it, then stopped storing
    window = open_window(seed_campus)
    ctx = window.ctx
    meter = campus.meters()[0].id
    node = ctx.index.node_of_meter(meter)
    window.tree.select_node(ctx.index.parent_of(node))
    assert window.tree.model.index_of(node, 1).data() != "stale"
    qtbot.waitUntil(lambda: ctx.is_stale(meter), timeout=10_000)  # 30 s old now
    window.refresh_stale()  # what the window's timer does every half minute
    assert window.tree.model.index_of(node, 1).data() == "stale"


def _close_message_boxes(timer_holder: list) -> None:
    """Answer every modal dialog the start shows (the message box saying why)."""
    def close() -> None:
        modal = QApplication.activeModalWidget()
        if modal is not None:
            timer_holder.append(modal.windowTitle() + ": " + getattr(modal, "text",
                                                                      lambda: "")())
            modal.close()

    timer = QTimer()
    timer.timeout.connect(close)
    timer.start(100)
    timer_holder.append(timer)


def _start_window_on(path) -> tuple[int, list]:
    """Start the window on ``path``: its exit code and the messages it showed."""
    from app.views.startup import run_gui

    shown: list = []
    _close_message_boxes(shown)
    try:
        code = run_gui(db=path, language="en")
    finally:
        shown[0].stop()
    return code, shown


def test_the_window_refuses_an_empty_database_in_one_line(qtbot, tmp_path, capfd):
    empty = tmp_path / "campus.db"
    empty.touch()
    code, shown = _start_window_on(empty)
    assert code == 1
    assert empty.stat().st_size == 0  # not silently made a new station
    err = capfd.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and "empty file (0 bytes)" in errors[0], err
    assert "Traceback" not in "\n".join(err)
    assert any("empty file (0 bytes)" in s for s in shown[1:] if isinstance(s, str)), shown


def test_the_window_refuses_a_database_that_is_a_folder(qtbot, tmp_path, capfd):
    folder = tmp_path / "campus.db"
    folder.mkdir()
    try:
        code, _shown = _start_window_on(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert code == 1
    err = capfd.readouterr().err
    assert "is a folder, not a database file" in err and "Traceback" not in err
