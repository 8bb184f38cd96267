"""Switching the language of the whole program: our gettext catalogue and Qt's own (qtbase),
so Qt's standard dialogs and buttons follow too. Applies live: views re-read their texts."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

from app.i18n import set_language

_qt_translator: QTranslator | None = None


def apply_language(language: str | None) -> str:
    """Use ``language`` ("en", "zh_CN", None or "system") everywhere; returns the one chosen."""
    global _qt_translator
    chosen = set_language(language)
    app = QCoreApplication.instance()
    if app is None:
        return chosen
    if _qt_translator is not None:
        app.removeTranslator(_qt_translator)
        _qt_translator = None
    QLocale.setDefault(QLocale(chosen))
    if chosen != "en":
        translator = QTranslator(app)
        path = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
        if translator.load(f"qtbase_{chosen}", path):
            app.installTranslator(translator)
            _qt_translator = translator
    return chosen
