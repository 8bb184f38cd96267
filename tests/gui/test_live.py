"""The window on live meters: polling the in-process simulator itself, and following a
``serve`` process that holds the buses. Screenshots under artifacts/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt

from app.core.live import LiveBatch
from app.storage import lease, readings
from app.ui.icons import state_icon
from app.ui.live_store import MeterState
from app.ui.workers import running_threads
from app.views.room_table import COL

ROOT = Path(__file__).resolve().parent.parent.parent
LIVE_KEYS = ("voltage", "current", "power", "power_factor", "frequency")


def _texts(panel) -> dict[str, str]:
    return {key: label.text() for key, label in panel.values.items()}


def _wait_for_change(qtbot, panel, timeout=15_000) -> tuple[dict, dict]:
    """Wait for a first read, then for a later read whose electrical values differ."""
    qtbot.waitUntil(lambda: panel.values["read_at"].text() != "–", timeout=timeout)
    first = _texts(panel)
    qtbot.waitUntil(lambda: panel.values["read_at"].text() != first["read_at"]
                    and any(panel.values[k].text() != first[k] for k in LIVE_KEYS),
                    timeout=timeout)
    return first, _texts(panel)


def test_selected_room_shows_live_values_that_change(qtbot, live_campus, open_window,
                                                     shoot):
    db, sim = live_campus
    window = open_window(db, start=True)
    ctx = window.ctx
    assert ctx.source.polling
    # one QThread per bus, and the service's own (supervised) loops
    assert sorted(running_threads()) == ["billing", "bus-B01", "control", "holds", "lease",
                                         "writer"]
    room = ctx.index.exact("1-101")
    meter_id = ctx.index.meters_of[room][0]
    window.tree.select_node(room)
    with qtbot.waitSignal(ctx.bridge.batch, timeout=10_000,
                          check_params_cb=lambda b: isinstance(b, LiveBatch) and any(
                              m.meter_id == meter_id for m in b.meters)):
        pass
    _first, later = _wait_for_change(qtbot, window.panel)
    assert later["voltage"].endswith(" V") and later["frequency"].endswith(" Hz")
    assert later["energy"].endswith(" kWh") and later["money"].startswith("¥")
    assert window.tree.model._state[room] in (MeterState.ONLINE, MeterState.LOW_BALANCE,
                                              MeterState.KEEP_POWER)
    qtbot.waitUntil(lambda: window.buses_label.text() == "Buses healthy: 1/1", timeout=10_000)
    assert window.source_label.text() == "Polling 1 bus"
    assert len(window.panel._t) >= 2  # the chart grows with the live reads
    shoot(window, "gui_live_room")

    # the meters change: one runs dry (its relay opens), one runs low; the tree's icons follow
    sim.meter(1, 2).set_money(0)
    sim.meter(1, 3).set_money(500)
    tree_model = window.tree.model
    dry, low = ctx.index.exact("1-102"), ctx.index.exact("1-103")

    def icon_of(node_id):
        return tree_model.index_of(node_id).data(Qt.ItemDataRole.DecorationRole).cacheKey()

    def shows(node_id, state):  # the state's icon, with the room's alarm badge if it has one
        return icon_of(node_id) == state_icon(state, tree_model.alarm_level(node_id)).cacheKey()

    qtbot.waitUntil(lambda: shows(dry, MeterState.TRIPPED) and shows(low, MeterState.LOW_BALANCE),
                    timeout=10_000)
    assert tree_model.index_of(dry, 1).data() == "tripped"

    window.tree.select_node(ctx.index.parent_of(room))  # the floor: the table is live too
    read_at = COL["read_at"]
    row_texts = lambda: [window.table.proxy.index(r, read_at).data()  # noqa: E731
                         for r in range(window.table.proxy.rowCount())]
    before = row_texts()
    qtbot.waitUntil(lambda: row_texts() != before, timeout=10_000)
    shoot(window, "gui_live_floor")


def test_window_follows_the_serve_process(qtbot, live_campus, open_window, shoot):
    db, _sim = live_campus
    serve = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "serve", "--db", str(db)],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        qtbot.waitUntil(lambda: (h := lease.holder()) is not None and h.pid == serve.pid,
                        timeout=30_000)
        qtbot.waitUntil(lambda: any(r.online for r in readings.latest()), timeout=15_000)
        window = open_window(db, start=True, check_interval_s=0.5)
        source = window.ctx.source
        assert not source.polling and source.holder is not None
        assert source.holder.holder == "serve" and source.holder.pid == serve.pid
        assert running_threads() == ["db-feed"]  # no bus thread here: nothing polls twice
        assert window.source_label.text() == f"Polled by {source.holder.describe()}"
        window.tree.select_node(window.ctx.index.exact("1-103"))
        _wait_for_change(qtbot, window.panel)
        qtbot.waitUntil(lambda: window.buses_label.text() == "Buses healthy: 1/1",
                        timeout=10_000)
        shoot(window, "gui_polled_by_serve")

        serve.terminate()  # the holder leaves: the window takes the buses over
        serve.wait(20)
        qtbot.waitUntil(lambda: source.polling, timeout=15_000)
        assert window.source_label.text() == "Polling 1 bus"
        assert sorted(running_threads()) == ["billing", "bus-B01", "control", "holds", "lease",
                                         "writer"]
        _wait_for_change(qtbot, window.panel)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(10)
