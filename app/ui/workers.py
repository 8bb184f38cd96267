"""QThreads for the core's workers: the window runs ReadingService with one QThread per bus.

``qthread_factory`` has the shape ReadingService's ``thread_factory`` expects (``start`` and
``join``), so the core stays Qt-free and the same service runs in ``serve`` on plain threads.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

from PySide6.QtCore import QThread

log = logging.getLogger("voltkeeper.ui.workers")

_threads: weakref.WeakSet[WorkerThread] = weakref.WeakSet()


class WorkerThread(QThread):
    """Runs ``target`` once in its own QThread; ``join`` waits for it like threading's."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__()
        self._target = target
        self.setObjectName(name)
        _threads.add(self)

    def run(self) -> None:
        try:
            self._target()
        except Exception:  # a dying worker is logged, never takes the window down
            log.exception("worker %s failed", self.objectName())

    def join(self, timeout: float | None = None) -> None:
        if timeout is None:
            self.wait()
        elif not self.wait(max(0, int(timeout * 1000))):
            log.warning("worker %s did not stop within %.1f s", self.objectName(), timeout)


def qthread_factory(target: Callable[[], None], name: str) -> WorkerThread:
    return WorkerThread(target, name)


def running_threads() -> list[str]:
    """Names of worker QThreads still running (tests assert none are left)."""
    return [t.objectName() for t in list(_threads) if t.isRunning()]
