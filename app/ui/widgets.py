"""Small pieces the screens share: the colours of a verdict, a message label, a bigger font, a
read-only table of rows, a form whose OK runs one core operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from app.i18n import _

if TYPE_CHECKING:
    from app.ui.context import ActingContext

ERROR_STYLE = "color: #c62828;"
GOOD_STYLE = "color: #1b5e20;"


def scaled_font(font: QFont, factor: float, bold: bool = False) -> QFont:
    """``font`` ``factor`` times as big (bold if asked)."""
    font = QFont(font)
    font.setPointSizeF(font.pointSizeF() * factor)
    font.setBold(bold)
    return font


def message_label(name: str, style: str = ERROR_STYLE) -> QLabel:
    """A word-wrapped label for a dialog's verdict (red for a refusal, green for done)."""
    label = QLabel()
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setStyleSheet(style)
    return label


def ok_cancel(dialog: QDialog) -> QDialogButtonBox:
    """OK and Cancel, wired to accept and reject ``dialog``."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


def refresh_close_bar(dialog: QDialog, message: QLabel) -> tuple[QPushButton, QHBoxLayout]:
    """A management screen's bottom line: its verdict, Refresh and Close (which rejects
    ``dialog``). Returns the Refresh button (the screen connects it) and the line."""
    refresh = QPushButton(_("Refresh"))
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.button(QDialogButtonBox.StandardButton.Close).setText(_("Close"))
    buttons.rejected.connect(dialog.reject)
    bottom = QHBoxLayout()
    bottom.addWidget(message, 1)
    bottom.addWidget(refresh)
    bottom.addWidget(buttons)
    return refresh, bottom


def row_table(columns: tuple[str, ...], stretch: int, *, many: bool = False,
              wrap: bool = False) -> QTableWidget:
    """A read-only table of whole rows: headers translated, columns sized to their contents
    but ``stretch``, which takes the rest; one row selected at a time (``many``: several)."""
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels([_(c) for c in columns])
    header = table.horizontalHeader()
    for col in range(len(columns)):
        header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection if many
                           else QAbstractItemView.SelectionMode.SingleSelection)
    table.setWordWrap(wrap)
    return table


class ActForm(QDialog):
    """A form whose OK runs one core operation through the runner; it closes once the
    operation was done, and a refusal stays in the form (the OK button back). Subclasses fill
    ``form`` and implement ``submit`` with ``run``."""

    def __init__(self, ctx: ActingContext, title: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle(title)
        self.form = QFormLayout()
        self.message = message_label("form_message")
        self.buttons = ok_cancel(self)
        self.buttons.accepted.disconnect()
        self.buttons.accepted.connect(self.submit)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.done_text = ""

    def submit(self) -> None:  # pragma: no cover - each form has its own
        raise NotImplementedError

    def run(self, work: Callable[[], object], done_text: str) -> None:
        self.message.clear()
        self.buttons.setEnabled(False)
        self.done_text = done_text
        self.ctx.runner.run(work, title=self.windowTitle(), parent=self,
                            on_done=lambda _result: self.accept(), on_error=self._refused)

    def _refused(self, exc: BaseException) -> None:
        from app.ui.errors import error_text

        self.buttons.setEnabled(True)
        self.message.setText(error_text(exc, self.windowTitle()))
