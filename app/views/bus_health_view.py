"""Bus health: per bus its figures over a chosen time range (transactions per second, success
rate, timeouts, CRC errors, exceptions, response time, cycle time against the wire-time limit)
and a strip of its meters as small cells coloured by health; below, the chosen bus's meters,
worst first; a second tab lists the campus's worst meters.

The view asks the core (``bus_health.health``) through the runner, off the GUI thread, every
few seconds while it is open (less often for the long ranges), and shows what comes back; it
computes nothing itself. A click on a meter's cell selects the meter in the table below.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QHelpEvent, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidgetItem,
    QTabWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.core import bus_health
from app.core.bus_health import BusHealth, HealthReport, MeterHealth
from app.i18n import N_, _
from app.ui.context import AppContext
from app.ui.runner import Job
from app.ui.widgets import row_table

BUS_COLUMNS = (N_("Bus"), N_("Health"), N_("Transactions/s"), N_("Success"), N_("Timeouts"),
               N_("CRC errors"), N_("Exceptions"), N_("Response ms (mean / worst)"),
               N_("Cycle s (mean / worst)"), N_("Wire limit s"), N_("Meters"))
STRIP_COLUMN = 10
METER_COLUMNS = (N_("Address"), N_("Room"), N_("Health"), N_("Success"), N_("Transactions/s"),
                 N_("Timeouts"), N_("CRC errors"), N_("Exceptions"),
                 N_("Response ms (mean / worst)"), N_("Good reads"))
WORST_COLUMNS = (N_("Rank"), N_("Bus"), *METER_COLUMNS)
#: The time ranges offered: (minutes, label, seconds between refreshes).
RANGES = ((15, N_("Last 15 minutes"), 5), (60, N_("Last hour"), 10),
          (360, N_("Last 6 hours"), 30), (1440, N_("Last 24 hours"), 60))
HEALTH_COLOUR = {"good": QColor("#2e7d32"), "fair": QColor("#f9a825"),
                 "poor": QColor("#c62828"), "offline": QColor("#8a8a8a"),
                 "idle": QColor("#d6d6d6")}
#: A meter's cell in a strip (px), and the gap between cells.
CELL, GAP = 14, 3
#: The narrowest a cell gets when a bus has many meters and the column is narrow.
MIN_CELL = 5


def _rate(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f} %"


def _num(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _pair(a: float | None, b: float | None, spec: str) -> str:
    return f"{_num(a, spec)} / {_num(b, spec)}"


def meter_tooltip(m: MeterHealth) -> str:
    f = m.figures
    room = m.room or _("no room")
    return "\n".join((
        _("{room}: bus {bus}, address {address}").format(room=room, bus=m.bus,
                                                         address=m.address),
        _("{health}; success {rate} of {n} transactions").format(
            health=bus_health.health_text(m.health), rate=_rate(f.success_rate),
            n=f.transactions),
        _("timeouts {timeouts}, CRC errors {crc}, exceptions {exc}").format(
            timeouts=f.timeouts, crc=f.crc_errors, exc=f.exceptions),
        _("response {mean} / {worst} ms (mean / worst)").format(
            mean=_num(f.mean_latency_ms, ".1f"), worst=_num(f.worst_latency_ms, ".1f"))))


class MeterStrip(QWidget):
    """A bus's meters, in address order, as small cells coloured by health; a tooltip tells
    the meter's room and figures, a click says which meter (``meterClicked``)."""

    meterClicked = Signal(int, int)  # bus id, meter id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bus_id = 0
        self.meters: list[MeterHealth] = []
        self.chosen: int | None = None
        self.setMouseTracking(True)
        self.setMinimumHeight(CELL + 6)

    def set_meters(self, bus_id: int, meters: list[MeterHealth]) -> None:
        self.bus_id, self.meters = bus_id, meters
        self.updateGeometry()
        self.update()

    def set_chosen(self, meter_id: int | None) -> None:
        self.chosen = meter_id
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(max(1, len(self.meters)) * (CELL + GAP) + 6, CELL + 6)

    def minimumSizeHint(self) -> QSize:
        return QSize(max(1, len(self.meters)) * (MIN_CELL + 1) + 6, CELL + 6)

    def _pitch(self) -> tuple[int, int]:
        """A cell's width and the gap after it: as large as the width allows, up to CELL."""
        n = max(1, len(self.meters))
        pitch = max(MIN_CELL + 1, min(CELL + GAP, (self.width() - 6) // n))
        gap = max(1, round(pitch * GAP / (CELL + GAP)))
        return pitch - gap, gap

    def cell_rect(self, index: int) -> QRect:
        width, gap = self._pitch()
        top = max(3, (self.height() - CELL) // 2)
        return QRect(3 + index * (width + gap), top, width, CELL)

    def meter_at(self, pos: QPoint) -> MeterHealth | None:
        for i, m in enumerate(self.meters):
            if self.cell_rect(i).adjusted(-1, -2, 1, 2).contains(pos):
                return m
        return None

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for i, m in enumerate(self.meters):
            rect = self.cell_rect(i)
            painter.fillRect(rect, HEALTH_COLOUR.get(m.health, HEALTH_COLOUR["idle"]))
            if m.health == "idle":  # no traffic: an outline, to be seen on white
                painter.setPen(QColor("#9e9e9e"))
                painter.drawRect(rect.adjusted(0, 0, -1, -1))
            if m.meter_id == self.chosen:
                painter.setPen(QColor("#1565c0"))
                painter.drawRect(rect.adjusted(-2, -2, 1, 1))
                painter.drawRect(rect.adjusted(-1, -1, 0, 0))
        painter.end()

    def event(self, event) -> bool:
        if isinstance(event, QHelpEvent):
            m = self.meter_at(event.pos())
            if m is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), meter_tooltip(m), self)
            return True
        return super().event(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        m = self.meter_at(event.position().toPoint())
        if m is not None:
            self.meterClicked.emit(self.bus_id, m.meter_id)
        super().mousePressEvent(event)


def _item(text: str, colour: QColor | None = None, *, right: bool = False,
          tooltip: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if colour is not None:
        item.setForeground(colour)
    if right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if tooltip:
        item.setToolTip(tooltip)
    return item


def _health_item(health: str) -> QTableWidgetItem:
    colour = HEALTH_COLOUR.get(health)
    item = _item(f"■ {bus_health.health_text(health)}")
    if colour is not None and health != "idle":
        item.setForeground(colour if health != "fair" else QColor("#b26a00"))
    return item


def _meter_cells(m: MeterHealth) -> tuple[QTableWidgetItem, ...]:
    """A meter's row: METER_COLUMNS."""
    f = m.figures
    return (_item(str(m.address), right=True), _item(m.room), _health_item(m.health),
            _item(_rate(f.success_rate), right=True),
            _item(f"{m.transactions_per_s:.2f}", right=True),
            _item(str(f.timeouts), right=True), _item(str(f.crc_errors), right=True),
            _item(str(f.exceptions), right=True),
            _item(_pair(f.mean_latency_ms, f.worst_latency_ms, ".1f"), right=True),
            _item(f"{f.ok} / {f.polls}"))


class BusHealthView(QDialog):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("BusHealthView")
        self.ctx = ctx
        self.report: HealthReport | None = None
        self.refreshed = 0  # figures shown so far
        self.job: Job | None = None
        self.bus_id: int | None = None  # the bus whose meters are listed
        self.strips: dict[int, MeterStrip] = {}

        self.range = QComboBox()
        for minutes, label, _every in RANGES:
            self.range.addItem(_(label), minutes)
        self.range.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.updated = QLabel()
        self.refresh_button = QPushButton(_("Refresh"))
        top = QHBoxLayout()
        top.addWidget(QLabel(_("Time range:")))
        top.addWidget(self.range)
        top.addStretch(1)
        top.addWidget(self.updated)
        top.addWidget(self.refresh_button)

        self.buses = row_table(BUS_COLUMNS, STRIP_COLUMN)
        self.meters_label = QLabel()
        self.meters = row_table(METER_COLUMNS, len(METER_COLUMNS) - 1)
        below = QWidget()
        lower = QVBoxLayout(below)
        lower.setContentsMargins(0, 0, 0, 0)
        lower.addWidget(self.meters_label)
        lower.addWidget(self.meters)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.buses)
        split.addWidget(below)
        split.setSizes([260, 340])
        self.worst = row_table(WORST_COLUMNS, len(WORST_COLUMNS) - 1)
        self.worst_note = QLabel(_("The meters whose transactions failed most often, then the "
                                   "slowest to answer, of every bus."))
        self.worst_note.setWordWrap(True)
        worst_page = QWidget()
        worst_layout = QVBoxLayout(worst_page)
        worst_layout.addWidget(self.worst_note)
        worst_layout.addWidget(self.worst)
        self.tabs = QTabWidget()
        self.tabs.addTab(split, _("Buses"))
        self.tabs.addTab(worst_page, _("Worst meters of the campus"))
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setText(self._legend())
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs)
        layout.addWidget(self.legend)
        self.setWindowTitle(_("Bus health"))
        self.resize(1200, 720)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self.load)
        self.range.currentIndexChanged.connect(self._range_changed)
        self.refresh_button.clicked.connect(self.load)
        self.buses.itemSelectionChanged.connect(self._bus_chosen)
        self._range_changed()

    def _legend(self) -> str:
        parts = []
        for health, text in (("good", _("good (99 % or more succeed)")),
                             ("fair", _("fair (90 % or more)")), ("poor", _("poor")),
                             ("offline", _("offline")), ("idle", _("no traffic"))):
            parts.append(f'<span style="color:{HEALTH_COLOUR[health].name()}">■</span> '
                         f"{text}")
        return "&nbsp;&nbsp;&nbsp;".join(parts)

    # -- asking ----------------------------------------------------------------------------------
    def minutes(self) -> int:
        return int(self.range.currentData())

    def _range_changed(self) -> None:
        every = next(e for m, _l, e in RANGES if m == self.minutes())
        self.timer.start(every * 1000)
        self.load()

    def load(self) -> None:
        """Ask for the figures (once at a time: a refresh while one runs is skipped)."""
        if self.job is not None and not self.job.done:
            return
        operator, minutes = self.ctx.operator, self.minutes()
        self.job = self.ctx.runner.run(
            lambda: bus_health.health(operator, minutes=minutes, worst=50),
            title=_("Bus health"), parent=self, on_done=self._loaded, quiet=True)

    # -- showing ---------------------------------------------------------------------------------
    def _loaded(self, report: HealthReport) -> None:
        self.report = report
        self.refreshed += 1
        self.updated.setText(_("as of {time}").format(
            time=time.strftime("%H:%M:%S", time.localtime(report.until))))
        self._fill_buses(report.buses)
        self._fill_worst(report.worst)
        if self.bus_id is None and report.buses:
            self.bus_id = report.buses[0].bus_id
        self._select_bus(self.bus_id)

    def _fill_buses(self, buses: list[BusHealth]) -> None:
        table = self.buses
        table.blockSignals(True)
        table.setRowCount(len(buses))
        for row, b in enumerate(buses):
            f = b.figures
            limit = _num(b.wire_limit_s, ".2f") if b.wire_limit_s is not None else (
                _("none (TCP)") if b.link.startswith("tcp:") else "–")
            slow = b.wire_limit_s is not None and b.cycle_mean_s is not None \
                and b.cycle_mean_s > 2 * b.wire_limit_s
            cells = (_item(b.name, tooltip=b.link), _health_item(b.health),
                     _item(f"{b.transactions_per_s:.1f}", right=True),
                     _item(_rate(f.success_rate), right=True),
                     _item(str(f.timeouts), right=True), _item(str(f.crc_errors), right=True),
                     _item(str(f.exceptions), right=True),
                     _item(_pair(f.mean_latency_ms, f.worst_latency_ms, ".1f"), right=True),
                     _item(_pair(b.cycle_mean_s, b.cycle_max_s, ".2f"), right=True,
                           colour=HEALTH_COLOUR["poor"] if slow else None,
                           tooltip=_("{n} full cycles").format(n=b.cycles)),
                     _item(limit, right=True, tooltip=_(
                         "the least time a full cycle's frames take on the wire at the bus's "
                         "speed")))
            for col, item in enumerate(cells):
                item.setData(Qt.ItemDataRole.UserRole, b.bus_id)
                table.setItem(row, col, item)
            strip = self.strips.get(b.bus_id)
            if strip is None or table.cellWidget(row, STRIP_COLUMN) is not strip:
                strip = MeterStrip()
                strip.meterClicked.connect(self.choose_meter)
                self.strips[b.bus_id] = strip
                table.setCellWidget(row, STRIP_COLUMN, strip)
            strip.set_meters(b.bus_id, b.strip)
        table.blockSignals(False)
        table.resizeRowsToContents()

    def _fill_worst(self, meters: list[MeterHealth]) -> None:
        table = self.worst
        table.setRowCount(len(meters))
        for row, m in enumerate(meters):
            cells = (_item(str(row + 1), right=True), _item(m.bus), *_meter_cells(m))
            for col, item in enumerate(cells):
                item.setToolTip(meter_tooltip(m))
                table.setItem(row, col, item)
        table.resizeRowsToContents()

    def _bus(self, bus_id: int | None) -> BusHealth | None:
        if self.report is None:
            return None
        return next((b for b in self.report.buses if b.bus_id == bus_id), None)

    def _select_bus(self, bus_id: int | None) -> None:
        for row in range(self.buses.rowCount()):
            if self.buses.item(row, 0).data(Qt.ItemDataRole.UserRole) == bus_id:
                if self.buses.currentRow() != row:
                    self.buses.selectRow(row)
                break
        self._fill_meters(self._bus(bus_id))

    def _bus_chosen(self) -> None:
        row = self.buses.currentRow()
        if row < 0 or self.buses.item(row, 0) is None:
            return
        bus_id = self.buses.item(row, 0).data(Qt.ItemDataRole.UserRole)
        if bus_id != self.bus_id:
            self.bus_id = bus_id
            self._fill_meters(self._bus(bus_id))

    def _fill_meters(self, bus: BusHealth | None) -> None:
        chosen = self.chosen_meter()
        meters = bus.meters if bus is not None else []
        self.meters_label.setText(
            _("Meters of bus {bus}, worst first").format(bus=bus.name) if bus else "")
        table = self.meters
        table.setRowCount(len(meters))
        for row, m in enumerate(meters):
            for col, item in enumerate(_meter_cells(m)):
                item.setData(Qt.ItemDataRole.UserRole, m.meter_id)
                item.setToolTip(meter_tooltip(m))
                table.setItem(row, col, item)
        table.resizeRowsToContents()
        if chosen is not None:
            self._select_meter_row(chosen)

    def chosen_meter(self) -> int | None:
        row = self.meters.currentRow()
        item = self.meters.item(row, 0) if row >= 0 else None
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def _select_meter_row(self, meter_id: int) -> bool:
        for row in range(self.meters.rowCount()):
            if self.meters.item(row, 0).data(Qt.ItemDataRole.UserRole) == meter_id:
                self.meters.selectRow(row)
                self.meters.scrollToItem(self.meters.item(row, 0))
                for strip in self.strips.values():
                    strip.set_chosen(meter_id)
                return True
        return False

    def choose_meter(self, bus_id: int, meter_id: int) -> None:
        """A meter's cell was clicked: its bus's meters below, the meter selected."""
        self.tabs.setCurrentIndex(0)
        self.bus_id = bus_id
        self._select_bus(bus_id)
        self._select_meter_row(meter_id)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.timer.stop()
        super().closeEvent(event)

    def hideEvent(self, event) -> None:
        self.timer.stop()
        super().hideEvent(event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self.timer.isActive() and self.report is not None:
            self._range_changed()
