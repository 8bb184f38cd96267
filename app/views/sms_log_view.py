"""The SMS log: the texts to residents, newest first, filtered by state, with why one was not
sent (numbers masked in the middle). The view asks the core (``sms_outbox.sms_log``) through
the runner and shows what it gets; it changes nothing.
"""

from __future__ import annotations

import time

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import sms_outbox
from app.i18n import N_, _, ngettext
from app.ui.context import AppContext
from app.ui.widgets import row_table

COLUMNS = (N_("No."), N_("Written"), N_("Room"), N_("Phone"), N_("State"), N_("Attempts"),
           N_("Parts"), N_("Text"), N_("Why"))
TEXT_COLUMN, WHY_COLUMN = 7, 8
STATE_COLOUR = {"failed": QColor("#b3261e"), "unknown": QColor("#b26a00"),
                "skipped": QColor("#6b6b6b")}


def _when(t: float | None) -> str:
    return "" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


class SmsLogView(QDialog):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SmsLogView")
        self.ctx = ctx
        self.rows: list[dict] = []
        self.state = QComboBox()
        self.state.addItem(_("Every state"), "")
        for state in sms_outbox.STATE_TEXT:
            self.state.addItem(sms_outbox.state_text(state), state)
        self.state.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.refresh_button = QPushButton(_("Refresh"))
        filters = QHBoxLayout()
        filters.addWidget(self.state)
        filters.addStretch(1)
        filters.addWidget(self.refresh_button)
        self.table = row_table(COLUMNS, TEXT_COLUMN, wrap=True)
        self.table.horizontalHeader().setSectionResizeMode(
            WHY_COLUMN, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(WHY_COLUMN, 280)
        self.count = QLabel()
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.table)
        layout.addWidget(self.count)
        self.setWindowTitle(_("SMS log"))
        self.resize(1100, 520)
        self.state.currentIndexChanged.connect(self.load)
        self.refresh_button.clicked.connect(self.load)
        self.load()

    def load(self) -> None:
        operator, state = self.ctx.operator, self.state.currentData() or None
        self.ctx.runner.run(lambda: sms_outbox.sms_log(operator, state=state, limit=500),
                            title=_("SMS log"), parent=self, on_done=self._loaded, quiet=True)

    def _loaded(self, rows: list[dict]) -> None:
        self.rows = rows
        self.table.setRowCount(len(rows))
        for row, r in enumerate(rows):
            cells = (str(r["id"]), _when(r["created_at"]), r["room"] or "",
                     sms_outbox.mask_phone(r["phone"]), sms_outbox.state_text(r["state"]),
                     str(r["attempts"]), str(r["parts"] or ""), r["text"], r["error"])
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 4 and r["state"] in STATE_COLOUR:
                    item.setForeground(STATE_COLOUR[r["state"]])
                if col in (TEXT_COLUMN, WHY_COLUMN):
                    item.setToolTip(text)
                self.table.setItem(row, col, item)
        self.table.resizeRowsToContents()
        self.count.setText(ngettext("{n} text", "{n} texts", len(rows)).format(n=len(rows)))
