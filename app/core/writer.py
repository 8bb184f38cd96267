"""The one storage writer: collects poll outcomes from every bus and commits them in batches.

Bus threads call ``put`` (never blocking on the disk). The writer thread commits whatever has
arrived every ``flush_s`` seconds (or sooner when ``max_batch`` outcomes wait) in one
transaction, then tells listeners with one ``LiveBatch``: the views redraw a few times a
second, not once per value.

One meter's data never costs the others theirs: a batch the database refuses for its data (a
value a column cannot hold, a meter deleted meanwhile) is written again outcome by outcome and
only what is refused is dropped (``outcomes_dropped``). Any other failure (the disk, a lock held
too long, a defect) keeps the batch for the next flush and is raised: the writer runs under the
reading service's supervisor, which logs it, reports it and restarts the loop.

After a batch is stored the writer raises the alarms the polls call for: a meter that sent a
value that cannot be right (``bad_reading``) and one that refuses registers its maker documents
(``documented_missing``), each once per meter while one is open.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence

import peewee

from app.core.alarms import raise_alarm
from app.core.live import BusLive, LiveBatch, MeterLive
from app.storage import readings
from app.storage.capabilities import WorkerRow
from app.storage.readings import BusOutcome, PollOutcome

log = logging.getLogger("voltkeeper.writer")

Listener = Callable[[LiveBatch], None]
Store = Callable[[Sequence[PollOutcome], Sequence[BusOutcome], Sequence[WorkerRow]], None]
PRUNE_EVERY_S = 600.0
#: How often the writer asks the database again whether a meter's alarm is still open.
ALARM_RECHECK_S = 600.0
#: Failures of the data itself: the batch is retried outcome by outcome.
DATA_ERRORS = (OverflowError, ValueError, TypeError, peewee.IntegrityError, peewee.DataError,
               sqlite3.IntegrityError, sqlite3.DataError)


def live_from_outcome(o: PollOutcome) -> MeterLive:
    if o.ok and o.values is not None:
        return MeterLive(o.meter_id, True, o.values)
    return MeterLive(meter_id=o.meter_id, online=o.online)


def bus_live(b: BusOutcome) -> BusLive:
    return BusLive(b.bus_id, b.state, b.last_cycle_s, b.last_cycle_at, b.error,
                   b.meters_online, b.meters_total)


class _Batch:
    def __init__(self) -> None:
        self.outcomes: list[PollOutcome] = []
        self.buses: dict[int, BusOutcome] = {}
        self.workers: dict[str, WorkerRow] = {}

    def __bool__(self) -> bool:
        return bool(self.outcomes or self.buses or self.workers)


class StorageWriter:
    def __init__(self, flush_s: float = 0.25, max_batch: int = 2000,
                 store: Store = readings.write_batch) -> None:
        self.flush_s = flush_s
        self.max_batch = max_batch
        self.store = store
        self._queue: queue.Queue[tuple[list[PollOutcome], BusOutcome | None,
                                       WorkerRow | None]] = queue.Queue()
        self._listeners: list[Listener] = []
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self._last_prune = time.monotonic()
        self._held: _Batch | None = None  # a batch that could not be stored yet
        self._alarm_checked: dict[tuple[str, int], float] = {}
        self.batches_written = 0
        self.outcomes_written = 0
        self.outcomes_dropped = 0

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def put(self, outcomes: list[PollOutcome], bus: BusOutcome | None = None) -> None:
        self._queue.put((outcomes, bus, None))

    def put_worker(self, row: WorkerRow) -> None:
        """A thread's state, stored with the next batch."""
        self._queue.put(([], None, row))

    # -- the thread ----------------------------------------------------------------------------
    def start(self) -> None:
        """Run the writer in its own plain thread (the reading service supervises ``run``
        in a thread of its own instead)."""
        self._thread = threading.Thread(target=self._run_logged, name="storage-writer",
                                        daemon=True)
        self._thread.start()

    def _run_logged(self) -> None:
        while not self.stopping.is_set():
            try:
                self.run()
            except Exception:
                log.exception("storage writer failed")
                self.stopping.wait(1.0)

    def run(self) -> None:
        """Flush every ``flush_s`` until ``stopping`` is set. Raises what it cannot handle."""
        while not self.stopping.is_set():
            self.stopping.wait(self.flush_s)
            self.flush()
            if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
                self._last_prune = time.monotonic()
                try:
                    readings.prune_samples()
                except Exception:
                    log.exception("pruning samples failed")

    def stop(self) -> None:
        """Stop the loop and write what is left."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for _attempt in range(3):
            try:
                while self.flush() or self._held:
                    pass
                return
            except Exception:
                log.exception("storage writer: could not write everything at stop")

    # -- one batch -----------------------------------------------------------------------------
    def _take(self) -> _Batch:
        if self._held is not None:
            batch, self._held = self._held, None
            return batch
        batch = _Batch()
        while len(batch.outcomes) < self.max_batch:
            try:
                items, bus, worker = self._queue.get_nowait()
            except queue.Empty:
                break
            batch.outcomes.extend(items)
            if bus is not None:
                batch.buses[bus.bus_id] = bus
            if worker is not None:
                batch.workers[worker.name] = worker
        return batch

    def flush(self) -> int:
        """Write everything queued now, in one transaction. Returns the outcomes written."""
        batch = self._take()
        if not batch:
            return 0
        try:
            self.store(batch.outcomes, list(batch.buses.values()), list(batch.workers.values()))
            written = batch.outcomes
        except DATA_ERRORS:
            log.exception("the database refused a batch of %d poll outcomes: storing them one "
                          "by one", len(batch.outcomes))
            written = self._one_by_one(batch)
        except Exception:
            self._held = batch
            raise
        self.batches_written += 1
        self.outcomes_written += len(written)
        self._alarms(written)
        live = LiveBatch([live_from_outcome(o) for o in written],
                         [bus_live(b) for b in batch.buses.values()])
        for listener in list(self._listeners):
            try:
                listener(live)
            except Exception:
                log.exception("live listener failed")
        return len(written)

    def _one_by_one(self, batch: _Batch) -> list[PollOutcome]:
        written: list[PollOutcome] = []
        for i, o in enumerate(batch.outcomes):
            try:
                self.store([o], (), ())
            except DATA_ERRORS as exc:
                self.outcomes_dropped += 1
                log.error("poll outcome of meter %s not stored: %s", o.meter_id, exc)
                continue
            except Exception:
                rest = _Batch()
                rest.outcomes = batch.outcomes[i:]
                rest.buses, rest.workers = batch.buses, batch.workers
                self._held = rest
                raise
            written.append(o)
        try:
            self.store([], list(batch.buses.values()), list(batch.workers.values()))
        except DATA_ERRORS:
            log.exception("bus and thread states not stored")
        return written

    # -- alarms --------------------------------------------------------------------------------
    def _alarms(self, outcomes: list[PollOutcome]) -> None:
        for o in outcomes:
            try:
                if o.bad_values:
                    point, why = o.bad_values[0]
                    self._alarm_once("bad_reading", o.meter_id,
                                     {"meter": o.meter_id, "point": point, "value": why})
                for kind, detail in o.events:
                    if kind == "refused_documented":
                        self._alarm_once("documented_missing", o.meter_id,
                                         {"meter": o.meter_id, "points": detail})
            except Exception:  # an alarm that cannot be raised must not lose the readings
                log.exception("could not raise an alarm for meter %s", o.meter_id)

    def _alarm_once(self, kind: str, meter_id: int, params: dict[str, object]) -> None:
        key = (kind, meter_id)
        now = time.monotonic()
        if now - self._alarm_checked.get(key, -ALARM_RECHECK_S) < ALARM_RECHECK_S:
            return
        self._alarm_checked[key] = now
        raise_alarm(kind, 2, params, meter_id=meter_id)
