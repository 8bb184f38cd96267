"""The one storage writer: collects poll outcomes from every bus and commits them in batches.

Bus threads call ``put`` (never blocking on the disk). The writer thread commits whatever has
arrived every ``flush_s`` seconds (or sooner when ``max_batch`` outcomes wait) in one
transaction, then tells listeners with one ``LiveBatch``: the views redraw a few times a
second, not once per value.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from app.core.live import BusLive, LiveBatch, MeterLive
from app.storage import readings
from app.storage.readings import BusOutcome, PollOutcome

log = logging.getLogger("voltkeeper.writer")

Listener = Callable[[LiveBatch], None]
PRUNE_EVERY_S = 600.0


def live_from_outcome(o: PollOutcome) -> MeterLive:
    if o.ok and o.values is not None:
        return MeterLive(o.meter_id, True, o.values)
    return MeterLive(meter_id=o.meter_id, online=o.online)


def bus_live(b: BusOutcome) -> BusLive:
    return BusLive(b.bus_id, b.state, b.last_cycle_s, b.last_cycle_at, b.error,
                   b.meters_online, b.meters_total)


class StorageWriter:
    def __init__(self, flush_s: float = 0.25, max_batch: int = 2000) -> None:
        self.flush_s = flush_s
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[list[PollOutcome], BusOutcome | None]] = queue.Queue()
        self._listeners: list[Listener] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_prune = time.monotonic()
        self.batches_written = 0
        self.outcomes_written = 0

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def put(self, outcomes: list[PollOutcome], bus: BusOutcome | None = None) -> None:
        self._queue.put((outcomes, bus))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="storage-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def flush(self) -> int:
        """Write everything queued now, in one transaction. Returns the outcomes written."""
        outcomes: list[PollOutcome] = []
        buses: dict[int, BusOutcome] = {}
        while len(outcomes) < self.max_batch:
            try:
                items, bus = self._queue.get_nowait()
            except queue.Empty:
                break
            outcomes.extend(items)
            if bus is not None:
                buses[bus.bus_id] = bus
        if not outcomes and not buses:
            return 0
        try:
            readings.write_batch(outcomes, list(buses.values()))
        except Exception:
            log.exception("could not store %d poll outcomes", len(outcomes))
            return 0
        self.batches_written += 1
        self.outcomes_written += len(outcomes)
        batch = LiveBatch([live_from_outcome(o) for o in outcomes],
                          [bus_live(b) for b in buses.values()])
        for listener in list(self._listeners):
            try:
                listener(batch)
            except Exception:
                log.exception("live listener failed")
        return len(outcomes)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.flush_s)
            self.flush()
            if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
                self._last_prune = time.monotonic()
                try:
                    readings.prune_samples()
                except Exception:
                    log.exception("pruning samples failed")
