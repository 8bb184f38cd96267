"""Commissioning a bus: scan it, bind what answers to rooms, run the checklist, print the record.

The view asks the core through the runner, off the GUI thread, with its own progress bar and
Cancel: ``scan.scan_bus`` (the bus is taken from its poller meanwhile, the other buses go on
polling), ``wiring_plan.bind`` (one found address from the table, or the electricians' wiring
plan), ``commissioning.run_checklist`` and ``commissioning.write_record``. It shows and asks;
it decides nothing itself.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core import commissioning, scan, wiring_plan
from app.drivers.modbus_link import LinkConfig
from app.errors import Cancelled
from app.i18n import N_, _
from app.ui.context import AppContext
from app.ui.errors import present_error
from app.ui.runner import Job
from app.ui.widgets import row_table

SCAN_COLUMNS = (N_("Id"), N_("Speed"), N_("Model"), N_("Serial"), N_("In the database"),
                N_("Finding"))
CHECK_COLUMNS = (N_("Address"), N_("Room"), N_("Serial"),
                 *(commissioning.CHECK_TEXT[c] for c in commissioning.CHECKS), N_("Result"))
COLOUR = {"bad": QColor("#f4c7c3"), "warn": QColor("#fce8b2"), "good": QColor("#ceead6")}
STATE_COLOUR = {commissioning.FAIL: COLOUR["bad"], commissioning.NOTE: COLOUR["warn"],
                commissioning.PASS: COLOUR["good"]}


def _item(text: str, colour: QColor | None = None, tip: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if colour is not None:
        item.setBackground(colour)
    if tip:
        item.setToolTip(tip)
    return item


def _speed(baud: int | None, parity: str | None) -> str:
    return "-" if baud is None else f"{baud} 8{parity}1"


class CommissioningView(QDialog):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("CommissioningView")
        self.setWindowTitle(_("Commissioning"))
        self.ctx = ctx
        self.job: Job | None = None
        self.scan_result: scan.ScanResult | None = None
        self.check_result: commissioning.CommissioningResult | None = None
        self.bus = QComboBox()
        for bus in sorted(ctx.index.buses.values(), key=lambda b: b.name):
            self.bus.addItem(f"{bus.name}  ({bus.link})", bus.name)
        self.bus.currentIndexChanged.connect(self._bus_changed)
        top = QHBoxLayout()
        top.addWidget(QLabel(_("Bus:")))
        top.addWidget(self.bus, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._scan_tab(), _("Scan"))
        self.tabs.addTab(self._check_tab(), _("Checklist"))
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.cancel_button = QPushButton(_("Cancel"))
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel()
        self.status.setWordWrap(True)
        bottom = QHBoxLayout()
        bottom.addWidget(self.bar, 1)
        bottom.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(bottom)
        layout.addWidget(self.status)
        self.resize(980, 620)
        self._bus_changed()

    # -- the two tabs ------------------------------------------------------------------------
    def _scan_tab(self) -> QWidget:
        page = QWidget()
        self.ids = QLineEdit("1-247")
        self.timeout = QSpinBox()
        self.timeout.setRange(10, 10_000)
        self.timeout.setValue(200)
        self.timeout.setSuffix(" ms")
        self.bauds = QLineEdit()
        self.bauds.setPlaceholderText(_("the bus's own, or a list such as 9600,19200"))
        self.parities = QLineEdit()
        self.parities.setPlaceholderText(_("the bus's own, or a list such as N,E"))
        form = QFormLayout()
        form.addRow(_("Slave ids:"), self.ids)
        form.addRow(_("Timeout per id:"), self.timeout)
        form.addRow(_("Baud rates:"), self.bauds)
        form.addRow(_("Parities:"), self.parities)
        self.scan_button = QPushButton(_("Scan"))
        self.scan_button.clicked.connect(self.start_scan)
        self.bind_button = QPushButton(_("Bind to a room…"))
        self.bind_button.setEnabled(False)
        self.bind_button.clicked.connect(self.bind_selected)
        self.plan_button = QPushButton(_("Bind from a wiring plan…"))
        self.plan_button.clicked.connect(self.bind_plan)
        buttons = QHBoxLayout()
        buttons.addWidget(self.scan_button)
        buttons.addStretch(1)
        buttons.addWidget(self.bind_button)
        buttons.addWidget(self.plan_button)
        self.scan_table = row_table(SCAN_COLUMNS, 5)
        self.scan_table.itemSelectionChanged.connect(self._scan_selected)
        layout = QVBoxLayout(page)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.scan_table, 1)
        return page

    def _check_tab(self) -> QWidget:
        page = QWidget()
        self.check_ids = QLineEdit()
        self.check_ids.setPlaceholderText(_("every meter of the bus, or such as 1-10"))
        self.check_button = QPushButton(_("Run the checklist"))
        self.check_button.clicked.connect(self.start_checklist)
        self.record_button = QPushButton(_("Save the record (PDF)…"))
        self.record_button.setEnabled(False)
        self.record_button.clicked.connect(self.save_record)
        row = QHBoxLayout()
        row.addWidget(QLabel(_("Addresses:")))
        row.addWidget(self.check_ids, 1)
        row.addWidget(self.check_button)
        row.addWidget(self.record_button)
        note = QLabel(_("Each meter is asked in turn: does it answer, is its serial number the "
                        "database's, does a remote trip open it and a close close it (read "
                        "back; it is left as it was), does its energy counter move, is its clock "
                        "right (set to the station's when it is off). Polling of the bus pauses "
                        "meanwhile."))
        note.setWordWrap(True)
        self.check_table = row_table(CHECK_COLUMNS, 2)
        layout = QVBoxLayout(page)
        layout.addLayout(row)
        layout.addWidget(note)
        layout.addWidget(self.check_table, 1)
        return page

    def bus_name(self) -> str:
        return self.bus.currentData() or ""

    def _bus_changed(self) -> None:
        bus = next((b for b in self.ctx.index.buses.values() if b.name == self.bus_name()),
                   None)
        serial = bus is not None and LinkConfig.from_url(bus.link).transport == "rtu"
        self.bauds.setEnabled(serial)
        self.parities.setEnabled(serial)
        self.scan_table.setRowCount(0)
        self.check_table.setRowCount(0)
        self.record_button.setEnabled(False)

    # -- long work ---------------------------------------------------------------------------
    def _run(self, work, title: str, on_done) -> None:
        self.cancel(quietly=True)
        self._set_busy(True)
        self.status.setText(_("Working…"))
        job = self.ctx.runner.run(work, title=title, parent=self, progress=True, quiet=True,
                                  on_progress=self._progressed,
                                  on_done=lambda result: self._finished(job, on_done, result),
                                  on_error=lambda exc: self._failed(job, title, exc))
        self.job = job

    def cancel(self, quietly: bool = False) -> None:
        if self.job is not None and not self.job.done:
            self.job.progress.cancel()
            self.job = None
            self._set_busy(False)
            if not quietly:
                self.status.setText(_("Cancelled; the bus is given back to its poller."))

    def _progressed(self, done: int, total: int, text: str) -> None:
        self.bar.setMaximum(max(total, 1))
        self.bar.setValue(min(done, total))
        if text:
            self.status.setText(text)

    def _set_busy(self, busy: bool) -> None:
        self.bar.setVisible(busy)
        self.bar.setValue(0)
        self.cancel_button.setVisible(busy)
        for w in (self.scan_button, self.check_button, self.plan_button, self.bus):
            w.setEnabled(not busy)

    def _finished(self, job: Job, on_done, result) -> None:
        if job is not self.job:
            return
        self.job = None
        self._set_busy(False)
        on_done(result)

    def _failed(self, job: Job, title: str, exc: BaseException) -> None:
        if job is not self.job:
            return
        self.job = None
        self._set_busy(False)
        if isinstance(exc, Cancelled):
            self.status.setText(_("Cancelled; the bus is given back to its poller."))
            return
        self.status.setText("")
        present_error(self, exc, title)

    # -- scan --------------------------------------------------------------------------------
    def start_scan(self) -> None:
        try:
            ids = scan.parse_ids(self.ids.text())
            bauds = scan.parse_bauds(self.bauds.text()) if self.bauds.isEnabled() else []
            parities = scan.parse_parities(self.parities.text()) \
                if self.parities.isEnabled() else []
        except Exception as exc:
            present_error(self, exc, _("Scan"))
            return
        operator, bus, timeout = self.ctx.operator, self.bus_name(), self.timeout.value()

        def work(progress):
            return scan.scan_bus(operator, bus, ids, timeout_ms=timeout, bauds=bauds,
                                 parities=parities, progress=progress)

        self._run(work, _("Scan"), self.show_scan)

    def show_scan(self, result: scan.ScanResult) -> None:
        self.scan_result = result
        expected = {e.id: e for e in result.expected}
        other = {e.id for e, _f in result.other_setting}
        mismatch = {e.id for e, _f in result.serial_mismatch}
        rows: list[tuple] = []
        for f in result.found:
            e = expected.get(f.id)
            if e is None:
                finding, colour = _("unexpected: no meter in the database here"), COLOUR["warn"]
            elif f.id in other:
                finding, colour = _("answers at another speed than the bus's"), COLOUR["bad"]
            elif f.id in mismatch:
                finding, colour = _("serial number differs: database {serial}").format(
                    serial=e.serial), COLOUR["bad"]
            else:
                finding, colour = _("as expected"), COLOUR["good"]
            rows.append((f.id, _speed(f.baud, f.parity), f.model or "?", f.serial or "-",
                         e.room if e is not None and e.room else ("-" if e else ""),
                         finding, colour))
        for e in result.missing:
            rows.append((e.id, "", "", e.serial or "-", e.room or "-",
                         _("missing: did not answer"), COLOUR["bad"]))
        rows.sort(key=lambda r: r[0])
        self.scan_table.setRowCount(len(rows))
        for r, (i, speed, model, serial, room, finding, colour) in enumerate(rows):
            for c, text in enumerate((str(i), speed, model, serial, room, finding)):
                self.scan_table.setItem(r, c, _item(text, colour if c == 5 else None))
        self.status.setText(_("{found} of {scanned} ids answered; {missing} missing, "
                              "{unexpected} unexpected").format(
            found=len(result.found), scanned=result.scanned, missing=len(result.missing),
            unexpected=len(result.unexpected)))

    def _scan_selected(self) -> None:
        self.bind_button.setEnabled(self._selected_unexpected() is not None)

    def _selected_unexpected(self) -> scan.Found | None:
        if self.scan_result is None:
            return None
        rows = {i.row() for i in self.scan_table.selectedIndexes()}
        if len(rows) != 1:
            return None
        item = self.scan_table.item(rows.pop(), 0)
        ident = int(item.text()) if item is not None else 0
        return next((f for f in self.scan_result.unexpected if f.id == ident), None)

    def bind_selected(self, room: str | None = None) -> None:
        """Add the selected unexpected id as the meter of a room (asked)."""
        found = self._selected_unexpected()
        if found is None:
            return
        if room is None:
            room, ok = QInputDialog.getText(
                self, _("Bind to a room"), _("Room number for id {id} (serial {serial}):")
                .format(id=found.id, serial=found.serial or "-"))
            if not ok or not room.strip():
                return
        row = wiring_plan.PlanRow(0, room.strip(), self.bus_name(), found.id, found.serial,
                                  found.profile)
        self._bind([row])

    def bind_plan(self, path: str | Path | None = None) -> None:
        if path is None:
            path, _filter = QFileDialog.getOpenFileName(
                self, _("Wiring plan"), "", _("Wiring plans (*.xlsx *.csv)"))
            if not path:
                return
        try:
            rows = [r for r in wiring_plan.read_plan(Path(path)) if r.bus == self.bus_name()]
        except Exception as exc:
            present_error(self, exc, _("Wiring plan"))
            return
        if not rows:
            QMessageBox.information(self, _("Wiring plan"), _("The plan has no row for bus "
                                                              "{bus}.").format(bus=self.bus_name()))
            return
        self._bind(rows)

    def _bind(self, rows: list[wiring_plan.PlanRow]) -> None:
        operator = self.ctx.operator
        self._run(lambda progress: wiring_plan.bind(operator, rows, progress),
                  _("Wiring plan"), self._bound)

    def _bound(self, result: wiring_plan.BindResult) -> None:
        self.status.setText(_("Bound: {added} added, {changed} changed, {same} as planned "
                              "already. Scan again to see the bus as it is now.").format(
            added=len(result.added), changed=len(result.changed),
            same=len(result.unchanged)))

    # -- checklist ---------------------------------------------------------------------------
    def start_checklist(self) -> None:
        try:
            ids = scan.parse_ids(self.check_ids.text()) if self.check_ids.text().strip() \
                else None
        except Exception as exc:
            present_error(self, exc, _("Checklist"))
            return
        operator, bus = self.ctx.operator, self.bus_name()
        self._run(lambda progress: commissioning.run_checklist(operator, bus, ids,
                                                               progress=progress),
                  _("Checklist"), self.show_checklist)

    def show_checklist(self, result: commissioning.CommissioningResult) -> None:
        self.check_result = result
        self.record_button.setEnabled(True)
        self.check_table.setRowCount(len(result.meters))
        for r, m in enumerate(result.meters):
            cells = [_item(str(m.address)), _item(m.room or "-"),
                     _item(m.found_serial or m.serial or "-")]
            for name in commissioning.CHECKS:
                state, detail = m.checks.get(name, (commissioning.NA, ""))
                cells.append(_item(_(commissioning.STATE_TEXT[state]), STATE_COLOUR.get(state),
                                   detail))
            cells.append(_item(_("FAIL") if m.failed else _("OK"),
                               COLOUR["bad"] if m.failed else COLOUR["good"]))
            for c, cell in enumerate(cells):
                self.check_table.setItem(r, c, cell)
        self.status.setText(_("{n} meters checked, {failed} failed (run {run})").format(
            n=len(result.meters), failed=result.failed, run=result.run_id))

    def save_record(self, path: str | Path | None = None) -> None:
        result = self.check_result
        if result is None:
            return
        if path is None:
            path, _filter = QFileDialog.getSaveFileName(
                self, _("Commissioning record"), f"commissioning-{result.bus}.pdf",
                _("PDF files (*.pdf)"))
            if not path:
                return
        target = Path(path)
        self._run(lambda progress: commissioning.write_record(result, target),
                  _("Commissioning record"),
                  lambda written: self.status.setText(_("Record written: {path}").format(
                      path=written)))

    def closeEvent(self, event) -> None:
        self.cancel(quietly=True)
        super().closeEvent(event)
