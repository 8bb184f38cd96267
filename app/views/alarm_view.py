"""The alarm list: active or all, filtered by kind and level, newest first; an operator
acknowledges the selected alarm with a comment (audited). The view asks the core
(``alarms.alarm_rows``, ``alarms.acknowledge``) through the runner and shows what it gets.
"""

from __future__ import annotations

import time

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import alarms
from app.i18n import N_, _, ngettext
from app.ui.context import AppContext
from app.ui.widgets import row_table

COLUMNS = (N_("No."), N_("Raised"), N_("Level"), N_("Room"), N_("Meter"), N_("Alarm"),
           N_("State"), N_("Acknowledged by"))
LEVEL_COLOUR = {3: QColor("#b3261e"), 2: QColor("#b26a00")}


class AlarmView(QDialog):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AlarmView")
        self.ctx = ctx
        self.rows: list[dict] = []
        self.shown: list[dict] = []
        self.which = QComboBox()
        self.which.addItem(_("Active"), True)
        self.which.addItem(_("All, with history"), False)
        self.kind = QComboBox()
        self.level = QComboBox()
        self.level.addItem(_("Any level"), 0)
        for level in (3, 2, 1):
            self.level.addItem(_("Level {n} and above").format(n=level), level)
        self.ack_button = QPushButton(_("Acknowledge…"))
        self.refresh_button = QPushButton(_("Refresh"))
        filters = QHBoxLayout()
        for widget in (self.which, self.kind, self.level):
            widget.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            filters.addWidget(widget)
        filters.addStretch(1)
        filters.addWidget(self.refresh_button)
        filters.addWidget(self.ack_button)
        self.table = row_table(COLUMNS, 5)
        self.count = QLabel()
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.table)
        layout.addWidget(self.count)
        self.setWindowTitle(_("Alarms"))
        self.resize(1000, 520)
        self.which.currentIndexChanged.connect(self.load)
        self.kind.currentIndexChanged.connect(self.show_rows)
        self.level.currentIndexChanged.connect(self.show_rows)
        self.refresh_button.clicked.connect(self.load)
        self.ack_button.clicked.connect(self.acknowledge)
        self.load()

    def load(self) -> None:
        operator, active = self.ctx.operator, bool(self.which.currentData())
        self.ctx.runner.run(lambda: alarms.alarm_rows(operator, active=active),
                            title=_("Alarms"), parent=self, on_done=self._loaded, quiet=True)

    def _loaded(self, rows: list[dict]) -> None:
        self.rows = rows
        kinds = sorted({r["kind"] for r in rows})
        chosen = self.kind.currentData()
        self.kind.blockSignals(True)
        self.kind.clear()
        self.kind.addItem(_("Every kind"), "")
        for k in kinds:
            self.kind.addItem(k, k)
        self.kind.setCurrentIndex(max(0, self.kind.findData(chosen or "")))
        self.kind.blockSignals(False)
        self.show_rows()

    def show_rows(self) -> None:
        kind, level = self.kind.currentData() or "", int(self.level.currentData() or 0)
        self.shown = [r for r in self.rows if (not kind or r["kind"] == kind)
                      and r["level"] >= level]
        self.table.setRowCount(len(self.shown))
        for row, r in enumerate(self.shown):
            state = _("cleared") if r["cleared_at"] else _("not cleared")
            cells = (str(r["id"]), time.strftime("%Y-%m-%d %H:%M:%S",
                                                 time.localtime(r["raised_at"])),
                     str(r["level"]), r["room"] or "", r["meter"] or "", r["text"], state,
                     r["acknowledged_by"] or "")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 2 and r["level"] in LEVEL_COLOUR:
                    item.setForeground(LEVEL_COLOUR[r["level"]])
                self.table.setItem(row, col, item)
        self.count.setText(ngettext("{n} alarm", "{n} alarms", len(self.shown)).format(
            n=len(self.shown)))

    def selected(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows()
        return self.shown[rows[0].row()] if rows else None

    def acknowledge(self, comment: str | None = None) -> None:
        alarm = self.selected()
        if alarm is None:
            self.count.setText(_("select an alarm first"))
            return
        if comment is None:
            comment, ok = QInputDialog.getText(
                self, _("Acknowledge alarm {id}").format(id=alarm["id"]),
                _("What was done about it?"))
            if not ok:
                return
        if not comment.strip():
            self.count.setText(_("say what was done about it"))
            return
        operator, alarm_id = self.ctx.operator, alarm["id"]
        self.ctx.runner.run(lambda: alarms.acknowledge(operator, alarm_id, comment),
                            title=_("Acknowledge"), parent=self,
                            on_done=lambda _done: self.load())
