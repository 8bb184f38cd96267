"""Importing payment statements (campus card, WeChat Pay, Alipay, UnionPay; Excel or CSV) with a
preview.

Reading the file and booking run off the UI thread through the context's runner; the core
decides everything: ``payments_import.preview`` judges every row and changes nothing,
``payments_import.apply`` books the valid rows in one transaction or none, as one audited act.
Booking always asks once (``confirm_booking``): "Book N payments totalling ¥X from FILE?",
with the rows in error listed above the question when there are some. Cancelling the booking
(the runner's progress dialog) raises ``Cancelled`` while the rows are staged, before anything
is booked, or inside the one short booking transaction, which then rolls back whole. Problems
reach the operator in one message, never one per row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core import payments_import
from app.core.money import format_cents
from app.core.payments_import import ImportPreview, ImportResult, PaymentRow
from app.core.recharge import MAX_RECHARGE_CENTS, METHODS
from app.errors import Cancelled
from app.i18n import N_, _
from app.ui.context import ActingContext
from app.ui.errors import error_text
from app.ui.runner import Job

log = logging.getLogger("voltkeeper.ui.import")

COLUMNS = (N_("Row"), N_("Transaction id"), N_("Room"), N_("Amount"), N_("Method"),
           N_("Status"), N_("Problem"))
STATUS_TEXT = {"ok": N_("to book"), "error": N_("error"), "duplicate": N_("already imported"),
               "skipped": N_("not a payment")}
ROW_COLOR = {"error": QColor("#fde0dc"), "duplicate": QColor("#eeeeee"),
             "skipped": QColor("#f5f5f5")}
STATUS_COLOR = {"ok": QColor("#1b5e20"), "error": QColor("#b71c1c"),
                "duplicate": QColor("#616161"), "skipped": QColor("#616161")}
STATUS_ROLE = Qt.ItemDataRole.UserRole + 1
ERRORS_LISTED = 12
_ROOT = QModelIndex()


def _method_text(code: str) -> str:
    label = METHODS.get(code)
    return _(label) if label else code


def row_texts(r: PaymentRow) -> list[str]:
    """What the preview shows of a row, column by column."""
    who = r.room or r.person_no or r.memo  # a memo that names no room is shown as it is
    if r.account_room and r.account_room != who:
        who = f"{who} → {r.account_room}"
    # an amount is shown as read by the core only on rows that will be booked
    amount = format_cents(r.amount_cents, symbol=True) \
        if r.status == "ok" and r.amount_cents is not None else r.amount_text
    status = STATUS_TEXT.get(r.status)
    problem = "" if r.status == "duplicate" else r.problem  # the status says it already
    return [str(r.line), r.reference, who, amount, _method_text(r.method),
            _(status) if status else r.status, problem]


class PreviewModel(QAbstractTableModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[PaymentRow] = []

    def set_rows(self, rows: list[PaymentRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _(COLUMNS[section])
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return row_texts(r)[col]
        if role == Qt.ItemDataRole.BackgroundRole:
            return ROW_COLOR.get(r.status)
        if role == Qt.ItemDataRole.ForegroundRole and col == 5:
            return STATUS_COLOR.get(r.status)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (0, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == STATUS_ROLE:
            return r.status
        return None

    def retranslate(self) -> None:
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(COLUMNS) - 1)
        if self.rows:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self.rows) - 1, len(COLUMNS) - 1))


def errors_message(preview: ImportPreview) -> str:
    """The one message that lists the rows that will not be booked."""
    errors = preview.errors
    lines = [_("row {line}: {problem}").format(line=r.line, problem=r.problem)
             for r in errors[:ERRORS_LISTED]]
    if len(errors) > ERRORS_LISTED:
        lines.append(_("… and {n} more").format(n=len(errors) - ERRORS_LISTED))
    return _("{n} rows have errors and will not be booked:").format(n=len(errors)) + "\n" \
        + "\n".join(lines)


class ImportDialog(QDialog):
    """Preview a statement, then book its valid rows. Signals carry what happened."""

    loaded = Signal(object)  # ImportPreview
    applied = Signal(int)  # rows booked
    failed = Signal(str)  # the message shown
    cancelled = Signal(str)  # the booking was cancelled: the message shown

    def __init__(self, ctx: ActingContext, parent: QWidget | None = None, *,
                 default_method: str = "campus_card",
                 maximum_cents: int = MAX_RECHARGE_CENTS) -> None:
        super().__init__(parent)
        self.setObjectName("ImportDialog")
        self.ctx = ctx
        self.maximum_cents = maximum_cents
        self.preview: ImportPreview | None = None
        self.path: Path | None = None
        #: Asked once before every booking: the count, the total and the file (and the rows in
        #: error, when there are some); True books.
        self.confirm_booking: Callable[[str], bool] = self._ask
        #: Shows one message when reading or booking fails.
        self.alert: Callable[[str], None] = self._warn
        self.job: Job | None = None
        self._booking_cents = 0  # the total being booked
        self._keep_status = False  # a reload after booking keeps the booking's message
        self._closing = False
        self._build(default_method)
        self.retranslate()
        self.resize(980, 600)

    # -- building ------------------------------------------------------------------------------
    def _build(self, default_method: str) -> None:
        self.file_label = QLabel()
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.choose_button = QPushButton()
        self.choose_button.clicked.connect(self.choose_file)
        self.method_caption = QLabel()
        self.method = QComboBox()
        for code in METHODS:
            self.method.addItem("", code)
        self.method.setCurrentIndex(max(0, self.method.findData(default_method)))
        self.method.currentIndexChanged.connect(self._reload)
        top = QHBoxLayout()
        top.addWidget(self.choose_button)
        top.addWidget(self.file_label, 1)
        top.addWidget(self.method_caption)
        top.addWidget(self.method)

        self.model = PreviewModel(self)
        self.proxy = QSortFilterProxyModel(self)  # "only problems" filters on the status
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(0)
        self.proxy.setFilterRole(STATUS_ROLE)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(24)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for col, width in enumerate((48, 150, 120, 90, 90, 110)):
            self.view.setColumnWidth(col, width)
        self.only_problems = QCheckBox()
        self.only_problems.toggled.connect(
            lambda on: self.proxy.setFilterRegularExpression(
                "^(error|duplicate|skipped)$" if on else ""))

        self.summary = QLabel()
        self.summary.setObjectName("summary")
        self.summary.setStyleSheet("font-weight: bold;")
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.book_button = QPushButton()
        self.book_button.clicked.connect(self.book)
        self.close_button = QPushButton()
        self.close_button.clicked.connect(self.reject)
        for b in (self.choose_button, self.book_button, self.close_button):
            b.setAutoDefault(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.only_problems)
        buttons.addStretch(1)
        buttons.addWidget(self.book_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.summary)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._update()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Import payments"))
        self.choose_button.setText(_("Choose file…"))
        self.method_caption.setText(_("Method when the file names none:"))
        for i in range(self.method.count()):
            self.method.setItemText(i, _method_text(self.method.itemData(i)))
        self.only_problems.setText(_("Show only rows that will not be booked"))
        self.book_button.setText(_("Book valid rows"))
        self.close_button.setText(_("Close"))
        self.model.retranslate()
        self._show_file()
        self._update()

    # -- reading a statement -------------------------------------------------------------------
    def choose_file(self) -> None:
        start = str(self.path.parent) if self.path else ""
        name, _filter = QFileDialog.getOpenFileName(
            self, _("Choose a payment statement"), start,
            _("Statements (*.xlsx *.xlsm *.csv)") + ";;" + _("All files (*)"))
        if name:
            self.load(name)

    def load(self, path: str | Path, *, keep_status: bool = False) -> None:
        """Read and check ``path`` (off the UI thread); ``loaded`` carries the preview."""
        if self.busy:
            return
        self.path = Path(path)
        self._show_file()
        self._keep_status = keep_status
        if not keep_status:
            self.status.setStyleSheet("")
            self.status.setText(_("Reading {file}…").format(file=self.path.name))
        method, path_ = self.method_code(), self.path
        maximum = self.maximum_cents
        self._start("preview", lambda: payments_import.preview(path_, method, maximum),
                    on_done=self._previewed)

    def _reload(self) -> None:
        if self.path is not None and not self.busy:
            self.load(self.path)

    def method_code(self) -> str:
        return str(self.method.currentData())

    # -- booking -------------------------------------------------------------------------------
    def book(self) -> None:
        """Book the valid rows of the preview in one transaction (off the UI thread)."""
        p = self.preview
        if p is None or not p.valid or self.busy:
            return
        if not self.confirm_booking(self.booking_question(p)):
            self.status.setStyleSheet("")
            self.status.setText(_("Nothing booked."))
            return
        rows, total = len(p.valid), p.total_cents
        self._booking_cents = total
        operator = self.ctx.session.operator
        self._start("apply", lambda progress: payments_import.apply(operator, p, progress),
                    on_done=self._booked, progress=True,
                    label=_("Booking {n} payments…").format(n=rows))

    def booking_question(self, p: ImportPreview) -> str:
        """The one question before booking (the rows in error first, when there are some)."""
        question = _("Book {n} payments totalling {total} from {file}?").format(
            n=len(p.valid), total=format_cents(p.total_cents, symbol=True),
            file=Path(p.path).name)
        return errors_message(p) + "\n\n" + question if p.errors else question

    def _ask(self, message: str) -> bool:
        answer = QMessageBox.question(
            self, _("Import payments"), message,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _warn(self, message: str) -> None:
        QMessageBox.warning(self, _("Import payments"), message)

    # -- the worker ----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.done

    def _start(self, kind: str, work: Callable[..., object], *,
               on_done: Callable[[object, BaseException | None], None],
               progress: bool = False, label: str = "") -> None:
        def finished(result: object = None, error: BaseException | None = None) -> None:
            self.job = None
            if not self._closing:
                on_done(result, error)

        self.job = self.ctx.runner.run(
            work, title=_("Import payments"), parent=self, progress=progress, label=label,
            on_done=lambda result: finished(result), on_error=lambda exc: finished(None, exc))
        self._update()

    def _previewed(self, preview: ImportPreview | None, error: BaseException | None) -> None:
        if error is not None or preview is None:
            self.preview = None
            self.model.set_rows([])
            self._fail(error_text(error or RuntimeError("no preview"), "reading a statement"))
            return
        self.preview = preview
        self.model.set_rows(preview.rows)
        self._show_file()
        if not self._keep_status:
            self.status.setStyleSheet("")
            self.status.setText("")
        self._keep_status = False
        self._update()
        self.loaded.emit(preview)

    def _booked(self, booked: ImportResult | None, error: BaseException | None) -> None:
        if error is not None or booked is None:
            if isinstance(error, Cancelled):
                message = _("The import was cancelled; nothing was booked.")
                self.status.setStyleSheet("")
                self.status.setText(message)
                self._update()
                self.cancelled.emit(message)
                return
            self._fail(_("Nothing was booked: {reason}").format(
                reason=error_text(error or RuntimeError("no result"), "booking a statement")))
            if self.path is not None:  # the ledger may have changed under us: judge again
                self.load(self.path, keep_status=True)
            return
        total = self._booking_cents
        log.info("imported %s payments (%s) from %s by %s", booked.booked,
                 format_cents(total), self.path, self.ctx.session.operator.name)
        self.status.setStyleSheet("color: #1b5e20;")
        self.status.setText(_("Booked {n} payments totalling {total} from {file}.").format(
            n=booked.booked, total=format_cents(total, symbol=True),
            file=self.path.name if self.path else ""))
        self.applied.emit(booked.booked)
        if self.path is not None:  # show what the file holds now: its rows are booked
            self.load(self.path, keep_status=True)
        else:
            self._update()

    def _fail(self, message: str) -> None:
        self.status.setStyleSheet("color: #c62828;")
        self.status.setText(message)
        self._update()
        self.failed.emit(message)
        self.alert(message)

    # -- state ---------------------------------------------------------------------------------
    def _update(self) -> None:
        p = self.preview
        busy = self.busy
        self.book_button.setEnabled(not busy and p is not None and bool(p.valid))
        self.choose_button.setEnabled(not busy)
        self.method.setEnabled(not busy)
        if p is None:
            self.summary.setText(_("Choose a campus card, WeChat Pay, Alipay or UnionPay "
                                   "statement (.xlsx or .csv)."))
            return
        self.summary.setText(self.summary_text(p))

    @staticmethod
    def summary_text(p: ImportPreview) -> str:
        text = _("To book: {n} payments totalling {total} · {errors} rows with errors · "
                 "{dups} already imported").format(
            n=len(p.valid), total=format_cents(p.total_cents, symbol=True),
            errors=len(p.errors), dups=len(p.duplicates))
        if p.skipped:
            text += " · " + _("{n} not payments (refunds, closed orders)").format(
                n=len(p.skipped))
        return text

    def _show_file(self) -> None:
        """The file, and whose statement it is when the file says (its rows take that method
        whatever the default)."""
        if self.path is None:
            self.file_label.setText("")
            return
        p = self.preview
        if p is not None and p.path == str(self.path) and p.channel:
            self.file_label.setText(_("{file} ({method} statement, header on line {line})").format(
                file=self.path, method=_method_text(p.channel), line=p.header_line))
        else:
            self.file_label.setText(str(self.path))

    def done(self, r: int) -> None:
        self._closing = True
        if self.job is not None and not self.job.done:  # a booking is rolled back
            self.job.progress.cancel()
        super().done(r)
