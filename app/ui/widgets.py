"""Small pieces the screens share: the colours of a verdict, a message label, a bigger font."""

from __future__ import annotations

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel

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
