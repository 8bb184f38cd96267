"""The one storage writer: collects poll outcomes from every bus and commits them in batches.

Bus threads call ``put`` (never blocking on the disk). The writer thread commits whatever has
arrived every ``flush_s`` seconds (or sooner when ``max_batch`` outcomes wait) in one
transaction, then tells listeners with one ``LiveBatch``: the views redraw a few times a
second, not once per value.

One meter's data never costs the others theirs: a batch the database refuses for its data (a
value a column cannot hold, a meter deleted meanwhile) is written again outcome by outcome and
only what is refused is dropped (``outcomes_dropped``). Any other failure (a defect) keeps the
batch for the next flush and is raised: the writer runs under the reading service's
supervisor, which logs it, reports it and restarts the loop.

After a batch is stored the writer raises the alarms the polls call for: a meter that sent a
value that cannot be right (``bad_reading``) and one that refuses registers its maker documents
(``documented_missing``), each once per meter while one is open.

A database that cannot take a write now (another process holds the lock past the busy
timeout, the disk is full: ``storage/busy.py``) is not a defect: the writer keeps what it could
not store and tries again at every flush, without raising. Nothing the meters counted is lost:
the energy of every held read is kept (intervals and days are sums, so held reads are merged per
meter when many wait, ``compact``), and beyond ``max_held`` the merged batch goes to files
beside the database (``spill``), written back oldest first once writing works. The writer says
so (``status``; a side file ``<db>-unsent.json`` that ``status`` reads, since the database
itself cannot be written) and, once writing works again, raises a ``readings_unsent`` alarm with
how long and how much. A process that dies while holding reads loses only their events and
samples: the stored energy register did not move on, so the next start books the whole delta.
The WAL that grew meanwhile (readers kept it from being checkpointed) is truncated after.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import peewee

from app.core.alarms import clear_alarm, raise_alarm
from app.core.live import BusLive, LiveBatch, MeterLive
from app.core.load_detector import DetectorSettings, LoadDetector
from app.core.power_limits import RestorePolicy, RuleCache, over_limit, trip_room_meter
from app.storage import alarms as alarm_store
from app.storage import busy, campus, comm_history, readings, unsent
from app.storage.capabilities import WorkerRow
from app.storage.db import database_path
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
#: Held poll outcomes beyond which they are merged per meter, then spilled to disk.
MAX_HELD = 20_000
#: How often a writer that cannot write says so again in the log (s).
BLOCKED_LOG_EVERY_S = 60.0
#: A WAL larger than this is truncated once writing works again (bytes).
WAL_TRUNCATE_ABOVE = 64 * 1024 * 1024
#: Events kept per meter when held reads are merged.
EVENTS_KEPT = 20


class _PartlyStored(Exception):
    """Storing outcome by outcome stopped part way: ``rest`` is what was not stored."""

    def __init__(self, rest: _Batch, cause: Exception) -> None:
        super().__init__(str(cause))
        self.rest, self.cause = rest, cause


#: The meter's own trips (its ``trip_reason`` codes, as the profiles give them: 5 is the
#: lock-out after too many restores) and the alarm each raises.
SELF_TRIPS = {2: "power_limit", 3: "malicious_load", 5: "power_limit"}


@dataclass(frozen=True)
class WriterStatus:
    """What the writer holds that is not stored yet, since when and why ("" when none)."""

    unsent: int
    since: float | None
    error: str
    spilled_files: int = 0


def _bus_name(bus_id: int) -> str:
    return next((b.name for b in campus.buses() if b.id == bus_id), str(bus_id))


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

    def absorb(self, other: _Batch) -> None:
        """Add ``other``'s content, which is newer."""
        self.outcomes.extend(other.outcomes)
        self.buses.update(other.buses)
        self.workers.update(other.workers)

    def weight(self) -> int:
        """A measure of the memory the batch takes: outcomes and their energy pieces."""
        return sum(1 + len(o.intervals) + len(o.days) for o in self.outcomes)

    def compact(self) -> None:
        """Merge the outcomes per meter, keeping every Wh: at most two per meter, the latest
        good read (carrying all the meter's intervals, days, events and bad values) and the
        failure that followed it, if one did (the meter's state now). Per-read statistics
        (counts of reads and errors) are what is given up."""
        merged: dict[int, list[PollOutcome]] = {}
        for o in self.outcomes:
            prior = merged.get(o.meter_id)
            if prior is None:
                merged[o.meter_id] = [o]
                continue
            base = prior[0]
            fell_silent = base.ok and not o.ok  # keep the good read, then the failure
            intervals: dict[int, int] = {}
            days: dict[str, int] = {}
            for start, wh in (*base.intervals, *o.intervals):
                intervals[start] = intervals.get(start, 0) + wh
            for day, wh in (*base.days, *o.days):
                days[day] = days.get(day, 0) + wh
            head = replace(
                base if fell_silent else o, intervals=sorted(intervals.items()),
                days=sorted(days.items()),
                events=[*base.events, *o.events][-EVENTS_KEPT:],
                bad_values=[*base.bad_values, *o.bad_values][-EVENTS_KEPT:],
                sample=base.sample or o.sample,
                online_changed=base.online_changed or o.online_changed,
                capability=o.capability or base.capability)
            merged[o.meter_id] = [head, replace(o, intervals=[], days=[], events=[],
                                                bad_values=[], capability=None)] \
                if fell_silent else [head]
        self.outcomes = [o for pair in merged.values() for o in pair]


#: A reading older than this (held while the database could not be written, then stored) is
#: not acted on: the room it speaks of may look quite different now.
ACT_ON_READINGS_S = 120.0


def _fresh(o: PollOutcome) -> bool:
    return o.values is not None and time.time() - o.values.read_at <= ACT_ON_READINGS_S


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
        self.max_held = MAX_HELD
        self._spilled: list[tuple[Path, int]] = []  # (file, outcomes in it), oldest first
        self._spill_seq = 0
        self._blocked_since: float | None = None
        self._blocked_error = ""
        self._blocked_logged_at = 0.0
        self._db_path: Path | None = None
        self._flush_failed = False  # the last flush could not write
        self._in_flight = 0  # held outcomes being written now (taken out of ``_held``)
        self._offline: set[int] | None = None  # meters with an open meter_offline alarm
        self._down: set[int] | None = None  # buses with an open bus_down alarm
        self._trip_reasons: dict[int, int] = {}  # each meter's last trip reason seen
        self._drawn: dict[int, float] = {}  # each meter's power at its last closed reading
        self._loads = LoadDetector(DetectorSettings())
        self._rules = RuleCache()  # the rooms' power limits and allowed appliances
        # per meter the station tripped for a malicious load: its baseline before the step
        self._before_load: dict[int, tuple[float, float, float]] = {}
        self._seen_open: set[int] = set()  # ... whose relay was since seen open
        self._policy: RestorePolicy | None = None
        self._alarm_checked: dict[tuple[str, int], float] = {}
        self.batches_written = 0
        self.outcomes_written = 0
        self.outcomes_dropped = 0
        self._comm: queue.SimpleQueue[list[comm_history.CommRow]] = queue.SimpleQueue()
        self._comm_held: list[comm_history.CommRow] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def put(self, outcomes: list[PollOutcome], bus: BusOutcome | None = None) -> None:
        self._queue.put((outcomes, bus, None))

    def put_comm(self, rows: list[comm_history.CommRow]) -> None:
        """A bus's health figures of a minute (``core/comm_tally``), stored at the next flush
        in a transaction of their own."""
        self._comm.put(rows)

    def flush_comm(self) -> int:
        """Store the health figures handed in; those the database cannot take now are kept
        for the next flush (up to ``MAX_HELD`` rows: the oldest go first); what it refuses
        is dropped (logged). Returns the rows stored."""
        while True:
            try:
                self._comm_held.extend(self._comm.get_nowait())
            except queue.Empty:
                break
        if not self._comm_held:
            return 0
        rows, self._comm_held = self._comm_held, []
        try:
            comm_history.store(rows)
        except Exception as exc:
            if busy.unwritable(exc):
                self._comm_held = rows[-self.max_held:]
            else:  # a defect or data the database refuses: dropped, it would fail again
                log.exception("%d rows of bus health not stored", len(rows))
            return 0
        return len(rows)

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
            self.flush_comm()
            if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
                self._last_prune = time.monotonic()
                try:
                    readings.prune_samples()
                    comm_history.roll_up()
                    readings.checkpoint_wal(WAL_TRUNCATE_ABOVE)
                except Exception as exc:
                    if not busy.unwritable(exc):
                        log.exception("pruning samples failed")

    def stop(self) -> None:
        """Stop the loop and write what is left."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for _attempt in range(3):
            try:
                while True:
                    written = self.flush()
                    if self._flush_failed:
                        log.error("stopping with %d poll outcomes not stored (%s): their energy "
                                  "is booked from the meters' registers at the next start",
                                  self.unsent(), self._blocked_error)
                        self._discard_spills()
                        return
                    if not written and not self._held and not self._spilled \
                            and self._queue.empty():
                        self.flush_comm()
                        return
            except Exception:
                log.exception("storage writer: could not write everything at stop")

    def _discard_spills(self) -> None:
        for path, _n in self._spilled:
            path.unlink(missing_ok=True)
        self._spilled.clear()

    # -- what is not stored yet ----------------------------------------------------------------
    def unsent(self) -> int:
        """Poll outcomes held because the database could not take them (0: none)."""
        held = len(self._held.outcomes) if self._held is not None else 0
        return held + self._in_flight + sum(n for _path, n in self._spilled)

    def status(self) -> WriterStatus:
        return WriterStatus(self.unsent(), self._blocked_since, self._blocked_error,
                            len(self._spilled))

    def _path(self) -> Path | None:
        if self._db_path is None:
            self._db_path = database_path()
        return self._db_path

    def _blocked(self, exc: Exception, batch: _Batch) -> None:
        """The database cannot take the batch now: hold it (merged, spilled when large)."""
        now = time.time()
        self._held = batch
        if batch.weight() > self.max_held:
            batch.compact()
            if batch.weight() > self.max_held:
                self._spill(batch)
        first = self._blocked_since is None
        if first:
            self._blocked_since = now
        self._blocked_error = f"{type(exc).__name__}: {exc}"
        if first or time.monotonic() - self._blocked_logged_at >= BLOCKED_LOG_EVERY_S:
            self._blocked_logged_at = time.monotonic()
            log.error("the database cannot be written (%s): %d poll outcomes held since %s, "
                      "written as soon as it can", exc, self.unsent(),
                      time.strftime("%H:%M:%S", time.localtime(self._blocked_since)))
        path = self._path()
        if path is not None:
            unsent.write_note(path, since=self._blocked_since or now, unsent=self.unsent(),
                              error=self._blocked_error)

    def _spill(self, batch: _Batch) -> None:
        path = self._path()
        if path is None:
            return
        self._spill_seq += 1
        try:
            self._spilled.append((unsent.spill(path, self._spill_seq, batch.outcomes),
                                  len(batch.outcomes)))
        except OSError as exc:  # the disk is what is full: keep them in memory, merged
            log.warning("could not spill held poll outcomes to disk (%s): kept in memory", exc)
            return
        batch.outcomes = []

    def _unblocked(self) -> None:
        """Writing works again: say how long it did not, and clean up after it."""
        since, error = self._blocked_since, self._blocked_error
        if since is None or self._held or self._spilled:
            return
        self._blocked_since, self._blocked_error = None, ""
        seconds = time.time() - since
        log.warning("poll outcomes are stored again after %.0f s", seconds)
        path = self._path()
        if path is not None:
            unsent.clear_note(path)
        try:
            raise_alarm("readings_unsent", 2,
                        {"since": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)),
                         "seconds": round(seconds), "error": error}, once=False)
            readings.checkpoint_wal(WAL_TRUNCATE_ABOVE)
        except Exception:
            log.exception("could not record the interruption of storage")

    # -- one batch -----------------------------------------------------------------------------
    def _drain(self, batch: _Batch) -> None:
        """Add what has arrived to ``batch``: up to ``max_batch`` outcomes (a transaction of a
        bounded size), or all of it while the database cannot be written (it is held)."""
        limit = self.max_batch if self._blocked_since is None else None
        taken = 0
        while limit is None or taken < limit:
            try:
                items, bus, worker = self._queue.get_nowait()
            except queue.Empty:
                return
            batch.outcomes.extend(items)
            taken += len(items)
            if bus is not None:
                batch.buses[bus.bus_id] = bus
            if worker is not None:
                batch.workers[worker.name] = worker

    def _take(self) -> tuple[_Batch, bool]:
        """The next batch, and whether it comes from a spill file: the oldest spilled one
        first, else what is held plus what has arrived."""
        while self._spilled:
            path, n = self._spilled[0]
            try:
                outcomes = unsent.load(path)
            except Exception as exc:  # gone or spoilt under us: the rest must still be stored
                log.error("%d held poll outcomes in %s cannot be read back (%s): their "
                          "readings are lost", n, path, exc)
                self._spilled.pop(0)
                path.unlink(missing_ok=True)
                continue
            batch = _Batch()
            batch.outcomes = outcomes  # type: ignore[assignment]
            return batch, True
        batch, self._held = self._held or _Batch(), None
        self._drain(batch)
        return batch, False

    def flush(self) -> int:
        """Write the next batch in one transaction. Returns the outcomes written."""
        was_blocked = self._blocked_since is not None
        batch, from_spill = self._take()
        if not batch:
            self._unblocked()
            return 0
        self._in_flight = len(batch.outcomes) if was_blocked and not from_spill else 0
        try:
            written = self._store(batch)
        except Exception as exc:
            self._in_flight = 0
            rest = exc.rest if isinstance(exc, _PartlyStored) else batch
            cause = exc.cause if isinstance(exc, _PartlyStored) else exc
            self._flush_failed = True
            if from_spill:  # the file keeps what is left of it; new arrivals are held
                if rest is not batch:
                    self._respill(rest)
                rest = self._held or _Batch()
                self._drain(rest)
            if not busy.unwritable(cause):
                self._held = rest
                raise cause from None
            self._blocked(cause, rest)
            return 0
        self._flush_failed = False
        if from_spill:
            self._spilled.pop(0)[0].unlink(missing_ok=True)
        self._unblocked()
        self._in_flight = 0  # (after the interruption is recorded: then it is over)
        self.batches_written += 1
        self.outcomes_written += len(written)
        self._alarms(written)
        self._state_alarms(written, list(batch.buses.values()))
        live = LiveBatch([live_from_outcome(o) for o in written],
                         [bus_live(b) for b in batch.buses.values()])
        for listener in list(self._listeners):
            try:
                listener(live)
            except Exception:
                log.exception("live listener failed")
        return len(written)

    def _store(self, batch: _Batch) -> list[PollOutcome]:
        """Store the batch; one outcome at a time when the database refuses its data."""
        try:
            self.store(batch.outcomes, list(batch.buses.values()),
                       list(batch.workers.values()))
            return batch.outcomes
        except DATA_ERRORS:
            log.exception("the database refused a batch of %d poll outcomes: storing them one "
                          "by one", len(batch.outcomes))
        written: list[PollOutcome] = []
        for i, o in enumerate(batch.outcomes):
            try:
                self.store([o], (), ())
            except DATA_ERRORS as exc:
                self.outcomes_dropped += 1
                log.error("poll outcome of meter %s not stored: %s", o.meter_id, exc)
                continue
            except Exception as exc:
                rest = _Batch()
                rest.outcomes = batch.outcomes[i:]
                rest.buses, rest.workers = batch.buses, batch.workers
                raise _PartlyStored(rest, exc) from exc
            written.append(o)
        try:
            self.store([], list(batch.buses.values()), list(batch.workers.values()))
        except DATA_ERRORS:
            log.exception("bus and thread states not stored")
        return written

    def _respill(self, rest: _Batch) -> None:
        """Part of the oldest spill file was stored: the file keeps only the rest (or, when no
        file can be written, memory does, ahead of what is held: never the stored part
        twice)."""
        old = self._spilled[0][0]
        path = self._path()
        assert path is not None
        self._spill_seq += 1
        try:
            self._spilled[0] = (unsent.spill(path, self._spill_seq, rest.outcomes),
                                len(rest.outcomes))
        except OSError as exc:
            log.warning("could not rewrite a spill file (%s): its rest is kept in memory", exc)
            self._spilled.pop(0)
            newer = self._held or _Batch()
            rest.absorb(newer)
            self._held = rest
        old.unlink(missing_ok=True)

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

    def _state_alarms(self, outcomes: list[PollOutcome], buses: list[BusOutcome]) -> None:
        """``meter_offline`` while a meter does not answer (not one per meter when its bus is
        down: the bus's ``bus_down`` says it), ``bus_down`` while a bus's port or gateway
        fails; each cleared when the condition is over. Asked of the database once, then kept
        in memory."""
        try:
            if self._offline is None or self._down is None:
                self._offline = alarm_store.open_subjects("meter_offline")
                self._down = alarm_store.open_subjects("bus_down")
            if outcomes:
                if self._policy is None or self._rules.stale():
                    self._policy = RestorePolicy.from_settings()
                self._rules.fresh()
            for o in outcomes:
                self._automatic(o)
                if not o.online_changed:
                    continue
                if not o.online:
                    why = next((d for k, d in o.events if k == "offline"), o.error)
                    if o.meter_id not in self._offline and "its bus is down" not in why:
                        raise_alarm("meter_offline", 2, {"meter": o.meter_id, "why": why},
                                    meter_id=o.meter_id)
                        self._offline.add(o.meter_id)
                elif o.meter_id in self._offline:
                    clear_alarm("meter_offline", meter_id=o.meter_id)
                    self._offline.discard(o.meter_id)
            for b in buses:
                if b.state == "down" and b.bus_id not in self._down:
                    raise_alarm("bus_down", 3, {"bus": _bus_name(b.bus_id), "error": b.error},
                                bus_id=b.bus_id)
                    self._down.add(b.bus_id)
                elif b.state == "polling" and b.bus_id in self._down:
                    clear_alarm("bus_down", bus_id=b.bus_id)
                    self._down.discard(b.bus_id)
        except Exception as exc:  # an alarm that cannot be written must not lose readings
            self._offline = self._down = None  # asked again next time
            if not busy.unwritable(exc):
                log.exception("could not raise or clear a meter's or bus's alarm")

    def _automatic(self, o: PollOutcome) -> None:
        """The meter's own trips, and the station's on its readings: one meter's failure
        costs no other meter its checks."""
        try:
            self._trip_alarm(o)
            self._load_alarm(o)
            self._limit_trip(o)
        except Exception as exc:
            if not busy.unwritable(exc):
                log.exception("meter %s: could not check its trips and loads", o.meter_id)

    def _trip_alarm(self, o: PollOutcome) -> None:
        """The meter tripped itself (its ``trip_reason``: over its power limit, a malicious
        load, locked out after too many restores): alarmed once per trip, cleared when its
        relay closes again."""
        if not o.ok or o.values is None or o.values.trip_reason is None:
            return
        reason = o.values.trip_reason
        before = self._trip_reasons.get(o.meter_id)
        drawn = self._drawn.get(o.meter_id)  # what it drew before it tripped (now 0 W)
        if o.values.active_power_w is not None and reason == 0:
            self._drawn[o.meter_id] = o.values.active_power_w
        self._trip_reasons[o.meter_id] = reason
        if reason == before:
            return
        kind = SELF_TRIPS.get(reason)
        if kind is not None:
            # once while it is open: a restart that sees the same trip again raises nothing
            raise_alarm(kind, 3, {"meter": o.meter_id, "locked_out": reason == 5,
                                  "power": "-" if drawn is None else f"{drawn:.0f}"},
                        meter_id=o.meter_id)
        elif reason == 0 and before in SELF_TRIPS:
            for kind in set(SELF_TRIPS.values()):
                clear_alarm(kind, meter_id=o.meter_id)

    def _load_alarm(self, o: PollOutcome) -> None:
        """The station's own look at a meter's readings (``core/load_detector``): a resistive
        step above the threshold, not one of the room's allowed appliances, is a
        ``malicious_load``: the room is tripped and restored later (``core/power_limits``),
        also when the meter's own rule is off or lacking; on keep-power only alarmed. While its
        relay is open nothing is judged, and the reading after it closes only starts afresh:
        what was plugged in all along coming back is not an appliance switched on, except
        after the station's own trip for a malicious load: then the room's load before the
        heater is the baseline, so a heater still on when power returns is tripped again."""
        if not o.ok or o.values is None:
            return
        if o.values.relay_closed is False:
            self._loads.forget(o.meter_id)
            if o.meter_id in self._before_load:
                self._seen_open.add(o.meter_id)  # the trip landed: the next closed read is
            return  # power coming back
        if o.meter_id in self._seen_open:
            self._seen_open.discard(o.meter_id)
            p_w, q_var, _t = self._before_load.pop(o.meter_id)
            self._loads.set_baseline(o.meter_id, p_w, q_var, o.values.read_at)
        baseline = self._loads.baseline(o.meter_id)
        found = self._loads.observe(o.meter_id, o.values, self._rules.whitelists.get(o.meter_id))
        if found is None:
            return
        params = {"power": f"{found.step_w:.0f}", "pf": f"{found.step_pf:.2f}"}
        if o.values.control_mode == "keep_power" or not _fresh(o):
            raise_alarm("malicious_load", 3, {**params, "meter": o.meter_id,
                                              "variant": "station"},
                        meter_id=o.meter_id, once=False)
        else:
            if baseline is not None:
                self._before_load[o.meter_id] = baseline
            trip_room_meter(o.meter_id, "malicious_load", params, self._policy, found.t)

    def _limit_trip(self, o: PollOutcome) -> None:
        """The station enforces the room's power limit too: over it (and not on keep-power),
        the room is tripped and restored later (``core/power_limits``)."""
        if not o.ok or o.values is None or o.values.relay_closed is False \
                or o.values.control_mode in ("keep_power", "forced_trip"):
            return
        limit = self._rules.limits.get(o.meter_id)
        if over_limit(o.values.active_power_w, limit) and _fresh(o):
            trip_room_meter(o.meter_id, "power_limit",
                            {"power": f"{abs(o.values.active_power_w):.0f}", "limit": limit},
                            self._policy, o.values.read_at)

    def _alarm_once(self, kind: str, meter_id: int, params: dict[str, object]) -> None:
        key = (kind, meter_id)
        now = time.monotonic()
        if now - self._alarm_checked.get(key, -ALARM_RECHECK_S) < ALARM_RECHECK_S:
            return
        self._alarm_checked[key] = now
        raise_alarm(kind, 2, params, meter_id=meter_id)
