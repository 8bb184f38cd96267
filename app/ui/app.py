"""The QApplication as VoltKeeper wants it: binding work-arounds, names, a font that draws
Chinese."""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

from app.ui import qtcompat

#: Fonts with Chinese glyphs, tried after the platform's default font (Windows, macOS, Linux).
CJK_FONTS = ("Microsoft YaHei UI", "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC",
             "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei")


def print_font(points: float, bold: bool = False) -> QFont:
    """A font for paper (receipts, reports): the first CJK font this machine has."""
    font = QFont()
    available = set(QFontDatabase.families())
    families = [f for f in CJK_FONTS if f in available]
    if families:
        font.setFamilies(families)
    font.setPointSizeF(points)
    font.setBold(bold)
    return font


def configure_application(app: QApplication) -> None:
    """Binding work-arounds, names for QSettings and a font whose fallbacks draw Chinese."""
    qtcompat.install()
    app.setOrganizationName("VoltKeeper")
    app.setApplicationName("VoltKeeper")
    font = QFont(app.font())
    available = set(QFontDatabase.families())
    font.setFamilies([font.family(), *(f for f in CJK_FONTS if f in available)])
    app.setFont(font)
