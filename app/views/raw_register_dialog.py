"""The raw register tool: any register or coil of any slave on a bus, read or written, as Modbus
Poll does, with the values shown in a data type and word order; a history of this session's
transactions.

Each transaction runs through the runner (``core/raw_registers.transact``: the bus is taken from
its poller and given back); a write asks for confirmation with a warning first and is audited.
The dialog only shows and asks.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import raw_registers
from app.core.raw_registers import RawRequest, RawResult
from app.errors import UserFacingError
from app.i18n import N_, _, ngettext
from app.ui.context import AppContext
from app.ui.widgets import ERROR_STYLE, GOOD_STYLE, message_label, row_table

RESULT_COLUMNS = (N_("Address"), N_("Registers"), N_("Value"))
HISTORY_COLUMNS = (N_("Time"), N_("Bus"), N_("Slave"), N_("Function"), N_("Start"), N_("Request"),
                   N_("Result"))
#: How many transactions the history keeps (the newest on top).
HISTORY_ROWS = 200


class RawRegisterDialog(QDialog):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None, *,
                 bus: str | None = None, unit: int | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        #: Asks the operator to confirm a write (a test answers for them).
        self.confirm = self._ask
        self.last: RawResult | None = None
        self.setWindowTitle(_("Raw registers"))
        self.resize(820, 640)
        self.bus = QComboBox()
        self.bus.setObjectName("bus_choice")
        for b in sorted(ctx.index.buses.values(), key=lambda b: b.name):
            self.bus.addItem(b.name, b.name)
        if bus is not None and self.bus.findData(bus) >= 0:
            self.bus.setCurrentIndex(self.bus.findData(bus))
        self.unit = QSpinBox()
        self.unit.setObjectName("slave_id")
        self.unit.setRange(1, 247)
        self.unit.setValue(unit or 1)
        self.function = QComboBox()
        self.function.setObjectName("function_choice")
        for fc, text in raw_registers.FUNCTIONS.items():
            self.function.addItem(_(text), fc)
        self.function.setCurrentIndex(self.function.findData(3))
        self.function.currentIndexChanged.connect(self._function_changed)
        self.start = QLineEdit("0x0000")
        self.start.setObjectName("start_address")
        self.count = QSpinBox()
        self.count.setObjectName("count")
        self.count.setRange(1, raw_registers.MAX_REGISTERS)
        self.count.setValue(2)
        self.dtype = QComboBox()
        self.dtype.setObjectName("type_choice")
        self.dtype.addItems(list(raw_registers.TYPES))
        self.word_order = QComboBox()
        self.word_order.setObjectName("word_order")
        self.word_order.addItem(_("big (high word first)"), "big")
        self.word_order.addItem(_("little (words swapped)"), "little")
        self.values = QLineEdit()
        self.values.setObjectName("write_values")
        self.values.setPlaceholderText(_("values to write, separated by commas (12, 0x1F, -3, "
                                         "1.5; coils 1/0)"))
        self.warning = message_label("write_warning")
        self.send_button = QPushButton()
        self.send_button.setObjectName("send_button")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.send)
        self.message = message_label("raw_message")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.result = row_table(RESULT_COLUMNS, 2)
        self.result.setObjectName("result_table")
        self.result.setFont(mono)
        self.history = row_table(HISTORY_COLUMNS, 6)
        self.history.setObjectName("history_table")

        form = QGridLayout()
        fields = ((_("Bus"), self.bus), (_("Slave id"), self.unit),
                  (_("Function"), self.function), (_("Start"), self.start),
                  (_("Count"), self.count), (_("Type"), self.dtype),
                  (_("Word order"), self.word_order))
        for i, (caption, widget) in enumerate(fields):
            row, col = divmod(i, 4)
            form.addWidget(QLabel(caption), row * 2, col)
            form.addWidget(widget, row * 2 + 1, col)
        form.setColumnStretch(4, 1)
        self.start.setMaximumWidth(140)
        write_row = QHBoxLayout()
        write_row.addWidget(QLabel(_("Values")))
        write_row.addWidget(self.values, 1)
        write_row.addWidget(self.send_button)
        results = QWidget()
        rl = QVBoxLayout(results)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel(_("Result")))
        rl.addWidget(self.result)
        past = QWidget()
        pl = QVBoxLayout(past)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(QLabel(_("This session's transactions")))
        pl.addWidget(self.history)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(results)
        split.addWidget(past)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(write_row)
        layout.addWidget(self.warning)
        layout.addWidget(self.message)
        layout.addWidget(split, 1)
        self._function_changed()

    # -- the form ------------------------------------------------------------------------------
    @property
    def fc(self) -> int:
        return int(self.function.currentData())

    def _function_changed(self) -> None:
        fc = self.fc
        writing = fc in raw_registers.WRITES
        bits = fc in raw_registers.BIT_FUNCTIONS
        self.values.setEnabled(writing)
        self.count.setEnabled(not writing)
        self.count.setMaximum(raw_registers.MAX_BITS if bits else raw_registers.MAX_REGISTERS)
        self.dtype.setEnabled(not bits)
        self.word_order.setEnabled(not bits)
        self.send_button.setText(_("Write…") if writing else _("Read"))
        self.warning.setText(_("A write goes straight to the meter's registers, outside its "
                               "profile: a wrong register can change its address, speed, "
                               "prices or relay. It is recorded in the audit log.")
                             if writing else "")

    def request(self) -> RawRequest:
        """The request the form describes (UserFacingError if it cannot be sent)."""
        start = raw_registers.parse_number(self.start.text() or "0", _("the start address"), 0,
                                           0xFFFF)
        dtype = self.dtype.currentText()
        text = self.values.text()
        values = ((text,) if text else ()) if dtype == "string" and self.fc in (6, 16) \
            else tuple(raw_registers.split_values(text))
        req = RawRequest(self.bus.currentData() or "", self.unit.value(), self.fc, start,
                         self.count.value(), dtype, self.word_order.currentData(),
                         values if self.fc in raw_registers.WRITES else ())
        req.check()
        if req.is_write:
            req.payload_bits() if self.fc in (5, 15) else req.payload_registers()
        return req

    def _ask(self, text: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Warning, _("Write registers"), text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        return box.exec() == QMessageBox.StandardButton.Yes

    # -- sending -------------------------------------------------------------------------------
    def send(self) -> None:
        self.message.setText("")
        try:
            req = self.request()
        except UserFacingError as exc:
            self._error(str(exc))
            return
        if req.is_write and not self.confirm(_(
                "Write {values} with function {fc} to slave {id} on bus {bus} from address "
                "{start}?\n\n{warning}").format(values=", ".join(req.values), fc=_(
                    raw_registers.FUNCTIONS[req.function]), id=req.unit, bus=req.bus,
                    start=f"0x{req.start:04X}", warning=self.warning.text())):
            return
        self.send_button.setEnabled(False)
        self.ctx.runner.run(lambda p: raw_registers.transact(self.ctx.operator, req, p),
                            title=_("Raw registers"), parent=self, progress=True,
                            on_done=self._done, on_error=lambda e, r=req: self._failed(r, e))

    def _done(self, result: RawResult) -> None:
        self.send_button.setEnabled(True)
        self.last = result
        self.result.setRowCount(0)
        for address, raw, shown in result.rows():
            r = self.result.rowCount()
            self.result.insertRow(r)
            for col, text in enumerate((f"0x{address:04X} ({address})", raw, shown)):
                self.result.setItem(r, col, QTableWidgetItem(text))
        req = result.request
        if req.is_write:
            summary = _("written; read back: {values}").format(
                values=", ".join(row[2] for row in result.rows()) or "-")
            if result.after_problem:
                summary = _("written; not read back: {why}").format(why=result.after_problem)
        else:
            n = len(result.rows())
            summary = ngettext("{n} value in {ms:.0f} ms", "{n} values in {ms:.0f} ms",
                               n).format(n=n, ms=result.elapsed_ms)
        self.message.setStyleSheet(GOOD_STYLE)
        self.message.setText(summary)
        self._remember(req, summary, ok=True)

    def _failed(self, req: RawRequest, error: BaseException) -> None:
        self.send_button.setEnabled(True)
        self.result.setRowCount(0)
        self._error(str(error))
        self._remember(req, str(error), ok=False)

    def _error(self, text: str) -> None:
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setText(text)

    def _remember(self, req: RawRequest, outcome: str, ok: bool) -> None:
        self.history.insertRow(0)
        what = ", ".join(req.values) if req.is_write else _("{n} × {type}").format(
            n=req.count, type=req.dtype if req.function in (3, 4) else _("bits"))
        cells = (time.strftime("%H:%M:%S"), req.bus, str(req.unit), f"{req.function:02X}",
                 f"0x{req.start:04X}", what, outcome)
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if not ok:
                item.setForeground(QColor("#c62828"))
            self.history.setItem(0, col, item)
        while self.history.rowCount() > HISTORY_ROWS:
            self.history.removeRow(self.history.rowCount() - 1)
