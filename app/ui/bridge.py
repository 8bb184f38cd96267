"""The one way live data reaches the views: ``LiveBridge.batch``, a typed signal of LiveBatch.

Producers call ``LiveBridge.push`` from any thread: the ReadingService's writer thread (when
this window polls) or the ``DatabaseFeed`` (when another process polls and this one reads what
it stores). The bridge queues them and, on the UI thread, drains the queue a few times a
second, merges what arrived into the LiveStore and emits only what changed, once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.live import BusLive, LiveBatch, stored_since
from app.core.station import release_connection
from app.ui.live_store import LiveStore
from app.ui.workers import qthread_factory

log = logging.getLogger("voltkeeper.ui.bridge")

#: Views hear about changes at most this often (4 times a second).
BATCH_INTERVAL_MS = 250


class LiveBridge(QObject):
    batch = Signal(object)  # LiveBatch of what changed, already applied to the store

    def __init__(self, store: LiveStore, interval_ms: int = BATCH_INTERVAL_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self._lock = threading.Lock()
        self._pending: list[LiveBatch] = []
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self._timer.start()

    def push(self, batch: LiveBatch) -> None:
        """Queue a batch; safe from any thread, never blocks on the UI."""
        with self._lock:
            self._pending.append(batch)

    def flush(self) -> LiveBatch | None:
        """Merge everything queued into the store and emit what changed (UI thread)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return None
        merged = LiveBatch([m for b in pending for m in b.meters],
                           [s for b in pending for s in b.buses])
        changed = self.store.apply(merged)
        if changed.meters or changed.buses:
            self.batch.emit(changed)
            return changed
        return None

    def stop(self) -> None:
        self._timer.stop()


class DatabaseFeed:
    """Reads the live data another process stores, every ``interval_s``, off the UI thread.

    Asks only for rows changed since the newest it has seen (an indexed query), so a cycle of
    the whole campus costs one small read, not a scan.
    """

    def __init__(self, sink: Callable[[LiveBatch], None], *, since: float = 0.0,
                 interval_s: float = 1.5,
                 thread_factory: Callable[[Callable[[], None], str], object] = qthread_factory
                 ) -> None:
        self.sink = sink
        self.since = since
        self.interval_s = interval_s
        self.thread_factory = thread_factory
        self._stop = threading.Event()
        self._thread = None
        self._buses: dict[int, BusLive] = {}

    def poll_once(self) -> LiveBatch:
        meters, states, self.since = stored_since(self.since)
        buses = []
        for b in states:
            if self._buses.get(b.bus_id) != b:
                self._buses[b.bus_id] = b
                buses.append(b)
        batch = LiveBatch(meters, buses)
        if batch.meters or batch.buses:
            self.sink(batch)
        return batch

    def start(self) -> None:
        self._stop.clear()
        self._thread = self.thread_factory(self._run, "db-feed")
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.poll_once()
                except Exception:
                    log.exception("reading the live data from the database failed")
                self._stop.wait(self.interval_s)
        finally:
            release_connection()  # this thread's own connection

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
