"""Progress and cancel for long core work, without Qt.

A long operation (an import, a report, a scan, a backup) takes a ``Progress`` and calls
``step`` as it goes; ``step`` raises ``Cancelled`` once someone asked to cancel, so the work
stops at a safe point (inside a transaction, which then rolls back whole). The window wraps it
in its runner (a progress dialog with a Cancel button); the command line passes one that prints
or nothing at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from app.errors import Cancelled
from app.i18n import _

Listener = Callable[[int, int, str], None]


class Progress:
    def __init__(self, listener: Listener | None = None) -> None:
        self._listener = listener
        self._cancel = threading.Event()
        self.done = 0
        self.total = 0
        self.text = ""

    def cancel(self) -> None:
        """Ask the work to stop at its next step (any thread)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(_("cancelled; nothing was changed"))

    def step(self, done: int, total: int, text: str = "") -> None:
        """Report ``done`` of ``total``; raises Cancelled if cancelling was asked."""
        self.check()
        self.done, self.total = done, total
        if text:
            self.text = text
        if self._listener is not None:
            self._listener(done, total, self.text)


def quiet() -> Progress:
    """A Progress nobody watches (scripts, tests)."""
    return Progress()
