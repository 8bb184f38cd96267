"""The audit log: who did what, when, to what, filtered by operator, act, room and date, and
exported to Excel. A broken hash chain (a row edited, deleted or moved in the database file)
is shown as a red banner naming the first entry that does not fit.

The view asks the core (``audit.page``: the entries, the filter's choices, the chain's check)
off the UI thread through the runner, and shows what it gets.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import audit
from app.core.audit import AuditEntryView, AuditFilter, AuditPage
from app.core.operators import operator_text
from app.i18n import N_, _
from app.ui.context import ActingContext

COLUMNS = (N_("No."), N_("Time"), N_("Operator"), N_("Act"), N_("Target"), N_("Change"),
           N_("Detail"))
BANNER_STYLE = ("background: #c62828; color: white; font-weight: bold; padding: 8px; "
                "border-radius: 3px;")
DEFAULT_DAYS = 30


class AuditView(QDialog):
    def __init__(self, ctx: ActingContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AuditView")
        self.ctx = ctx
        self.page: AuditPage | None = None
        self.entries: list[AuditEntryView] = []
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.hide()
        self.chain = QLabel()
        self.chain.setObjectName("chain")
        self.chain.setStyleSheet("color: #2e7d32;")
        self.operator = QComboBox()
        self.kind = QComboBox()
        for combo in (self.operator, self.kind):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.setMinimumContentsLength(8)
        self.room = QLineEdit()
        self.room.setClearButtonEnabled(True)
        self.since, self.until = QDateEdit(), QDateEdit()
        for edit in (self.since, self.until):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.since.setDate(QDate.currentDate().addDays(-DEFAULT_DAYS))
        self.until.setDate(QDate.currentDate())
        self.apply_button, self.export_button, self.close_button = (QPushButton(),
                                                                    QPushButton(),
                                                                    QPushButton())
        self.captions = [QLabel() for _i in range(5)]
        filters = QHBoxLayout()
        for caption, widget in zip(self.captions, (self.operator, self.kind, self.room,
                                                   self.since, self.until), strict=True):
            filters.addWidget(caption)
            filters.addWidget(widget)
        filters.addWidget(self.apply_button)
        filters.addStretch(1)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("entries")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.count = QLabel()
        buttons = QHBoxLayout()
        buttons.addWidget(self.count)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(self.chain)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.apply_button.clicked.connect(self.reload)
        self.room.returnPressed.connect(self.reload)
        self.export_button.clicked.connect(self.export)
        self.close_button.clicked.connect(self.close)
        ctx.runner.changed.connect(lambda _changes: self.reload() if self.isVisible() else None)
        self.retranslate()
        self.resize(1100, 640)
        self.reload()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Audit log"))
        for caption, text in zip(self.captions, (_("Operator:"), _("Act:"), _("Room:"),
                                                 _("From:"), _("To:")), strict=True):
            caption.setText(text)
        self.room.setPlaceholderText(_("e.g. 1-101"))
        self.apply_button.setText(_("Show"))
        self.export_button.setText(_("Export to Excel…"))
        self.close_button.setText(_("Close"))
        self.table.setHorizontalHeaderLabels([_(c) for c in COLUMNS])
        self._fill_choices()
        self._show()
        if self.page is not None:  # the chain's verdict, in the new language
            self.reload()

    # -- asking the core -----------------------------------------------------------------------
    def current_filter(self) -> AuditFilter:
        since = datetime.combine(self.since.date().toPython(), datetime.min.time())
        until = datetime.combine(self.until.date().toPython(), datetime.min.time()) \
            + timedelta(days=1)
        room = self.room.text().strip()
        return AuditFilter(since=since.timestamp(), until=until.timestamp(),
                           operator=self.operator.currentData() or None,
                           kind=self.kind.currentData() or None, text=room or None)

    def reload(self) -> None:
        operator, flt = self.ctx.session.operator, self.current_filter()
        self.apply_button.setEnabled(False)
        self.ctx.runner.run(lambda: audit.page(operator, flt), title=_("Audit log"),
                            parent=self, on_done=self._loaded, on_error=self._failed)

    def _loaded(self, page: AuditPage) -> None:
        self.apply_button.setEnabled(True)
        self.page = page
        self.entries = page.entries
        self._fill_choices()
        self._show()

    def _failed(self, exc: BaseException) -> None:
        from app.ui.errors import present_error

        self.apply_button.setEnabled(True)
        present_error(self, exc, _("Audit log"))

    # -- showing -------------------------------------------------------------------------------
    def _fill_choices(self) -> None:
        if self.page is None:
            for combo in (self.operator, self.kind):
                if combo.count() == 0:
                    combo.addItem(_("All"), "")
            return
        for combo, values, text in ((self.operator, self.page.operators, operator_text),
                                    (self.kind, self.page.kinds, audit.kind_text)):
            chosen = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(_("All"), "")
            for value in values:
                combo.addItem(text(value), value)
            combo.setCurrentIndex(max(0, combo.findData(chosen)))
            combo.blockSignals(False)

    def _show(self) -> None:
        check = self.page.check if self.page else None
        if check is not None and not check.ok:
            self.banner.setText(_("The audit log has been tampered with at entry {n}: "
                                  "{problem}. Entries from there on cannot be trusted; keep "
                                  "the database file for investigation and tell the "
                                  "administrator.").format(n=check.broken_at,
                                                           problem=check.problem))
            self.banner.show()
            self.chain.hide()
        else:
            self.banner.hide()
            self.chain.setVisible(check is not None)
            if check is not None:
                self.chain.setText(_("The chain of {n} entries is whole.").format(
                    n=check.entries))
        self.table.setRowCount(len(self.entries))
        for row, e in enumerate(self.entries):
            values = [str(e.id), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.t)),
                      operator_text(e.operator), audit.kind_text(e.kind), e.target,
                      audit.change_text(e.before, e.after),
                      audit.detail_text(e.kind, e.target, e.detail)]
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if col == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        for col, limit in ((4, 260), (5, 360)):
            if self.table.columnWidth(col) > limit:
                self.table.setColumnWidth(col, limit)
        self.count.setText(_("{n} entries").format(n=len(self.entries)))
        self.export_button.setEnabled(bool(self.entries))

    def export(self, path: str | Path | None = None) -> None:
        """Write the entries shown to an Excel file (asks where, unless ``path``)."""
        if path is None:
            name, _filter = QFileDialog.getSaveFileName(
                self, _("Export the audit log"), f"audit-{time.strftime('%Y%m%d')}.xlsx",
                _("Excel workbook (*.xlsx)"))
            if not name:
                return
            path = name
        rows, target = list(self.entries), Path(path)
        self.ctx.runner.run(lambda: audit.export_xlsx(rows, target),
                            title=_("Export the audit log"), parent=self,
                            on_done=lambda p: self.count.setText(
                                _("{n} entries written to {file}").format(n=len(rows),
                                                                          file=p.name)))
