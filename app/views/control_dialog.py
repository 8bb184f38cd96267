"""The control view: trip, close or keep power on the selected room, floor or building.

The operator picks the action and gives the reason; a batch of more than one room asks once
more. The commands then run through the runner (``core/control.control``: every bus in
parallel, each meter confirmed by reading its relay back), and the table shows each meter's
progress as it comes: queued, sent, confirmed, or failed with the reason. Cancel withdraws what
was not sent yet. The dialog only shows and asks.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import control
from app.core.progress import Progress
from app.errors import UserFacingError
from app.i18n import _
from app.ui.context import AppContext
from app.ui.errors import present_error
from app.ui.widgets import ERROR_STYLE, GOOD_STYLE, message_label

OUTCOME_TEXT = {"queued": lambda: _("queued"), "sent": lambda: _("sent"),
                "confirmed": lambda: _("confirmed"), "failed": lambda: _("failed")}
OUTCOME_COLOUR = {"confirmed": QColor("#1b7f3a"), "failed": QColor("#b3261e")}


class _Outcomes(QObject):
    """Carries each meter's outcome from the worker to the table (a queued connection)."""

    outcome = Signal(object)


class ControlDialog(QDialog):
    def __init__(self, ctx: AppContext, node_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.node_id = node_id
        node = ctx.index.nodes[node_id]
        self.selection = node.code if ctx.index.is_leaf(node_id) and node.code else node.name
        self.setWindowTitle(_("Control: {what}").format(what=self.selection))
        self.targets: list[control.ControlTarget] = []
        self.rows: dict[str, int] = {}
        self.outcomes: list[control.ControlOutcome] | None = None
        self.job = None
        self.progress = Progress()
        self._relay = _Outcomes(self)
        self._relay.outcome.connect(self._show_outcome, Qt.ConnectionType.QueuedConnection)

        self.action = QComboBox()
        for key, value in control.ACTIONS.items():
            self.action.addItem(_(control.ACTION_TEXT[value]), key)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText(_("why (kept in the audit log)"))
        self.scope = QLabel()
        form = QFormLayout()
        form.addRow(_("Selection"), self.scope)
        form.addRow(_("Action"), self.action)
        form.addRow(_("Reason"), self.reason)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels([_("Room"), _("Meter"), _("State"), _("Reason")])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.message = message_label("control_message", "")
        self.buttons = QDialogButtonBox()
        self.send_button = QPushButton(_("Send"))
        self.send_button.setDefault(True)
        self.buttons.addButton(self.send_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(_("Close"),
                                                    QDialogButtonBox.ButtonRole.RejectRole)
        self.send_button.clicked.connect(self.send)
        self.cancel_button.clicked.connect(self.cancel_or_close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(640, 420)
        self._load_targets()

    def _load_targets(self) -> None:
        try:
            self.targets = control.targets(node_ids=[self.node_id])
        except UserFacingError as exc:
            self.targets = []
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText(str(exc))
            self.send_button.setEnabled(False)
        rooms = len({t.node_id for t in self.targets})
        self.scope.setText(_("{what}: {n} meters in {rooms} rooms").format(
            what=self.selection, n=len(self.targets), rooms=rooms))
        self.table.setRowCount(len(self.targets))
        for row, t in enumerate(self.targets):
            self.rows[t.meter] = row
            for col, text in enumerate((t.room, t.meter, "", "")):
                self.table.setItem(row, col, QTableWidgetItem(text))

    # -- acting --------------------------------------------------------------------------------
    def send(self) -> None:
        if not self.reason.text().strip():
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText(_("give the reason for the command"))
            self.reason.setFocus()
            return
        action = self.action.currentData()
        rooms = len({t.node_id for t in self.targets})
        if rooms > 1:
            answer = QMessageBox.question(
                self, self.windowTitle(),
                _("{action} {n} meters in {rooms} rooms of {what}?").format(
                    action=self.action.currentText(), n=len(self.targets), rooms=rooms,
                    what=self.selection))
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.send_button.setEnabled(False)
        self.action.setEnabled(False)
        self.reason.setEnabled(False)
        self.cancel_button.setText(_("Cancel"))
        self.message.setStyleSheet("")
        self.message.setText(_("sending…"))
        operator, targets, reason = self.ctx.operator, list(self.targets), self.reason.text()
        emit, progress, selection = self._relay.outcome.emit, Progress(), self.selection
        self.progress = progress
        self.job = self.ctx.runner.run(
            lambda: control.control(operator, targets, action, reason, selection=selection,
                                    progress=progress, on_outcome=emit),
            title=_("Control: {what}").format(what=self.selection), parent=self,
            on_done=self._done, on_error=self._failed)

    def _show_outcome(self, o: control.ControlOutcome) -> None:
        row = self.rows.get(o.meter)
        if row is None:
            return
        state = QTableWidgetItem(OUTCOME_TEXT.get(o.outcome, lambda: o.outcome)())
        if o.outcome in OUTCOME_COLOUR:
            state.setForeground(OUTCOME_COLOUR[o.outcome])
        self.table.setItem(row, 2, state)
        self.table.setItem(row, 3, QTableWidgetItem(o.reason))

    def _done(self, outcomes: list[control.ControlOutcome]) -> None:
        self.job = None
        self.outcomes = outcomes
        for o in outcomes:
            self._show_outcome(o)
        failed = sum(1 for o in outcomes if o.outcome != "confirmed")
        self.cancel_button.setText(_("Close"))
        if failed:
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText(_("{n} of {total} meters failed").format(
                n=failed, total=len(outcomes)))
        else:
            self.message.setStyleSheet(GOOD_STYLE)
            self.message.setText(_("every meter confirmed"))

    def _failed(self, exc: BaseException) -> None:
        self.job = None
        self.cancel_button.setText(_("Close"))
        self.send_button.setEnabled(True)
        present_error(self, exc, "control")

    def cancel_or_close(self) -> None:
        if self.job is not None:  # what was not sent yet is withdrawn
            self.progress.cancel()
            self.message.setText(_("cancelling: what was not sent is withdrawn…"))
            return
        self.reject()
