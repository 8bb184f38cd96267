"""Where the window's live data comes from: its own ReadingService, or another process's.

The window tries to take the database's polling lease. With it, it runs the ReadingService
(one QThread per bus) and the service's writer pushes each stored batch to the bridge. Without
it (``serve`` or another window polls), it says who does and runs a ``DatabaseFeed`` that reads
what that process stores; if the holder goes away, the window takes the buses over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.service import LEASE_TTL_S, LeaseInfo, ReadingService, polling_holder
from app.core.station import database_file
from app.ui.bridge import DatabaseFeed, LiveBridge
from app.ui.workers import qthread_factory

log = logging.getLogger("voltkeeper.ui.live")

#: How often the window looks whether the polling process is still there.
LEASE_CHECK_S = LEASE_TTL_S / 3


class LiveSource(QObject):
    changed = Signal()  # polling here / polled elsewhere / holder changed

    def __init__(self, bridge: LiveBridge, *, role: str = "window", since: float = 0.0,
                 thread_factory: Callable = qthread_factory, feed_interval_s: float = 1.5,
                 check_interval_s: float = LEASE_CHECK_S,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.role = role
        self.thread_factory = thread_factory
        self.feed_interval_s = feed_interval_s
        self.since = since
        self.service: ReadingService | None = None
        self.feed: DatabaseFeed | None = None
        self.holder: LeaseInfo | None = None
        self.error = ""  # why this window could not poll, if it could not
        self._timer = QTimer(self)
        self._timer.setInterval(int(check_interval_s * 1000))
        self._timer.timeout.connect(self._check)

    @property
    def polling(self) -> bool:
        return self.service is not None and self.service.running

    def start(self) -> None:
        """Poll the buses here if nobody else does, otherwise follow the one who does."""
        self._try_poll()
        self._timer.start()
        self.changed.emit()

    def _try_poll(self) -> bool:
        service = ReadingService(role=self.role, thread_factory=self.thread_factory,
                                 db_path=database_file())
        service.add_listener(self.bridge.push)
        try:
            ok, info = service.start()
        except Exception as exc:  # a bad bus configuration must not keep the window shut
            log.exception("cannot start the reading service")
            service.stop()
            self.error = str(exc)
            return False
        self.error = ""
        if ok:
            self._stop_feed()
            self.service, self.holder = service, None
            log.info("this window polls the buses")
            return True
        self.holder = info
        if self.feed is None:
            self.feed = DatabaseFeed(self.bridge.push, since=self.since,
                                     interval_s=self.feed_interval_s,
                                     thread_factory=self.thread_factory)
            self.feed.start()
            log.info("buses polled by %s; following the database", info.describe())
        return False

    def _check(self) -> None:
        """Every few seconds: take over from a holder who left; notice losing our own lease."""
        if self.service is not None:
            if not self.service.lost_lease:
                return
            self.service.stop()
            self.service = None
        current = polling_holder()
        if current is None:
            self._try_poll()
            self.changed.emit()
        elif current != self.holder:
            self.holder = current
            if self.feed is None:
                self._try_poll()
            self.changed.emit()

    def _stop_feed(self) -> None:
        if self.feed is not None:
            self.since = self.feed.since
            self.feed.stop()
            self.feed = None

    def stop(self) -> None:
        """Stop polling or following; joins every worker thread."""
        self._timer.stop()
        self._stop_feed()
        if self.service is not None:
            self.service.stop()
            self.service = None
