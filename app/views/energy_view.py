"""Energy analysis: for the room, floor, building or campus chosen in the tree, over a range of
days: the daily use as bars (anomaly days in red, and listed), the intraday curve of a chosen
day, this month against the same month last year, and the top consumers with their share;
every chart with its table beside it, all exported to one Excel workbook.

The view asks the core (``energy_analysis.analyse``) through the runner, off the GUI thread: a
year of the whole campus shows its progress in the view's own bar, with a Cancel button, while
the window goes on working. It shows what comes back and computes nothing itself.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor
from PySide6.QtWidgets import (
    QDateEdit,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core import energy_analysis as ea
from app.core import energy_export
from app.core.energy_analysis import Analysis, Intraday
from app.errors import Cancelled
from app.i18n import N_, _
from app.ui.context import AppContext
from app.ui.errors import present_error
from app.ui.runner import Job
from app.ui.widgets import row_table

DAILY_COLUMNS = (N_("Day"), N_("kWh"), N_("Anomaly"))
ANOMALY_COLUMNS = (N_("Day"), N_("Room"), N_("What"), N_("kWh"), N_("Norm kWh"), N_("Where"),
                   N_("Detail"))
INTRADAY_COLUMNS = (N_("Time"), N_("kWh"))
MONTH_COLUMNS = (N_("Day"), N_("This year kWh"), N_("Last year kWh"))
RANK_COLUMNS = (N_("Rank"), N_("Room"), N_("kWh"), N_("Share"), N_("Where"))
BAR = QColor("#1565c0")
MARKED = QColor("#c62828")
LAST_YEAR = QColor("#9e9e9e")
FOLLOW_DELAY_MS = 250
KIND_TEXT = {"campus": N_("Campus"), "building": N_("Building"), "floor": N_("Floor"),
             "room": N_("Room"), "shop": N_("Shop")}


def _qdate(d: date) -> QDate:
    return QDate(d.year, d.month, d.day)


def _date(q: QDate) -> date:
    return date(q.year(), q.month(), q.day())


def _plot(title: str, unit: str = "kWh") -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setMouseEnabled(x=False, y=False)
    plot.showGrid(x=False, y=True, alpha=0.25)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    plot.setTitle(title, color="#333333")
    plot.setLabel("left", unit, color="#333333")
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setTextPen("#333333")
        axis.setPen("#888888")
    return plot


def _cell(text: str, number: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if number:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _table(columns: tuple[str, ...], stretch: int) -> QTableWidget:
    table = row_table(columns, stretch)
    header = table.verticalHeader()
    header.setMinimumSectionSize(1)
    header.setDefaultSectionSize(table.fontMetrics().height() + 8)
    return table


def _fill(table: QTableWidget, rows: list[tuple], numeric: set[int]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.setItem(r, c, _cell(str(text), c in numeric))


def _ticks(labels: list[str], most: int = 12) -> list[tuple[float, str]]:
    step = max(1, -(-len(labels) // most))
    return [(k, labels[k]) for k in range(0, len(labels), step)]


def _pair(chart: QWidget, table: QWidget, chart_share: int = 3) -> QSplitter:
    split = QSplitter(Qt.Orientation.Horizontal)
    split.addWidget(chart)
    split.addWidget(table)
    split.setStretchFactor(0, chart_share)
    split.setStretchFactor(1, 2)
    split.setChildrenCollapsible(False)
    return split


class EnergyView(QDialog):
    #: the analysis arrived and is shown
    loaded = Signal()
    #: the workbook was written: its path
    exported = Signal(str)

    def __init__(self, ctx: AppContext, node_id: int = 0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("EnergyView")
        self.ctx = ctx
        self.node_id = node_id or self._campus()
        self.analysis: Analysis | None = None
        self.job: Job | None = None
        #: walking the tree with the arrow keys asks once, for where it stops
        self.follow_timer = QTimer(self)
        self.follow_timer.setSingleShot(True)
        self.follow_timer.setInterval(FOLLOW_DELAY_MS)
        self.follow_timer.timeout.connect(lambda: self.load() if self.isVisible() else None)

        self.node_label = QLabel()
        self.node_label.setTextFormat(Qt.TextFormat.PlainText)
        font = self.node_label.font()
        font.setBold(True)
        self.node_label.setFont(font)
        today = date.today()
        self.first, self.last = QDateEdit(_qdate(today - timedelta(days=29))), QDateEdit(
            _qdate(today))
        for edit in (self.first, self.last):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.show_button = QPushButton(_("Show"))
        self.show_button.setDefault(True)
        self.export_button = QPushButton(_("Export to Excel…"))
        self.export_button.setEnabled(False)
        head = QHBoxLayout()
        head.addWidget(self.node_label, 1)
        head.addWidget(QLabel(_("From")))
        head.addWidget(self.first)
        head.addWidget(QLabel(_("to")))
        head.addWidget(self.last)
        head.addWidget(self.show_button)
        head.addWidget(self.export_button)

        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton(_("Cancel"))
        self.status = QLabel()
        self.status.setWordWrap(True)
        busy = QHBoxLayout()
        busy.addWidget(self.status, 1)
        busy.addWidget(self.bar)
        busy.addWidget(self.cancel_button)

        self.tabs = QTabWidget()
        self._daily_tab()
        self._intraday_tab()
        self._month_tab()
        self._rank_tab()

        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addLayout(busy)
        layout.addWidget(self.tabs, 1)
        self.setWindowTitle(_("Energy analysis"))
        self.resize(1200, 720)
        self._set_busy(False)
        self._show_node()

        self.show_button.clicked.connect(self.load)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(lambda: self.export())
        self.daily_table.cellDoubleClicked.connect(self._day_picked)
        self.day.dateChanged.connect(self._load_intraday)
        self.load()

    # -- building the tabs ---------------------------------------------------------------------
    def _daily_tab(self) -> None:
        self.daily_plot = _plot(_("Daily use"))
        self.daily_bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.daily_plot.addItem(self.daily_bars)
        self.daily_table = _table(DAILY_COLUMNS, 2)
        self.daily_table.setToolTip(_("Double-click a day to see its curve"))
        self.anomaly_table = _table(ANOMALY_COLUMNS, 6)
        self.anomaly_caption = QLabel()
        lower = QWidget()
        box = QVBoxLayout(lower)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.anomaly_caption)
        box.addWidget(self.anomaly_table)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(_pair(self.daily_plot, self.daily_table))
        split.addWidget(lower)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        self.tabs.addTab(split, _("Daily use"))

    def _intraday_tab(self) -> None:
        self.intraday_plot = _plot(_("Use per quarter hour"))
        self.intraday_curve = self.intraday_plot.plot(
            [0], [], stepMode="center", pen=pg.mkPen(BAR, width=2), fillLevel=0,
            brush=(21, 101, 192, 50))
        self.intraday_plot.getAxis("bottom").setStyle(hideOverlappingLabels=False)  # 00:00
        self.intraday_table = _table(INTRADAY_COLUMNS, 1)
        self.day = QDateEdit(_qdate(date.today()))
        self.day.setCalendarPopup(True)
        self.day.setDisplayFormat("yyyy-MM-dd")
        self.intraday_total = QLabel()
        top = QHBoxLayout()
        top.addWidget(QLabel(_("Day")))
        top.addWidget(self.day)
        top.addWidget(self.intraday_total, 1)
        page = QWidget()
        box = QVBoxLayout(page)
        box.addLayout(top)
        box.addWidget(_pair(self.intraday_plot, self.intraday_table), 1)
        self.tabs.addTab(page, _("Intraday"))

    def _month_tab(self) -> None:
        self.month_plot = _plot(_("This month against last year"))
        self.month_legend = self.month_plot.addLegend(
            offset=(-10, 10), brush=pg.mkBrush(255, 255, 255, 230), pen=pg.mkPen("#cccccc"),
            labelTextColor="#333333")
        self.month_bars = pg.BarGraphItem(x=[], height=[], width=0.4, brush=BAR)
        self.last_year_bars = pg.BarGraphItem(x=[], height=[], width=0.4, brush=LAST_YEAR)
        self.month_plot.addItem(self.month_bars)
        self.month_plot.addItem(self.last_year_bars)
        self.month_table = _table(MONTH_COLUMNS, 2)
        self.month_summary = QLabel()
        self.month_summary.setWordWrap(True)
        page = QWidget()
        box = QVBoxLayout(page)
        box.addWidget(self.month_summary)
        box.addWidget(_pair(self.month_plot, self.month_table), 1)
        self.tabs.addTab(page, _("Month vs last year"))

    def _rank_tab(self) -> None:
        self.rank_plot = _plot(_("Top consumers"))
        self.rank_plot.setLabel("left", "")
        self.rank_plot.setLabel("bottom", "kWh", color="#333333")
        self.rank_plot.showGrid(x=True, y=False, alpha=0.25)
        self.rank_bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.7, brush=BAR)
        self.rank_plot.addItem(self.rank_bars)
        self.rank_table = _table(RANK_COLUMNS, 4)
        self.rank_summary = QLabel()
        page = QWidget()
        box = QVBoxLayout(page)
        box.addWidget(self.rank_summary)
        box.addWidget(_pair(self.rank_plot, self.rank_table, 1), 1)
        self.tabs.addTab(page, _("Top consumers"))

    # -- what is asked -------------------------------------------------------------------------
    def _campus(self) -> int:
        roots = self.ctx.index.children.get(None, [])
        return roots[0] if roots else 0

    def _show_node(self) -> None:
        node = self.ctx.index.nodes.get(self.node_id)
        kind = _(KIND_TEXT.get(node.kind, "")) if node else ""
        where = self.ctx.index.path(self.node_id) if node else ""
        self.node_label.setText(_("{kind}: {where}").format(kind=kind, where=where) if kind
                                else where)

    def follow_node(self, node_id: int) -> None:
        """The tree's selection changed: analyse that node (nothing selected: keep the last)."""
        if node_id and node_id != self.node_id and self.isVisible():
            self.node_id = node_id
            self._show_node()
            self.follow_timer.start()

    def load(self) -> None:
        """Ask for the whole analysis of the node over the range (a running one is dropped)."""
        self.follow_timer.stop()
        if not self.node_id:
            return
        self.cancel(quietly=True)
        first, last = _date(self.first.date()), _date(self.last.date())
        self.day.blockSignals(True)
        self.day.setDate(_qdate(last))
        self.day.blockSignals(False)
        operator, node_id = self.ctx.operator, self.node_id
        self._set_busy(True)
        self.status.setText(_("Working…"))

        def work(progress):
            return ea.analyse(operator, node_id, first, last, day=last, month=last,
                              progress=progress)

        job = self.ctx.runner.run(work, title=_("Energy analysis"), parent=self, progress=True,
                                  quiet=True, on_progress=self._progressed,
                                  on_done=lambda result: self._loaded(job, result),
                                  on_error=lambda exc: self._failed(job, exc))
        self.job = job

    def cancel(self, quietly: bool = False) -> None:
        """Stop the running analysis at its next step."""
        if self.job is not None and not self.job.done:
            self.job.progress.cancel()
            self.job = None
            self._set_busy(False)
            if not quietly:
                self.status.setText(_("Cancelled."))

    def _progressed(self, done: int, total: int, text: str) -> None:
        self.bar.setMaximum(max(total, 1))
        self.bar.setValue(min(done, total))
        if text:
            self.status.setText(text)

    def _set_busy(self, busy: bool) -> None:
        self.bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.bar.setValue(0)
        self.show_button.setEnabled(not busy)

    def _failed(self, job: Job, exc: BaseException) -> None:
        if job is not self.job:
            return  # dropped: a newer question is on its way
        self.job = None
        self._set_busy(False)
        if isinstance(exc, Cancelled):
            self.status.setText(_("Cancelled."))
            return
        self.status.setText("")
        present_error(self, exc, _("Energy analysis"))

    def _loaded(self, job: Job, analysis: Analysis) -> None:
        if job is not self.job:
            return
        self.job = None
        self._set_busy(False)
        self.analysis = analysis
        self.export_button.setEnabled(True)
        self._show_daily(analysis)
        self._show_intraday(analysis.intraday)
        self._show_month(analysis)
        self._show_ranking(analysis)
        self.status.setText(_("{node}: {kwh} kWh from {first} to {last}").format(
            node=analysis.node, kwh=ea.kwh(analysis.daily.total_wh), first=analysis.daily.first,
            last=analysis.daily.last))
        self.loaded.emit()

    def _day_picked(self, row: int, _col: int) -> None:
        if self.analysis is not None and 0 <= row < len(self.analysis.daily.days):
            self.day.setDate(_qdate(date.fromisoformat(self.analysis.daily.days[row].day)))
            self.tabs.setCurrentIndex(1)

    def _load_intraday(self) -> None:
        if self.analysis is None:
            return
        operator, node_id, day = self.ctx.operator, self.node_id, _date(self.day.date())
        self.ctx.runner.run(lambda: ea.intraday(operator, node_id, day),
                            title=_("Intraday curve"), parent=self, quiet=True,
                            on_done=self._intraday_loaded)

    def _intraday_loaded(self, curve: Intraday) -> None:
        if self.analysis is None or curve.node_id != self.node_id:
            return
        self.analysis = replace(self.analysis, intraday=curve)
        self._show_intraday(curve)

    # -- what is shown -------------------------------------------------------------------------
    def _show_daily(self, a: Analysis) -> None:
        days = a.daily.days
        marked = a.anomaly_days
        self.daily_bars.setOpts(x=list(range(len(days))), height=[d.wh / 1000 for d in days],
                                brushes=[MARKED if d.day in marked else BAR for d in days],
                                pens=[pg.mkPen(None)] * len(days))
        self.daily_plot.getAxis("bottom").setTicks([_ticks([d.day[5:] for d in days])])
        self.daily_plot.setXRange(-0.6, len(days) - 0.4, padding=0)
        self.daily_plot.enableAutoRange(axis="y")
        kinds: dict[str, list[str]] = {}
        for m in a.anomalies:
            kinds.setdefault(m.day, []).append(f"{m.room} {m.kind_text}")
        _fill(self.daily_table, [(d.day, ea.kwh(d.wh), "; ".join(kinds.get(d.day, [])))
                                 for d in days], {1})
        for r, d in enumerate(days):
            if d.day in marked:
                for c in range(3):
                    self.daily_table.item(r, c).setForeground(MARKED)
        _fill(self.anomaly_table, [(m.day, m.room, m.kind_text, ea.kwh(m.wh), ea.kwh(m.norm_wh),
                                    m.path, self._detail(m)) for m in a.anomalies], {3, 4})
        self.anomaly_caption.setText(
            _("Anomalies: {n} (their days in red)").format(n=len(a.anomalies)) if a.anomalies
            else _("No anomalies in this range."))

    @staticmethod
    def _detail(m: ea.Anomaly) -> str:
        if m.kind == "high_day":
            tenths = m.wh * 10 // max(m.norm_wh or 1, 1)
            return _("{times}× its usual day").format(times=f"{tenths // 10}.{tenths % 10}")
        span = "" if m.start is None or m.end is None else "–".join(
            time.strftime("%H:%M", time.localtime(t)) for t in (m.start, m.end))
        return f"{span} {m.reason_text}".strip()

    def _show_intraday(self, curve: Intraday) -> None:
        xs = [k / 4 for k in range(len(curve.slot_wh) + 1)]  # the quarter hours' edges
        self.intraday_curve.setData(xs, [wh / 1000 for wh in curve.slot_wh])
        self.intraday_plot.getAxis("bottom").setTicks(
            [[(h, f"{h:02d}:00") for h in range(0, 24, 3)]])
        self.intraday_plot.setXRange(-0.3, 24.3, padding=0)
        _fill(self.intraday_table, [(Intraday.slot_label(k), ea.kwh(wh, 3))
                                    for k, wh in enumerate(curve.slot_wh)], {1})
        self.intraday_total.setText(_("{day}: {kwh} kWh").format(day=curve.day,
                                                                 kwh=ea.kwh(curve.total_wh)))

    def _show_month(self, a: Analysis) -> None:
        m = a.month
        xs = [d.day for d in m.days]
        self.month_bars.setOpts(x=[x - 0.2 for x in xs],
                                height=[(d.wh or 0) / 1000 for d in m.days])
        self.last_year_bars.setOpts(x=[x + 0.2 for x in xs],
                                    height=[(d.last_year_wh or 0) / 1000 for d in m.days])
        self.month_plot.getAxis("bottom").setTicks(
            [[(x, str(x)) for x in xs if x == 1 or x % 5 == 0]])
        self.month_plot.setXRange(0.4, len(xs) + 0.6, padding=0)
        highest = max([d.wh or 0 for d in m.days] + [d.last_year_wh or 0 for d in m.days])
        self.month_plot.setYRange(0, max(highest, 1) * 1.25 / 1000, padding=0.02)  # legend room
        self.month_legend.clear()
        self.month_legend.addItem(self.month_bars, m.month)
        self.month_legend.addItem(self.last_year_bars, m.last_year)
        self.month_table.setHorizontalHeaderLabels(
            [_("Day"), _("{month} kWh").format(month=m.month),
             _("{month} kWh").format(month=m.last_year)])
        _fill(self.month_table, [(d.day, ea.kwh(d.wh), ea.kwh(d.last_year_wh))
                                 for d in m.days], {0, 1, 2})
        if m.last_year_total_wh is None:
            text = _("{month}: {kwh} kWh. No data for {last}.").format(
                month=m.month, kwh=ea.kwh(m.total_wh), last=m.last_year)
        else:
            change = m.change_percent
            text = _("{month}: {kwh} kWh; the same days of {last}: {before} kWh").format(
                month=m.month, kwh=ea.kwh(m.total_wh), last=m.last_year,
                before=ea.kwh(m.same_days_last_year_wh))
            if change is not None:
                text += _(" ({change:+.1f} %)").format(change=change)
        self.month_summary.setText(text)

    def _show_ranking(self, a: Analysis) -> None:
        r = a.ranking
        shown = list(reversed(r.rooms))  # the largest on top
        self.rank_bars.setOpts(x0=[0] * len(shown), y=list(range(len(shown))),
                               width=[s.wh / 1000 for s in shown], height=0.7)
        self.rank_plot.getAxis("left").setTicks([[(k, s.room) for k, s in enumerate(shown)]])
        self.rank_plot.setYRange(-0.6, max(len(shown), 1) - 0.4, padding=0)
        self.rank_plot.enableAutoRange(axis="x")
        rows = [(k, s.room, ea.kwh(s.wh), f"{s.share_permille / 10:.1f} %", s.path)
                for k, s in enumerate(r.rooms, start=1)]
        if r.others_count:
            rows.append(("", _("{n} others").format(n=r.others_count), ea.kwh(r.others_wh),
                         f"{r.others_permille / 10:.1f} %", ""))
        _fill(self.rank_table, rows, {0, 2, 3})
        self.rank_summary.setText(_("{n} rooms used {kwh} kWh from {first} to {last}").format(
            n=len(r.rooms) + r.others_count, kwh=ea.kwh(r.total_wh), first=r.first,
            last=r.last))

    # -- export --------------------------------------------------------------------------------
    def export(self, path: Path | str | None = None) -> None:
        """Write the tables to an Excel workbook (``path``, or asked with a file dialog)."""
        if self.analysis is None:
            return
        if path is None:
            start = str(Path.home() / f"energy-{self.analysis.daily.first}-"
                                      f"{self.analysis.daily.last}.xlsx")
            chosen, _filter = QFileDialog.getSaveFileName(
                self, _("Export to Excel"), start, _("Excel workbook (*.xlsx)"))
            if not chosen:
                return
            path = chosen if chosen.lower().endswith(".xlsx") else chosen + ".xlsx"
        analysis, target = self.analysis, Path(path)
        self.status.setText(_("Writing {path}…").format(path=target.name))
        self.ctx.runner.run(lambda: energy_export.write_workbook(analysis, target),
                            title=_("Export to Excel"), parent=self, on_done=self._exported)

    def _exported(self, path: Path) -> None:
        self.status.setText(_("Written to {path}").format(path=str(path)))
        self.exported.emit(str(path))

    def closeEvent(self, event: QCloseEvent) -> None:
        self.follow_timer.stop()
        self.cancel(quietly=True)
        super().closeEvent(event)
