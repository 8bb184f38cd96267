"""Signing in: at start, to switch operator, and to unlock a window locked after idle time.

The dialog asks; the core decides (``operators.sign_in``: the password, the lock-out after
repeated failures, the audit entry). In lock mode the name is the locked-out operator's until
"Switch operator" frees it. On a demo database, ``DemoOperatorDialog`` picks a demo operator
without a password, to try what each role may do.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
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
from app.core.operators import Operator, role_text
from app.errors import UserFacingError
from app.i18n import _
from app.ui.errors import error_text
from app.ui.runner import OperationRunner
from app.ui.widgets import message_label, ok_cancel, scaled_font


class SignInDialog(QDialog):
    """Name and password. ``signedIn`` carries the Operator; ``failed`` the message shown."""

    signedIn = Signal(object)
    failed = Signal(str)

    def __init__(self, runner: OperationRunner, parent: QWidget | None = None, *,
                 locked_name: str = "", campus: str = "", where: str = "window") -> None:
        super().__init__(parent)
        self.setObjectName("SignInDialog")
        self.runner = runner
        self.where = where
        self.locked_name = locked_name
        self.operator: Operator | None = None
        self.heading = QLabel()
        self.heading.setFont(scaled_font(self.heading.font(), 1.4, bold=True))
        self.campus = QLabel(campus)
        self.campus.setStyleSheet("color: #666666;")
        self.name = QLineEdit(locked_name)
        self.name.setObjectName("name")
        self.password = QLineEdit()
        self.password.setObjectName("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.message = message_label("message")
        self.name_caption, self.password_caption = QLabel(), QLabel()
        form = QFormLayout()
        form.addRow(self.name_caption, self.name)
        form.addRow(self.password_caption, self.password)
        self.buttons = QDialogButtonBox()
        self.sign_in_button = QPushButton()
        self.sign_in_button.setDefault(True)
        self.switch_button = QPushButton()
        self.cancel_button = QPushButton()
        self.buttons.addButton(self.sign_in_button, QDialogButtonBox.ButtonRole.AcceptRole)
        if locked_name:
            self.buttons.addButton(self.switch_button, QDialogButtonBox.ButtonRole.ActionRole)
            self.name.setReadOnly(True)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.sign_in_button.clicked.connect(self.submit)
        self.switch_button.clicked.connect(self._switch)
        self.cancel_button.clicked.connect(self.reject)
        self.password.returnPressed.connect(self.submit)
        self.name.returnPressed.connect(self.password.setFocus)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.campus)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.retranslate()
        self.setMinimumWidth(380)
        (self.password if locked_name else self.name).setFocus()

    def retranslate(self) -> None:
        locked = bool(self.locked_name)
        self.setWindowTitle(_("Locked") if locked else _("Sign in"))
        self.heading.setText(_("This window is locked") if locked
                             else _("VoltKeeper: sign in"))
        self.name_caption.setText(_("Operator:"))
        self.password_caption.setText(_("Password:"))
        self.sign_in_button.setText(_("Unlock") if locked else _("Sign in"))
        self.switch_button.setText(_("Switch operator"))
        self.cancel_button.setText(_("Quit") if locked else _("Cancel"))

    def _switch(self) -> None:
        self.locked_name = ""
        self.name.setReadOnly(False)
        self.name.clear()
        self.password.clear()
        self.switch_button.hide()
        self.retranslate()
        self.name.setFocus()

    def submit(self) -> None:
        """Check the name and password (off the UI thread); accept on success."""
        name, password = self.name.text().strip(), self.password.text()
        if not name or not password:
            self._refuse(_("Enter your name and password."))
            return
        if self.runner.busy:
            return
        self.sign_in_button.setEnabled(False)
        where = self.where
        self.runner.run(lambda: operators.sign_in(name, password, where=where),
                        title=_("Sign in"), parent=self, on_done=self._signed_in,
                        on_error=self._error)

    def _signed_in(self, operator: Operator) -> None:
        self.operator = operator
        self.password.clear()
        self.sign_in_button.setEnabled(True)
        self.signedIn.emit(operator)
        self.accept()

    def _error(self, exc: BaseException) -> None:
        self.sign_in_button.setEnabled(True)
        self.password.clear()
        self.password.setFocus()
        self._refuse(str(exc) if isinstance(exc, UserFacingError) else error_text(exc))

    def _refuse(self, text: str) -> None:
        self.message.setText(text)
        self.failed.emit(text)


class DemoOperatorDialog(QDialog):
    """The demo: pick an operator (one per role) without a password."""

    def __init__(self, names: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DemoOperatorDialog")
        self.setWindowTitle(_("Switch operator"))
        self.choice = QComboBox()
        for name, role in names:
            self.choice.addItem(f"{name} ({role_text(role)})", name)
        note = QLabel(_("This is the demo: try each role without a password. A real station "
                        "asks for the operator's password."))
        note.setWordWrap(True)
        buttons = ok_cancel(self)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.choice)
        layout.addWidget(buttons)
        self.setWindowModality(Qt.WindowModality.WindowModal)

    def chosen(self) -> str:
        return str(self.choice.currentData())
