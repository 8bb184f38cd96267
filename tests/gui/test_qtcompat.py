"""The binding work-arounds hold: emitting signals from Python keeps ``True`` alive."""

from __future__ import annotations

import sys

from PySide6.QtCore import QStringListModel

from app.ui import qtcompat


def test_emitting_signals_does_not_lose_references_to_true():
    qtcompat.install()  # done by configure_application too; idempotent
    assert not qtcompat.emit_leaks_true()
    model = QStringListModel(["a", "b"])
    before = sys.getrefcount(True)
    for _ in range(1000):
        model.dataChanged.emit(model.index(0), model.index(1))
    assert sys.getrefcount(True) >= before - 10
