"""Who works at this window: the signed-in operator, what their role lets them do, and the
idle lock.

``Session`` holds the operator and says when it changes (sign-in, switch operator), so the
window shows only the actions the role allows; the core checks the role again on every act.
``IdleWatcher`` notices when nobody has touched keyboard or mouse for the configured time.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from app.core.operators import Operator, Permission


class Session(QObject):
    operatorChanged = Signal(object)  # Operator

    def __init__(self, operator: Operator | None = None, *, demo: bool = False,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._operator = operator
        self.demo = demo
        self.locked = False

    @property
    def operator(self) -> Operator:
        if self._operator is None:
            raise RuntimeError("nobody is signed in")
        return self._operator

    @property
    def signed_in(self) -> bool:
        return self._operator is not None

    def set_operator(self, operator: Operator) -> None:
        changed = operator != self._operator
        self._operator = operator
        self.locked = False
        if changed:
            self.operatorChanged.emit(operator)

    def can(self, permission: Permission) -> bool:
        return self._operator is not None and self._operator.can(permission)


_INPUT_EVENTS = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove,
                 QEvent.Type.Wheel, QEvent.Type.TouchBegin}


class IdleWatcher(QObject):
    """Emits ``idle`` once nobody has used keyboard or mouse for ``minutes`` (0: never)."""

    idle = Signal()

    def __init__(self, minutes: int, parent: QObject | None = None,
                 check_ms: int = 5_000) -> None:
        super().__init__(parent)
        self.minutes = minutes
        self.last_input = time.monotonic()
        self._fired = False
        self._timer = QTimer(self)
        self._timer.setInterval(check_ms)
        self._timer.timeout.connect(self.check)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self._timer.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _INPUT_EVENTS:
            self.last_input = time.monotonic()
            self._fired = False
        return False

    def set_minutes(self, minutes: int) -> None:
        self.minutes = minutes

    def reset(self) -> None:
        self.last_input = time.monotonic()
        self._fired = False

    def check(self) -> None:
        if self.minutes <= 0 or self._fired:
            return
        if time.monotonic() - self.last_input >= self.minutes * 60:
            self._fired = True
            self.idle.emit()

    def stop(self) -> None:
        self._timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
