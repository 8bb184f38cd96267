"""Passwords in the window: the station's first administrator (on the very first start), an
operator changing their password (forced for an initial one), an administrator handing out a
new initial password. The core checks the rules (``operators.validate_password``)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core import operators
from app.core.operators import Operator
from app.errors import UserFacingError
from app.i18n import _
from app.ui.errors import error_text
from app.ui.runner import OperationRunner
from app.ui.widgets import message_label


def _password_field(name: str) -> QLineEdit:
    field = QLineEdit()
    field.setObjectName(name)
    field.setEchoMode(QLineEdit.EchoMode.Password)
    return field


class _PasswordForm(QDialog):
    """A small form whose OK runs one core operation through the runner."""

    done_ = Signal(object)  # the operation's result

    def __init__(self, runner: OperationRunner, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.result_value: object = None
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.form = QFormLayout()
        self.message = message_label("message")
        self.ok_button = QPushButton()
        self.ok_button.setDefault(True)
        self.cancel_button = QPushButton()
        buttons = QDialogButtonBox()
        buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.ok_button.clicked.connect(self.submit)
        self.cancel_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addLayout(self.form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.setMinimumWidth(420)

    def _run(self, work: Callable[[], object], title: str) -> None:
        if self.runner.busy:
            return
        self.ok_button.setEnabled(False)
        self.runner.run(work, title=title, parent=self, on_done=self._ok, on_error=self._error)

    def _ok(self, result: object) -> None:
        self.ok_button.setEnabled(True)
        self.result_value = result
        self.done_.emit(result)
        self.accept()

    def _error(self, exc: BaseException) -> None:
        self.ok_button.setEnabled(True)
        self.message.setText(str(exc) if isinstance(exc, UserFacingError) else error_text(exc))

    def _same(self, first: QLineEdit, second: QLineEdit) -> str | None:
        if first.text() != second.text():
            self.message.setText(_("The two passwords differ."))
            return None
        return first.text()

    def submit(self) -> None:
        raise NotImplementedError


class FirstAdministratorDialog(_PasswordForm):
    """The very first start: the station's first administrator."""

    def __init__(self, runner: OperationRunner, parent: QWidget | None = None) -> None:
        super().__init__(runner, parent)
        self.setObjectName("FirstAdministratorDialog")
        self.name = QLineEdit("admin")
        self.name.setObjectName("name")
        self.password, self.again = _password_field("password"), _password_field("again")
        self.captions = [QLabel(), QLabel(), QLabel()]
        for caption, field in zip(self.captions, (self.name, self.password, self.again),
                                  strict=True):
            self.form.addRow(caption, field)
        self.setWindowTitle(_("First start"))
        self.intro.setText(_("This station has no operator yet. Create its first "
                             "administrator, who then adds the others."))
        for caption, text in zip(self.captions, (_("Name:"), _("Password:"), _("Again:")),
                                 strict=True):
            caption.setText(text)
        self.ok_button.setText(_("Create and sign in"))
        self.cancel_button.setText(_("Quit"))

    def submit(self) -> None:
        password = self._same(self.password, self.again)
        if password is None:
            return
        name = self.name.text().strip()

        def work() -> Operator:
            operators.add_operator(None, name, "administrator", password, must_change=False)
            return operators.sign_in(name, password, where="window, first start")

        self._run(work, _("First start"))


class ChangePasswordDialog(_PasswordForm):
    """An operator changes their own password; ``forced`` for an initial one."""

    def __init__(self, runner: OperationRunner, operator: Operator,
                 parent: QWidget | None = None, *, forced: bool = False) -> None:
        super().__init__(runner, parent)
        self.setObjectName("ChangePasswordDialog")
        self.operator = operator
        self.current = _password_field("current")
        self.password, self.again = _password_field("password"), _password_field("again")
        self.captions = [QLabel(), QLabel(), QLabel()]
        for caption, field in zip(self.captions, (self.current, self.password, self.again),
                                  strict=True):
            self.form.addRow(caption, field)
        self.setWindowTitle(_("Change password"))
        self.intro.setText(
            _("{name}, your password was given to you: choose your own before you go on.")
            .format(name=operator.name) if forced else
            _("Change the password of {name}.").format(name=operator.name))
        for caption, text in zip(self.captions, (_("Current password:"), _("New password:"),
                                                 _("Again:")), strict=True):
            caption.setText(text)
        self.ok_button.setText(_("Change password"))
        self.cancel_button.setText(_("Quit") if forced else _("Cancel"))

    def submit(self) -> None:
        password = self._same(self.password, self.again)
        if password is None:
            return
        operator, current = self.operator, self.current.text()
        self._run(lambda: operators.change_own_password(operator, current, password),
                  _("Change password"))


class ResetPasswordDialog(_PasswordForm):
    """An administrator gives an operator a new initial password."""

    def __init__(self, runner: OperationRunner, acting: Operator, name: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(runner, parent)
        self.setObjectName("ResetPasswordDialog")
        self.acting, self.name = acting, name
        self.password, self.again = _password_field("password"), _password_field("again")
        self.captions = [QLabel(), QLabel()]
        for caption, field in zip(self.captions, (self.password, self.again), strict=True):
            self.form.addRow(caption, field)
        self.setWindowTitle(_("New initial password"))
        self.intro.setText(_("{name} gets this password and must change it at the next "
                             "sign-in.").format(name=name))
        self.captions[0].setText(_("Password:"))
        self.captions[1].setText(_("Again:"))
        self.ok_button.setText(_("Set password"))
        self.cancel_button.setText(_("Cancel"))

    def submit(self) -> None:
        password = self._same(self.password, self.again)
        if password is None:
            return
        acting, name = self.acting, self.name
        self._run(lambda: operators.reset_password(acting, name, password),
                  _("New initial password"))
