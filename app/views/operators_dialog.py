"""Operators (administrators): who works at this station, in which role, in which state.

The dialog shows and asks; the core decides and records (``operators.add_operator``,
``reset_password``, ``set_disabled``, ``set_role``: the rules on names and passwords, the last
administrator who stays one). Every act goes through the runner; its ``changed`` signal
(operators) refreshes the table, whichever window made the change.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
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

from app.core import operators
from app.core.changes import Changes
from app.core.operators import (
    PERSON_ROLES,
    Operator,
    OperatorChange,
    OperatorInfo,
    Permission,
    Role,
    role_text,
)
from app.i18n import N_, _
from app.ui import fmt
from app.ui.context import ActingContext
from app.ui.errors import error_text
from app.ui.runner import OperationRunner
from app.ui.widgets import GOOD_STYLE, message_label
from app.views.password_dialogs import (
    ResetPasswordDialog,
    _password_field,
    _PasswordForm,
)

COLUMNS = (N_("Name"), N_("Role"), N_("State"), N_("Must change password"),
           N_("Last sign-in"))
NOTE_STYLE = "color: #666666;"


def state_text(info: OperatorInfo, now: float | None = None) -> str:
    """Active, disabled, or locked until HH:MM (after repeated wrong passwords)."""
    now = time.time() if now is None else now
    if info.disabled:
        return _("disabled")
    if info.locked_until is not None and info.locked_until > now:
        return _("locked until {time}").format(
            time=time.strftime("%H:%M", time.localtime(info.locked_until)))
    return _("active")


def _role_combo(current: str) -> QComboBox:
    combo = QComboBox()
    combo.setObjectName("role")
    for role in PERSON_ROLES:
        combo.addItem(role_text(role), role.value)
    combo.setCurrentIndex(max(0, combo.findData(str(current))))
    return combo


class AddOperatorDialog(_PasswordForm):
    """A new operator: name, role, and an initial password they change at the first sign-in
    (typed twice, or generated and shown here once to hand over)."""

    def __init__(self, runner: OperationRunner, acting: Operator,
                 parent: QWidget | None = None) -> None:
        super().__init__(runner, parent)
        self.setObjectName("AddOperatorDialog")
        self.acting = acting
        self.name = QLineEdit()
        self.name.setObjectName("name")
        self.role = _role_combo(Role.CASHIER)
        self.password, self.again = _password_field("password"), _password_field("again")
        self.generate_button = QPushButton()
        self.generate_button.setObjectName("generate")
        self.generated = QLabel()  # the generated password, selectable to copy
        self.generated.setObjectName("generated")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setBold(True)
        mono.setPointSizeF(self.font().pointSizeF() * 1.25)
        self.generated.setFont(mono)
        self.generated.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                               | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.handover = message_label("handover", NOTE_STYLE)
        self.captions = [QLabel() for _field in range(4)]
        for caption, field in zip(self.captions, (self.name, self.role, self.password,
                                                  self.again), strict=True):
            self.form.addRow(caption, field)
        self.form.addRow(self.generate_button, self.generated)
        self.form.addRow(self.handover)
        self._show_generated(False)
        self.generate_button.clicked.connect(self.generate)
        self.password.textEdited.connect(self._edited)
        self.again.textEdited.connect(self._edited)
        self.retranslate()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Add operator"))
        self.intro.setText(_("The new operator signs in with this initial password and must "
                             "choose their own at once."))
        for caption, text in zip(self.captions, (_("Name:"), _("Role:"), _("Password:"),
                                                 _("Again:")), strict=True):
            caption.setText(text)
        self.generate_button.setText(_("Generate"))
        self.handover.setText(_("This password is shown only here: hand it to the operator."))
        self.ok_button.setText(_("Add"))
        self.cancel_button.setText(_("Cancel"))

    def generate(self) -> None:
        """Fill both fields with a generated password and show it once, to hand over."""
        password = operators.generate_password()
        self.password.setText(password)
        self.again.setText(password)
        self.generated.setText(password)
        self._show_generated(True)

    def _show_generated(self, shown: bool) -> None:
        self.generated.setVisible(shown)
        self.handover.setVisible(shown)
        self.adjustSize()

    def _edited(self) -> None:
        if self.generated.isVisible():
            self._show_generated(False)  # what is shown is no longer the password

    def submit(self) -> None:
        password = self._same(self.password, self.again)
        if password is None:
            return
        acting, name, role = self.acting, self.name.text(), str(self.role.currentData())
        self._run(lambda: operators.add_operator(acting, name, role, password),
                  _("Add operator"))


class ChangeRoleDialog(_PasswordForm):
    """Give an operator another role."""

    def __init__(self, runner: OperationRunner, acting: Operator, info: OperatorInfo,
                 parent: QWidget | None = None) -> None:
        super().__init__(runner, parent)
        self.setObjectName("ChangeRoleDialog")
        self.acting, self.info = acting, info
        self.role = _role_combo(info.role)
        self.caption = QLabel()
        self.form.addRow(self.caption, self.role)
        self.retranslate()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Change role"))
        self.intro.setText(_("{name} is {role} now. Their new role:").format(
            name=self.info.name, role=role_text(self.info.role)))
        self.caption.setText(_("Role:"))
        self.ok_button.setText(_("Change role"))
        self.cancel_button.setText(_("Cancel"))

    def submit(self) -> None:
        acting, name, role = self.acting, self.info.name, str(self.role.currentData())
        self._run(lambda: operators.set_role(acting, name, role), _("Change role"))


class OperatorsDialog(QDialog):
    """The station's operators, and the administrators' acts on them."""

    def __init__(self, ctx: ActingContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("OperatorsDialog")
        self.ctx = ctx
        self.rows: list[OperatorInfo] = []
        self.sub_dialog: _PasswordForm | None = None
        self._focus = ""
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("operators")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.note = message_label("note", NOTE_STYLE)
        self.message = message_label("message")
        self.info = message_label("info", GOOD_STYLE)
        self.add_button, self.reset_button = QPushButton(), QPushButton()
        self.toggle_button, self.role_button = QPushButton(), QPushButton()
        self.close_button = QPushButton()
        buttons = QHBoxLayout()
        for button, slot in ((self.add_button, self.add), (self.reset_button, self.new_password),
                             (self.toggle_button, self.toggle_disabled),
                             (self.role_button, self.change_role)):
            buttons.addWidget(button)
            button.clicked.connect(slot)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        self.close_button.clicked.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        for label in (self.note, self.message, self.info):
            layout.addWidget(label)
        layout.addLayout(buttons)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        ctx.runner.changed.connect(self._changed)
        self.retranslate()
        self.refresh()
        self.resize(760, 380)

    def retranslate(self) -> None:
        self.setWindowTitle(_("Operators"))
        self.table.setHorizontalHeaderLabels([_(c) for c in COLUMNS])
        self.add_button.setText(_("Add…"))
        self.reset_button.setText(_("New initial password…"))
        self.role_button.setText(_("Change role…"))
        self.close_button.setText(_("Close"))
        self.note.setText(_("Only an administrator adds operators or changes them."))
        self._fill()

    # -- the table ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the operators again (a short list: read here, on the UI thread)."""
        try:
            self.rows = operators.list_operators(self.ctx.session.operator)
        except Exception as exc:  # shown, like any refusal
            self.rows = []
            self.message.setText(error_text(exc, "list operators"))
        self._fill()

    def _fill(self) -> None:
        focus = self._focus or (self.selected().name if self.selected() else "")
        self.table.setRowCount(len(self.rows))
        for r, info in enumerate(self.rows):
            texts = (info.name, role_text(info.role), state_text(info),
                     _("yes") if info.must_change_password else "",
                     fmt.clock(info.last_sign_in_at) if info.last_sign_in_at else _("never"))
            for c, text in enumerate(texts):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self._focus = ""
        if focus:
            self.select(focus)
        self._update_buttons()

    def selected(self) -> OperatorInfo | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.rows[rows[0].row()] if rows and rows[0].row() < len(self.rows) else None

    def select(self, name: str) -> None:
        for r, info in enumerate(self.rows):
            if info.name == name:
                self.table.selectRow(r)
                return

    def _update_buttons(self) -> None:
        may = self.ctx.session.can(Permission.MANAGE_OPERATORS)
        info = self.selected()
        self.note.setVisible(not may)
        self.add_button.setEnabled(may)
        for button in (self.reset_button, self.toggle_button, self.role_button):
            button.setEnabled(may and info is not None)
        self.toggle_button.setText(_("Enable") if info and info.disabled else _("Disable"))

    def _changed(self, changes: Changes) -> None:
        if changes.operators:
            self.refresh()

    # -- the acts ----------------------------------------------------------------------------
    def _open(self, dialog: _PasswordForm) -> None:
        self.message.clear()
        self.info.clear()
        self.sub_dialog = dialog
        dialog.done_.connect(self._done)
        dialog.open()

    def add(self) -> None:
        self._open(AddOperatorDialog(self.ctx.runner, self.ctx.session.operator, self))

    def new_password(self) -> None:
        info = self.selected()
        if info is not None:
            self._open(ResetPasswordDialog(self.ctx.runner, self.ctx.session.operator,
                                           info.name, self))

    def change_role(self) -> None:
        info = self.selected()
        if info is not None:
            self._open(ChangeRoleDialog(self.ctx.runner, self.ctx.session.operator, info, self))

    def toggle_disabled(self) -> None:
        info = self.selected()
        if info is None:
            return
        acting, name, disabled = self.ctx.session.operator, info.name, not info.disabled
        self._act(lambda: operators.set_disabled(acting, name, disabled),
                  _("Disable operator") if disabled else _("Enable operator"))

    def _act(self, work: Callable[[], OperatorChange], title: str) -> None:
        if self.ctx.runner.busy:
            return
        self.message.clear()
        self.info.clear()
        self.toggle_button.setEnabled(False)
        self.ctx.runner.run(work, title=title, parent=self, on_done=self._done,
                            on_error=self._error)

    def _done(self, result: OperatorChange) -> None:
        info = result.operator
        self._focus = info.name  # selected again once the runner's signal has refreshed
        self.info.setText(_("Done: {name} is {role}, {state}.").format(
            name=info.name, role=role_text(info.role), state=state_text(info)))
        self._update_buttons()

    def _error(self, exc: BaseException) -> None:
        self.message.setText(error_text(exc, "operators"))
        self._update_buttons()
