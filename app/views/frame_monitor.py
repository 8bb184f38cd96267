"""The frame monitor: a bus's raw Modbus frames as they pass, what they mean, what went wrong.

The frames come from the process that polls the buses (this window's own reading service, or
``serve`` elsewhere on this computer) through its frame feed (``core/frame_feed.py``; the
subscription is ``core/frame_client.py``): the view never talks to a meter. It shows one bus
at a time, newest at the bottom: time to the millisecond, direction, slave id, function code,
the bytes in hex and their meaning by the meter's profile; CRC errors, timeouts and Modbus
exceptions in colour. Pause freezes the table
while frames are still kept (the last ``RING_FRAMES``); the slave filter and Save work on what
is kept. Frames the feed had to drop (this window could not keep up) are counted.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer
from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core import frame_client
from app.core.frame_client import FrameFeedClient, MonitorSetup, frame_time
from app.drivers.frames import RING_FRAMES, Frame, FrameRing, error_text
from app.i18n import N_, _, ngettext
from app.ui.context import AppContext
from app.ui.widgets import ERROR_STYLE

COLUMNS = (N_("Time"), N_("Dir."), N_("Slave"), N_("Function"), N_("Bytes"), N_("Meaning"))
BYTES_COLUMN, MEANING_COLUMN = 4, 5
DIRECTION_TEXT = {"tx": N_("TX"), "rx": N_("RX")}
#: Row colours of the errors (background); text stays dark on them.
ERROR_COLOUR = {"crc": QColor("#f6c4c0"), "timeout": QColor("#fbe0a8"),
                "exception": QColor("#e3cff3"), "link": QColor("#d6d6d6")}
DARK_TEXT = QColor("#1f1f1f")
DRAIN_MS = 250
RECONNECT_MS = 3000


class FrameTableModel(QAbstractTableModel):
    """The shown frames with their meaning, at most ``limit`` (the oldest go first)."""

    def __init__(self, limit: int = RING_FRAMES) -> None:
        super().__init__()
        self.limit = limit
        self.rows: list[tuple[Frame, str]] = []
        self.headers = [_(c) for c in COLUMNS]

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        frame, meaning = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(frame, meaning, col)
        if role == Qt.ItemDataRole.BackgroundRole and frame.error in ERROR_COLOUR:
            return ERROR_COLOUR[frame.error]
        if role == Qt.ItemDataRole.ForegroundRole and frame.error in ERROR_COLOUR:
            return DARK_TEXT
        if role == Qt.ItemDataRole.ToolTipRole and col in (BYTES_COLUMN, MEANING_COLUMN):
            tip = cell_text(frame, meaning, col)
            return f"{error_text(frame.error)}\n{tip}" if frame.error else tip
        return None

    def reset(self, rows: list[tuple[Frame, str]]) -> None:
        self.beginResetModel()
        self.rows = rows[-self.limit:]
        self.endResetModel()

    def append(self, rows: list[tuple[Frame, str]]) -> None:
        if not rows:
            return
        rows = rows[-self.limit:]
        over = len(self.rows) + len(rows) - self.limit
        if over > 0:
            self.beginRemoveRows(QModelIndex(), 0, over - 1)
            del self.rows[:over]
            self.endRemoveRows()
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self.rows.extend(rows)
        self.endInsertRows()


def cell_text(frame: Frame, meaning: str, col: int) -> str:
    if col == 0:
        return frame_time(frame.t)
    if col == 1:
        return _(DIRECTION_TEXT.get(frame.direction, frame.direction))
    if col == 2:
        return "" if frame.slave is None else str(frame.slave)
    if col == 3:
        return "" if frame.function is None else f"{frame.function:02X}"
    if col == BYTES_COLUMN:
        return frame.data.hex(" ").upper()
    return meaning


class FrameMonitor(QDialog):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FrameMonitor")
        self.ctx = ctx
        self.setup: MonitorSetup | None = None
        self.client: FrameFeedClient | None = None
        self.ring = FrameRing()
        self.paused = False
        self.unseen = 0  # frames come in while paused
        self._connecting = False

        self.bus = QComboBox()
        self.bus.setObjectName("bus")
        self.bus.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.slave = QSpinBox()
        self.slave.setObjectName("slave_filter")
        self.slave.setRange(0, 247)
        self.slave.setSpecialValueText(_("Every slave"))
        self.pause_button = QPushButton(_("Pause"))
        self.pause_button.setObjectName("pause")
        self.clear_button = QPushButton(_("Clear"))
        self.save_button = QPushButton(_("Save…"))
        self.save_button.setObjectName("save")
        bar = QHBoxLayout()
        bar.addWidget(QLabel(_("Bus:")))
        bar.addWidget(self.bus)
        bar.addSpacing(12)
        bar.addWidget(QLabel(_("Slave id:")))
        bar.addWidget(self.slave)
        bar.addStretch(1)
        bar.addWidget(self.pause_button)
        bar.addWidget(self.clear_button)
        bar.addWidget(self.save_button)

        self.model = FrameTableModel()
        self.table = QTableView()
        self.table.setObjectName("frames")
        self.table.setModel(self.model)
        self.table.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(
            self.table.fontMetrics().height() + 6)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(MEANING_COLUMN, QHeaderView.ResizeMode.Stretch)
        widths = (100, 48, 52, 70, 330)
        for col, width in enumerate(widths):
            self.table.setColumnWidth(col, width)

        self.legend = QLabel(" ".join(
            f'<span style="background:{ERROR_COLOUR[k].name()}; color:#1f1f1f">'
            f"&nbsp;{error_text(k)}&nbsp;</span>" for k in ("crc", "timeout", "exception")))
        self.source = QLabel()
        self.source.setObjectName("source")
        self.problem = QLabel()
        self.problem.setObjectName("problem")
        self.problem.setStyleSheet(ERROR_STYLE)
        self.problem.setWordWrap(True)
        self.problem.hide()
        self.count = QLabel()
        self.count.setObjectName("count")
        self.dropped = QLabel()
        self.dropped.setObjectName("dropped")
        foot = QHBoxLayout()
        foot.addWidget(self.legend)
        foot.addSpacing(16)
        foot.addWidget(self.count)
        foot.addSpacing(16)
        foot.addWidget(self.dropped)
        foot.addStretch(1)
        foot.addWidget(self.source)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.problem)
        layout.addWidget(self.table)
        layout.addLayout(foot)
        self.setWindowTitle(_("Frame monitor"))
        self.resize(1200, 600)

        self.drain_timer = QTimer(self)
        self.drain_timer.setInterval(DRAIN_MS)
        self.drain_timer.timeout.connect(self.drain)
        self.bus.currentIndexChanged.connect(self._bus_chosen)
        self.slave.valueChanged.connect(self._refilter)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.clear_button.clicked.connect(self.clear)
        self.save_button.clicked.connect(self.save)
        self._show_counts()
        self.load()

    # -- where the frames come from ------------------------------------------------------------
    def load(self) -> None:
        operator = self.ctx.operator
        self.ctx.runner.run(lambda: frame_client.monitor_setup(operator),
                            title=_("Frame monitor"), parent=self, on_done=self._loaded)

    def _loaded(self, setup: MonitorSetup) -> None:
        self.setup = setup
        self.bus.blockSignals(True)
        self.bus.clear()
        for name in setup.buses:
            self.bus.addItem(name, name)
        self.bus.blockSignals(False)
        self.drain_timer.start()
        self._bus_chosen()

    def current_bus(self) -> str:
        return self.bus.currentData() or ""

    def _bus_chosen(self) -> None:
        self.ring = FrameRing()
        self.unseen = 0
        self.model.reset([])
        if self.client is not None and self.client.alive:
            self.client.take()
            self.client.watch([self.current_bus()])
            self._show_counts()
            return
        self.connect_feed()

    def connect_feed(self) -> None:
        """Subscribe to the chosen bus: through the runner (the database says where the feed
        is; connecting may take a moment)."""
        if self.setup is None or not self.current_bus() or self._connecting:
            return
        self._connecting = True
        operator, bus = self.ctx.operator, self.current_bus()

        def work() -> tuple[MonitorSetup, FrameFeedClient]:
            setup = frame_client.monitor_setup(operator)  # the feed may have moved
            return setup, setup.connect([bus])

        self.ctx.runner.run(work, title=_("Frame monitor"), parent=self,
                            on_done=self._connected, on_error=self._not_connected)

    def _connected(self, result: tuple[MonitorSetup, FrameFeedClient]) -> None:
        self._connecting = False
        self.setup, client = result
        if not self.isVisible():  # closed while connecting
            client.close()
            return
        if self.client is not None:
            self.client.close()
        self.client = client
        if client.buses != [self.current_bus()]:
            client.watch([self.current_bus()])
        self.problem.clear()
        self.problem.hide()
        self._show_counts()

    def _not_connected(self, exc: BaseException) -> None:
        self._connecting = False
        self.problem.setText(str(exc))
        self.problem.show()
        self._show_counts()
        QTimer.singleShot(RECONNECT_MS, self._retry)

    def _retry(self) -> None:
        if self.isVisible() and (self.client is None or not self.client.alive):
            self.connect_feed()

    # -- frames in -------------------------------------------------------------------------------
    def drain(self) -> None:
        client = self.client
        if client is None:
            return
        if not client.alive:
            self.problem.setText(_("No frames: {why}. Trying again…").format(
                why=client.error or _("the polling process stopped publishing frames")))
            self.problem.show()
            client.close()
            self.client = None
            self._show_counts()
            QTimer.singleShot(RECONNECT_MS, self._retry)
            return
        bus = self.current_bus()
        frames = [f for f in client.take() if f.bus == bus]
        if frames:
            self.ring.extend(frames)
            if self.paused:
                self.unseen += len(frames)
            else:
                self._append(frames)
        self._show_counts()

    def _wanted(self, frame: Frame) -> bool:
        slave = self.slave.value()
        return not slave or frame.slave == slave

    def _rows(self, frames: list[Frame]) -> list[tuple[Frame, str]]:
        assert self.setup is not None
        meaning = self.setup.meaning
        return [(f, meaning(f)) for f in frames if self._wanted(f)]

    def _append(self, frames: list[Frame]) -> None:
        bar = self.table.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        self.model.append(self._rows(frames))
        if at_end:
            self.table.scrollToBottom()

    def _refilter(self) -> None:
        if self.setup is None or self.paused:
            return
        self.model.reset(self._rows(self.ring.frames()))
        self.table.scrollToBottom()

    # -- the buttons -----------------------------------------------------------------------------
    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self.pause_button.setText(_("Resume") if self.paused else _("Pause"))
        if not self.paused:
            self.unseen = 0
            self._refilter()
        self._show_counts()

    def clear(self) -> None:
        self.ring.clear()
        self.unseen = 0
        self.model.reset([])
        self._show_counts()

    def save(self) -> None:
        if self.setup is None:
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path, _filter = QFileDialog.getSaveFileName(
            self, _("Save frames"), f"frames-{self.current_bus()}-{stamp}.txt",
            _("Text files (*.txt)"))
        if path:
            self.save_to(Path(path))

    def save_to(self, path: Path) -> None:
        """Save the frames kept that the filter shows, as text."""
        assert self.setup is not None
        frames = [f for f in self.ring.frames() if self._wanted(f)]
        meaning = self.setup.meaning
        self.ctx.runner.run(lambda: frame_client.save_frames(path, frames, meaning),
                            title=_("Save frames"), parent=self,
                            on_done=lambda n: self.source.setText(ngettext(
                                "{n} frame saved to {path}", "{n} frames saved to {path}",
                                n).format(n=n, path=path)))

    def _show_counts(self) -> None:
        shown = self.model.rowCount()
        text = ngettext("{n} frame", "{n} frames", shown).format(n=shown)
        if self.paused:
            text = _("{shown} (paused; {new} new)").format(shown=text, new=self.unseen)
        self.count.setText(text)
        dropped = self.client.dropped if self.client is not None else 0
        self.dropped.setText(ngettext("{n} frame dropped", "{n} frames dropped",
                                      dropped).format(n=dropped))
        self.dropped.setStyleSheet(ERROR_STYLE if dropped else "")
        if self.client is not None and self.setup is not None and self.setup.endpoint:
            self.source.setText(_("Frames from the polling process ({where})").format(
                where=self.setup.endpoint.describe()))
        elif self.client is None:
            self.source.setText(_("Not connected"))

    def done(self, result: int) -> None:  # closed, by any means
        self.drain_timer.stop()
        if self.client is not None:
            self.client.close()
            self.client = None
        super().done(result)
