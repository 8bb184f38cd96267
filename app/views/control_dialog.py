"""The control view: trip, close or keep power on the selected room, floor or building, on the
rooms of a tariff group, or on a hand-picked list of rooms.

The operator picks the target (what the tree has selected; a tariff group of the open accounts;
rooms checked in a list, which a search filters and which opens with the rooms selected in the
tree when there are several), the action, and gives the reason; a batch of more than one room
asks once more. The commands then run through the runner (``core/control.control``: every bus in
parallel, each meter confirmed by reading its relay back), and the table shows each meter's
progress as it comes: queued, sent, confirmed, or failed with the reason. Cancel withdraws what
was not sent yet. The dialog only shows and asks.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import control, queries
from app.core.operators import Permission
from app.core.progress import Progress
from app.errors import UserFacingError
from app.i18n import _, ngettext
from app.ui.context import AppContext
from app.ui.errors import present_error
from app.ui.widgets import ERROR_STYLE, GOOD_STYLE, message_label

OUTCOME_TEXT = {"queued": lambda: _("queued"), "sent": lambda: _("sent"),
                "confirmed": lambda: _("confirmed"), "failed": lambda: _("failed")}
OUTCOME_COLOUR = {"confirmed": QColor("#1b7f3a"), "failed": QColor("#b3261e")}
#: What the target is: the tree's selection, a tariff group, or rooms picked in the list.
NODE, GROUP, PICKED = "node", "group", "picked"


class _Outcomes(QObject):
    """Carries each meter's outcome from the worker to the table (a queued connection)."""

    outcome = Signal(object)


class ControlDialog(QDialog):
    def __init__(self, ctx: AppContext, node_id: int | None, parent: QWidget | None = None, *,
                 picked: list[int] | None = None) -> None:
        """``node_id``: what the tree has selected (None: nothing); ``picked``: several nodes
        selected in the tree, whose rooms open checked in the list."""
        super().__init__(parent)
        self.ctx = ctx
        self.node_id = node_id or None
        self.node_text = ""
        if self.node_id is not None:
            node = ctx.index.nodes[self.node_id]
            self.node_text = node.code if ctx.index.is_leaf(self.node_id) and node.code \
                else node.name
        self.selection = self.node_text
        self.targets: list[control.ControlTarget] = []
        self.rows: dict[str, int] = {}
        self.outcomes: list[control.ControlOutcome] | None = None
        self.job = None
        self.progress = Progress()
        self._relay = _Outcomes(self)
        self._relay.outcome.connect(self._show_outcome, Qt.ConnectionType.QueuedConnection)
        self._reload = QTimer(self)  # checking rooms one after another recounts once
        self._reload.setSingleShot(True)
        self._reload.setInterval(150)
        self._reload.timeout.connect(self._load_targets)

        self.target = QComboBox()
        if self.node_id is not None:
            self.target.addItem(_("What the tree has selected: {what}").format(
                what=self.node_text), NODE)
        self.target.addItem(_("The rooms of a tariff group"), GROUP)
        self.target.addItem(_("Rooms picked from a list"), PICKED)
        if not ctx.session.can(Permission.CONTROL_BATCH):  # the core refuses them anyway
            model = self.target.model()
            assert isinstance(model, QStandardItemModel)
            for mode in (GROUP, PICKED):
                model.item(self.target.findData(mode)).setEnabled(False)
        self.group = QComboBox()
        self.group.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.groups = queries.open_account_groups(ctx.operator)
        for name, rooms in self.groups.items():
            self.group.addItem(ngettext("{group} ({n} room)", "{group} ({n} rooms)", rooms)
                               .format(group=name, n=rooms), name)
        self.picker = self._room_picker()
        self.action = QComboBox()
        for key, value in control.ACTIONS.items():
            self.action.addItem(_(control.ACTION_TEXT[value]), key)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText(_("why (kept in the audit log)"))
        self.scope = QLabel()
        self.scope.setWordWrap(True)
        self.form = QFormLayout()
        self.form.addRow(_("Target"), self.target)
        self.form.addRow(_("Tariff group"), self.group)
        self.form.addRow(_("Rooms"), self.picker)
        self.form.addRow(_("Selection"), self.scope)
        self.form.addRow(_("Action"), self.action)
        self.form.addRow(_("Reason"), self.reason)
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
        layout.addLayout(self.form)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(760, 640)
        if picked:
            self.pick(picked)
        start = PICKED if picked and len(picked) > 1 else (NODE if self.node_id else PICKED)
        self.target.setCurrentIndex(max(0, self.target.findData(start)))
        self.target.currentIndexChanged.connect(self._target_changed)
        self.group.currentIndexChanged.connect(self._load_targets)
        self._target_changed()

    # -- the target ----------------------------------------------------------------------------
    def _room_picker(self) -> QWidget:
        """A list of every room and shop with a meter, checkable, filtered by a search."""
        idx = self.ctx.index
        self.find = QLineEdit()
        self.find.setClearButtonEnabled(True)
        self.find.setPlaceholderText(_("Filter: a room, a building, an occupant or a meter"))
        self.room_list = QListWidget()
        self.room_list.setMinimumHeight(150)
        for root in idx.children.get(None, []):
            for node_id in idx.leaves_under(root):
                if node_id not in idx.meters_of:
                    continue
                item = QListWidgetItem(idx.path(node_id))
                item.setData(Qt.ItemDataRole.UserRole, node_id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked)
                names = idx.occupant_names(node_id)
                if names:
                    item.setToolTip(", ".join(names))
                self.room_list.addItem(item)
        self.pick_shown = QPushButton(_("Pick all shown"))
        self.pick_none = QPushButton(_("Clear the picks"))
        self.picked_count = QLabel()
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.pick_shown)
        buttons.addWidget(self.pick_none)
        buttons.addStretch(1)
        buttons.addWidget(self.picked_count)
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.find)
        column.addWidget(self.room_list)
        column.addLayout(buttons)
        self.find.textChanged.connect(self._filter_rooms)
        self.pick_shown.clicked.connect(lambda: self._check_all(shown_only=True, on=True))
        self.pick_none.clicked.connect(lambda: self._check_all(shown_only=False, on=False))
        self.room_list.itemChanged.connect(lambda _item: self._reload.start())
        return box

    def _items(self) -> list[QListWidgetItem]:
        return [self.room_list.item(i) for i in range(self.room_list.count())]

    def pick(self, node_ids: list[int]) -> None:
        """Check the rooms of ``node_ids`` (each with every room under it) in the list."""
        idx = self.ctx.index
        wanted = {leaf for n in node_ids if n in idx.nodes for leaf in idx.leaves_under(n)}
        for item in self._items():
            if item.data(Qt.ItemDataRole.UserRole) in wanted:
                item.setCheckState(Qt.CheckState.Checked)

    def picked(self) -> list[int]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self._items()
                if item.checkState() == Qt.CheckState.Checked]

    def _filter_rooms(self, text: str) -> None:
        idx = self.ctx.index
        found = set(idx.search(text)) if text.strip() else None
        for item in self._items():
            node_id = item.data(Qt.ItemDataRole.UserRole)
            item.setHidden(found is not None and not any(
                n in found for n in (node_id, *idx.ancestors(node_id))))

    def _check_all(self, *, shown_only: bool, on: bool) -> None:
        state = Qt.CheckState.Checked if on else Qt.CheckState.Unchecked
        self.room_list.blockSignals(True)
        for item in self._items():
            if not (shown_only and item.isHidden()):
                item.setCheckState(state)
        self.room_list.blockSignals(False)
        self._load_targets()

    def _target_changed(self) -> None:
        mode = self.target.currentData()
        self.form.setRowVisible(self.group, mode == GROUP)
        self.form.setRowVisible(self.picker, mode == PICKED)
        self._load_targets()

    def _load_targets(self) -> None:
        self._reload.stop()
        mode = self.target.currentData()
        self.message.setText("")
        self.message.setStyleSheet(ERROR_STYLE)
        rooms_picked = self.picked()
        self.picked_count.setText(ngettext("{n} room picked", "{n} rooms picked",
                                           len(rooms_picked)).format(n=len(rooms_picked)))
        try:
            if mode == NODE:
                self.selection = self.node_text
                self.targets = control.targets(node_ids=[self.node_id])
            elif mode == GROUP:
                group = self.group.currentData()
                self.selection = _("tariff group {group}").format(group=group or "")
                if group is None:
                    raise UserFacingError(_("no open account is in a tariff group"))
                self.targets = control.targets(group=group)
            else:
                self.selection = self.ctx.index.named(rooms_picked)
                if not rooms_picked:
                    raise UserFacingError(_("check the rooms to control in the list"))
                self.targets = control.targets(node_ids=rooms_picked)
        except UserFacingError as exc:
            self.targets = []
            self.message.setText(str(exc))
        self.send_button.setEnabled(bool(self.targets))
        self.setWindowTitle(_("Control: {what}").format(what=self.selection)
                            if self.selection else _("Control"))
        rooms = len({t.node_id for t in self.targets})
        self.scope.setText(_("{what}: {n} meters in {rooms} rooms").format(
            what=self.selection or "-", n=len(self.targets), rooms=rooms))
        self.rows = {}
        self.table.setRowCount(len(self.targets))
        for row, t in enumerate(self.targets):
            self.rows[t.meter] = row
            for col, text in enumerate((t.room, t.meter, "", "")):
                self.table.setItem(row, col, QTableWidgetItem(text))

    # -- acting --------------------------------------------------------------------------------
    def send(self) -> None:
        if self._reload.isActive():  # a room was checked a moment ago
            self._load_targets()
        if not self.targets:
            return
        if not self.reason.text().strip():
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText(_("give the reason for the command"))
            self.reason.setFocus()
            return
        action = self.action.currentData()
        rooms = len({t.node_id for t in self.targets})
        picked = self.target.currentData() == PICKED
        if rooms > 1:
            question = _("{action} {n} meters in the {rooms} rooms picked ({what})?") if picked \
                else _("{action} {n} meters in {rooms} rooms of {what}?")
            answer = QMessageBox.question(
                self, self.windowTitle(), question.format(
                    action=self.action.currentText(), n=len(self.targets), rooms=rooms,
                    what=self.selection))
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._set_inputs(False)
        self.cancel_button.setText(_("Cancel"))
        self.message.setStyleSheet("")
        self.message.setText(_("sending…"))
        operator, targets, reason = self.ctx.operator, list(self.targets), self.reason.text()
        # hand-picked rooms: the audit names every one of them (the core lists them)
        emit, progress = self._relay.outcome.emit, Progress()
        selection = "" if picked else self.selection
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

    def _set_inputs(self, enabled: bool) -> None:
        for widget in (self.send_button, self.action, self.reason, self.target, self.group,
                       self.picker):
            widget.setEnabled(enabled)

    def _failed(self, exc: BaseException) -> None:
        self.job = None
        self.cancel_button.setText(_("Close"))
        self._set_inputs(True)
        present_error(self, exc, "control")

    def cancel_or_close(self) -> None:
        if self.job is not None:  # what was not sent yet is withdrawn
            self.progress.cancel()
            self.message.setText(_("cancelling: what was not sent is withdrawn…"))
            return
        self.reject()
