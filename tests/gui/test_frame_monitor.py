"""The frame monitor, opened from the Station menu: the frames of a bus polled by this window
(and by another reading service, as ``serve`` would), corrupt replies highlighted, pause, the
slave filter and Save; screenshots in English and Chinese, looked at."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.core.service import ReadingService
from app.ui.language import apply_language
from app.views import window_actions
from app.views.frame_monitor import ERROR_COLOUR, FrameMonitor


def _rows(view) -> list:
    return [frame for frame, _meaning in view.model.rows]


def _has_corrupt_and_good(view) -> bool:
    rows = view.model.rows
    return len(rows) >= 30 and any(f.error == "crc" for f, _m in rows) and any(
        "voltage" in m for f, m in rows if f.direction == "rx" and not f.error)


def test_monitor_shows_the_bus_this_window_polls(qtbot, live_campus, open_window, shoot,
                                                 tmp_path):
    db, sim = live_campus
    sim.set_faults("1.3:crc=0.4;1.5:drop=0.3")
    window = open_window(db, start=True, role="maintenance")
    action = window.actions_["frame_monitor"]
    assert action.isVisible() and action.text() == "&Frame monitor…"
    qtbot.waitUntil(lambda: window.ctx.source.service is not None
                    and window.ctx.source.service.frame_feed.endpoint is not None,
                    timeout=10_000)
    action.trigger()
    view = window.dialogs["frame_monitor"]
    qtbot.waitUntil(lambda: _has_corrupt_and_good(view), timeout=30_000)
    model = view.model
    crc_row = next(r for r, (f, _m) in enumerate(model.rows) if f.error == "crc")
    background = model.data(model.index(crc_row, 0), Qt.ItemDataRole.BackgroundRole)
    assert background == ERROR_COLOUR["crc"]
    assert model.rows[crc_row][1].startswith("corrupt frame:")
    assert all(f.slave == 3 for f in _rows(view) if f.error == "crc")
    good = next(m for f, m in model.rows if f.direction == "rx" and not f.error
                and "voltage" in m)
    assert good.startswith("meter ") and " V" in good
    tx = next(r for r, (f, _m) in enumerate(model.rows) if f.direction == "tx")
    assert model.data(model.index(tx, 1)) == "TX"
    assert len(model.data(model.index(tx, 0))) == len("12:00:00.000")
    assert "frames dropped" in view.dropped.text() and "pid" in view.source.text()
    qtbot.waitUntil(lambda: any(f.error == "timeout" and f.slave == 5 for f in _rows(view)),
                    timeout=20_000)
    timeout_row = next(r for r, (f, _m) in enumerate(model.rows) if f.error == "timeout")
    assert model.rows[timeout_row][1].startswith("no answer (timeout): read 0x")
    view.table.scrollToBottom()
    shoot(view, "frame_monitor")

    view.pause_button.click()  # frozen, while frames are still kept
    shown = model.rowCount()
    qtbot.waitUntil(lambda: view.unseen > 10, timeout=10_000)
    assert model.rowCount() == shown and "paused" in view.count.text()
    view.pause_button.click()
    assert model.rowCount() > shown and view.pause_button.text() == "Pause"

    view.slave.setValue(3)
    assert model.rowCount() > 0 and all(f.slave == 3 for f in _rows(view))
    shoot(view, "frame_monitor_slave3")
    path = tmp_path / "frames.txt"
    view.save_to(path)
    qtbot.waitUntil(lambda: path.exists() and "saved" in view.source.text(), timeout=5_000)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines and all(" B01 " in line for line in lines)
    assert any("[crc]" in line and "corrupt frame: protocol id" in line for line in lines)
    view.slave.setValue(0)
    assert any(f.slave != 3 for f in _rows(view))

    apply_language("zh_CN")
    zh = FrameMonitor(window.ctx, window)
    qtbot.addWidget(zh)
    zh.show()
    qtbot.waitUntil(lambda: _has_corrupt_and_good(zh), timeout=30_000)
    zh.table.scrollToBottom()
    shoot(zh, "frame_monitor_zh")
    zh.close()
    view.close()


def test_monitor_follows_another_process_that_polls(qtbot, live_campus, open_window, shoot):
    """The window does not poll: a reading service (``serve``'s) holds the buses, and the
    monitor gets its frames through the feed it published."""
    db, _sim = live_campus
    window = open_window(db, role="maintenance")  # not started: this window does not poll
    window_actions.frame_monitor(window)
    view = window.dialogs["frame_monitor"]
    qtbot.waitUntil(lambda: view.problem.isVisible(), timeout=10_000)
    assert "No process publishes bus frames" in view.problem.text()
    service = ReadingService(role="serve", flush_s=0.05)
    ok, _info = service.start()
    assert ok
    try:
        qtbot.waitUntil(lambda: view.model.rowCount() >= 20, timeout=20_000)  # it retried
        assert not view.problem.isVisible()
        assert all(f.bus == "B01" for f in _rows(view))
    finally:
        view.close()
        service.stop()
