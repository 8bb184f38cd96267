"""Reports (finance, administrators): the monthly report, the recharge journal, a cashier's
shift and the arrears list, saved as PDF or Excel or printed through Qt's print preview.

The dialog only asks (which report, the period, a building, the cashier) and shows; the core
operation (``report_files.make``) checks the role, computes the figures against the ledger,
writes the files and audits it, through the runner (off the UI thread, progress and Cancel).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from PySide6.QtCore import QDate
from PySide6.QtPrintSupport import QPrinter, QPrintPreviewDialog
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core import finance_reports, report_files
from app.i18n import N_, _
from app.ui.context import ActingContext
from app.ui.errors import error_text
from app.ui.report_print import page_layout, paint_document
from app.ui.widgets import message_label

KINDS = (("monthly", N_("Monthly report")), ("journal", N_("Recharge journal")),
         ("shift", N_("Shift settlement")), ("arrears", N_("Arrears list")))


class ReportsDialog(QDialog):
    def __init__(self, ctx: ActingContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle(_("Reports"))
        self.kind = QComboBox()
        for key, label in KINDS:
            self.kind.addItem(_(label), key)
        today = date.today()
        last = today.replace(day=1) - timedelta(days=1)
        self.first_day = QDateEdit(QDate(last.year, last.month, 1))
        self.last_day = QDateEdit(QDate(last.year, last.month, last.day))
        for edit in (self.first_day, self.last_day):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.building = QComboBox()
        self.building.addItem(_("whole campus"), None)
        for name in finance_reports.building_names(ctx.session.operator):
            self.building.addItem(name, name)
        self.cashier = QLineEdit()
        self.cashier.setPlaceholderText(_("operator's name"))
        form = QFormLayout()
        form.addRow(_("Report"), self.kind)
        form.addRow(_("From"), self.first_day)
        form.addRow(_("To (included)"), self.last_day)
        form.addRow(_("Building"), self.building)
        form.addRow(_("Cashier"), self.cashier)
        self.pdf_button = QPushButton(_("Save PDF…"))
        self.xlsx_button = QPushButton(_("Save Excel…"))
        self.preview_button = QPushButton(_("Print preview…"))
        close = QPushButton(_("Close"))
        buttons = QHBoxLayout()
        for b in (self.pdf_button, self.xlsx_button, self.preview_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        self.message = message_label("message")
        self.info = QLabel()
        self.info.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.info)
        layout.addLayout(buttons)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.pdf_button.clicked.connect(lambda: self._save("pdf"))
        self.xlsx_button.clicked.connect(lambda: self._save("xlsx"))
        self.preview_button.clicked.connect(self.preview)
        close.clicked.connect(self.close)
        self._kind_changed()
        self.last_made: report_files.Made | None = None

    def _kind_changed(self) -> None:
        self.cashier.setEnabled(self.kind.currentData() == "shift")

    def _period(self) -> finance_reports.Period:
        return finance_reports.range_period(self.first_day.date().toPython().isoformat(),
                                            self.last_day.date().toPython().isoformat())

    def _request(self) -> dict | None:
        """What to make, or None (the message says why)."""
        self.message.setText("")
        kind = self.kind.currentData()
        try:
            period = self._period()
        except Exception as exc:
            self.message.setText(error_text(exc))
            return None
        cashier = self.cashier.text().strip() or None
        if kind == "shift" and not cashier:
            self.message.setText(_("Name the cashier whose shift to settle."))
            return None
        return {"kind": kind, "period": period, "building": self.building.currentData(),
                "cashier": cashier if kind == "shift" else None}

    def _save(self, what: str) -> None:
        request = self._request()
        if request is None:
            return
        suffix, pattern = (".pdf", _("PDF (*.pdf)")) if what == "pdf" else \
            (".xlsx", _("Excel workbook (*.xlsx)"))
        name = f"{request['kind']}-{request['period'].slug}{suffix}"
        path, _filter = QFileDialog.getSaveFileName(self, _("Save the report"), name, pattern)
        if path:
            self.make(request, Path(path).with_suffix(suffix), what)

    def make(self, request: dict, path: Path | None, what: str = "pdf", on_done=None) -> None:
        operator = self.ctx.session.operator
        files = {"pdf": path} if what == "pdf" else {"xlsx": path}

        def work(progress):
            return report_files.make(operator, request["kind"], request["period"],
                                     building=request["building"],
                                     cashier=request["cashier"], progress=progress,
                                     **(files if path is not None else {}))

        def done(made: report_files.Made) -> None:
            self.last_made = made
            if made.paths:
                self.info.setText(_("Written to {path}").format(
                    path=", ".join(str(p) for p in made.paths)))
            if on_done is not None:
                on_done(made)

        self.ctx.runner.run(work, title=_("Reports"), parent=self, progress=True,
                            on_done=done, on_error=lambda exc: self.message.setText(
                                error_text(exc)), label=_("Making the report…"))

    def preview(self) -> None:
        request = self._request()
        if request is not None:
            self.make(request, None, on_done=self._show_preview)

    def _show_preview(self, made: report_files.Made) -> None:
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setPageLayout(page_layout(made.document))
        printer.setDocName(made.document.title)
        dialog = QPrintPreviewDialog(printer, self)
        dialog.paintRequested.connect(lambda p: paint_document(made.document, p))
        self._printer, self._preview = printer, dialog  # the dialog does not own the printer
        dialog.open()
