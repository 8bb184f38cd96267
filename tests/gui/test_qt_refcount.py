"""Guard against a Qt binding that corrupts Python's reference counts.

PySide6 6.12.0 releases a reference to None on every call of a method returning void; on
Python 3.11 (None is not immortal there) a window that runs for a few minutes then aborts with
"deallocating None". pyproject.toml keeps that release out; this test fails if such a binding
comes back."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel


def test_void_calls_keep_none_alive(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    obj = QObject()
    timer = QTimer()
    before = sys.getrefcount(None)
    for i in range(2000):
        label.setText(str(i))
        obj.setObjectName("x")
        timer.start(1000)
        timer.stop()
    assert abs(sys.getrefcount(None) - before) < 100
