"""The centralised reading service: a poller per bus, one storage writer, one lease.

Runs the same in ``serve`` (plain threads) and in the window (QThreads, through
``thread_factory``). Only the process holding the database's polling lease polls; ``start``
says who holds it otherwise.

Every long-running loop (each bus's poller, the writer, billing, the lease) runs under a
``Supervisor``: an unexpected exception is logged with its traceback, the loop is restarted with
back-off, and its state (``running``, ``error``, restarts) is stored (``WorkerState``; a bus's
poller also shows its bus as ``error``). The lease is renewed only while every bus really polls:
a service with a bus that keeps failing lets it run out, so a standby station may take over.

A database that is busy (another process holds the write lock longer than the busy timeout)
or full is not a failure of any loop: the writer keeps what it could not store, a bus's
deliveries wait for the next cycle, billing and the lease try again at their next turn
(``storage/busy.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from app.core import automatic, backup, billing, settings, sms_outbox
from app.core.alarms import raise_alarm
from app.core.frame_feed import FrameFeed
from app.core.outbox import OutboxDelivery
from app.core.polling import BusPoller, Command, MeterSlot
from app.core.progress import Progress
from app.core.report_files import ScheduledReports
from app.core.supervisor import BACKOFF_START_S, Supervisor, SupervisorState
from app.core.writer import Listener, StorageWriter
from app.drivers.capability import MeterCapability
from app.drivers.modbus_link import LinkConfig, ModbusLink
from app.drivers.profile import ProfileError, load_profile
from app.drivers.token import MasterKey, load_master_key
from app.errors import Cancelled, ConfigError, UserFacingError
from app.paths import default_key_file
from app.storage import busy, campus, capabilities, lease, readings, unsent
from app.storage.campus import BusRecord, MeterRecord
from app.storage.capabilities import WorkerRow
from app.storage.db import close_database
from app.storage.lease import LeaseInfo
from app.storage.readings import BusOutcome, PollOutcome

log = logging.getLogger("voltkeeper.service")


def _load_key(path: Path | None) -> MasterKey | None:
    path = path or default_key_file()
    if not path.exists():
        log.warning("no master key at %s: recharges will wait until there is one", path)
        return None
    try:
        return load_master_key(path)
    except ConfigError as exc:
        log.error("%s", exc)
        return None


#: How long a polling lease lasts unless renewed (a window checks a third as often).
LEASE_TTL_S = lease.DEFAULT_TTL_S


def polling_holder() -> LeaseInfo | None:
    """Who polls this database's buses now (None: nobody)."""
    return lease.holder()


class Startable(Protocol):
    def start(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


ThreadFactory = Callable[[Callable[[], None], str], Startable]


def plain_thread(target: Callable[[], None], name: str) -> Startable:
    return threading.Thread(target=target, name=name, daemon=True)


def _capability(meter: MeterRecord, row: capabilities.CapabilityRow | None) -> MeterCapability:
    """What is known of a meter: learned before, unless another meter (serial) is there now."""
    if row is None or (row.serial and meter.serial and row.serial != meter.serial):
        return MeterCapability()
    return MeterCapability(set(row.missing), row.read_mode, row.checked_at or 0.0, row.serial)


def _bus_configs(buses: list[BusRecord], meters: list[MeterRecord]) -> dict[int, tuple]:
    """What each enabled bus's poller is built from: the bus and its meters as stored."""
    on: dict[int, list[MeterRecord]] = {}
    for m in meters:
        on.setdefault(m.bus_id, []).append(m)
    return {b.id: (b, tuple(on.get(b.id, ()))) for b in buses if b.enabled}


#: How often the reading service looks for tools' holds on its buses.
HOLDS_EVERY_S = 0.3


class ReadingService:
    def __init__(self, *, role: str = "serve", thread_factory: ThreadFactory = plain_thread,
                 link_factory: Callable[[LinkConfig], ModbusLink] = ModbusLink,
                 flush_s: float = 0.25, lease_ttl_s: float = lease.DEFAULT_TTL_S,
                 key_file: Path | None = None, billing_every_s: float = 60.0,
                 db_path: Path | None = None,
                 restart_backoff_s: float = BACKOFF_START_S) -> None:
        self.role = role
        self.thread_factory = thread_factory
        self.link_factory = link_factory
        self.lease_ttl_s = lease_ttl_s
        self.writer = StorageWriter(flush_s=flush_s)
        self.pollers: dict[int, BusPoller] = {}
        self.supervisors: dict[str, Supervisor] = {}
        self.restart_backoff_s = restart_backoff_s
        self._threads: list[Startable] = []
        self._writer_thread: Startable | None = None
        self._renewal_held = False  # not renewing: every bus keeps failing
        self._stop = threading.Event()
        self.running = False
        self.lost_lease = False
        self.outbox = OutboxDelivery(_load_key(key_file))
        self.billing_every_s = billing_every_s
        self.run_billing: Callable[..., billing.BillingReport] = billing.bill
        # the daily backup (only when the database's file is known)
        self.db_path = Path(db_path) if db_path is not None else None
        self.backup_check_every_s = 60.0
        self._backup_thread: threading.Thread | None = None
        self._backup_progress = Progress()
        self._backup_retry_at = 0.0
        self._reports = ScheduledReports()  # the past month's report, on the 1st
        self.sms_every_s = 5.0
        self.control_every_s = automatic.EVERY_S
        # following the campus's buses and meters as they are edited (core/campus_edit)
        self.follow_every_s = 60.0  # looked at even when no edit said so
        self._bus_stops: dict[int, threading.Event] = {}
        self._bus_threads: dict[int, Startable] = {}
        self._bus_configs: dict[int, tuple] = {}  # what each bus's poller was built from
        self._leaving: dict[int, tuple[BusPoller, Startable, Supervisor | None]] = {}
        self._config_version = -1
        self.comm_flush_s = 60.0  # the buses' health figures (core/comm_tally); less in tests
        self.frame_feed = FrameFeed()  # the buses' frames, for the frame monitor

    def add_listener(self, listener: Listener) -> None:
        self.writer.add_listener(listener)

    def _build_pollers(self, only: set[int] | None = None,
                       carried: dict[int, MeterSlot] | None = None) -> list[BusPoller]:
        """A poller for every enabled bus, with its meters. A meter whose profile is refused (a
        broken or missing file) is left out, its bus and every other meter polled all the same:
        a log line and a ``bad_profile`` alarm name the file, the key and the problem, and the
        meter shows offline (its last reading is not taken for a live one). A bus whose link
        cannot be understood is left out the same way (its state ``error`` says why).
        ``only``: the buses to build (the others keep theirs); ``carried``: the meters' slots
        of the pollers they replace (their energy accounting goes on). Returns those built."""
        baselines = readings.baselines()
        known = capabilities.load()
        buses = campus.buses()
        bus_names = {b.id: b.name for b in buses}
        by_bus: dict[int, list] = {}
        caps: dict[int, MeterCapability] = {}
        left_out: list[PollOutcome] = []
        every_meter = campus.meters()
        self._bus_configs.update({bus_id: config for bus_id, config in
                                  _bus_configs(buses, every_meter).items()
                                  if only is None or bus_id in only})
        for m in every_meter:
            if only is not None and m.bus_id not in only:
                continue
            try:
                profile = load_profile(m.profile)
            except Exception as exc:  # one bad profile must not stop the other meters
                if isinstance(exc, ProfileError):
                    file, key, problem = exc.path, exc.key, exc.problem
                else:  # a defect in reading it: its traceback is logged
                    log.exception("meter %s: profile %r could not be read", m.id, m.profile)
                    file, key, problem = m.profile, "(profile)", f"{type(exc).__name__}: {exc}"
                if not m.enabled:
                    continue
                where = campus.bus_address(m, bus_names)
                log.error("meter %s (%s) is not polled: its profile is refused: %s: %s: %s",
                          m.id, where, file, key, problem)
                why = f"not polled: its profile is refused: {file}: {key}: {problem}"
                left_out.append(PollOutcome(
                    meter_id=m.id, t=time.time(), ok=False, error_kind="error", error=why,
                    online=False, online_changed=True, events=[("offline", why)]))
                try:
                    raise_alarm("bad_profile", 2, {
                        "meter": m.id, "bus": bus_names.get(m.bus_id, m.bus_id),
                        "address": m.address, "file": file, "key": key, "problem": problem},
                        meter_id=m.id)
                except Exception:
                    log.exception("meter %s: could not raise the bad_profile alarm", m.id)
                continue
            by_bus.setdefault(m.bus_id, []).append((m, profile))
            caps[m.id] = _capability(m, known.get(m.id))
        if left_out:  # stored by the writer once it runs
            self.writer.put(left_out, None)
        built = []
        for bus in buses:
            if not bus.enabled or (only is not None and bus.id not in only):
                continue
            try:
                poller = BusPoller(bus, by_bus.get(bus.id, []), self.writer.put,
                                   baselines=baselines, link_factory=self.link_factory,
                                   outbox=self.outbox, capabilities=caps)
                for slot in poller.slots:  # energy counted since the last store goes on
                    old = (carried or {}).get(slot.meter.id)
                    if old is not None:
                        slot.account = old.account
                self.pollers = {**self.pollers, bus.id: poller}  # a new dict: others iterate
                built.append(poller)
            except ConfigError as exc:  # one bad link must not stop the other buses
                log.error("bus %s is not polled: %s", bus.name, exc)
                self.writer.put([], BusOutcome(bus.id, "error", error=f"not polled: {exc}",
                                               meters_total=len(by_bus.get(bus.id, []))))
        return built

    def _start_bus(self, poller: BusPoller) -> None:
        """Poll one bus in its own supervised thread, until the service or the bus stops."""
        stop = self._bus_stops[poller.bus.id] = threading.Event()
        self.frame_feed.attach([poller])
        if self._stop.is_set():
            stop.set()
        thread = self._bus_threads[poller.bus.id] = self._spawn(
            f"bus-{poller.bus.name}", lambda p=poller: p.run(stop), stop,
            on_state=poller.report_state)
        self._threads.append(thread)

    def _follow_campus(self, look: bool = False) -> None:
        """Buses and meters were edited (``campus.config_version`` moved, or ``look``): stop
        the pollers of the buses that changed and, once they have stopped, start them again as
        they are now (a new bus starts, a removed or disabled one stays stopped). The other
        buses keep polling undisturbed."""
        version = campus.config_version()
        if version == self._config_version and not self._leaving and not look:
            return
        wanted = _bus_configs(campus.buses(), campus.meters())
        changed = {bus_id for bus_id in self._bus_configs.keys() | wanted.keys()
                   if self._bus_configs.get(bus_id) != wanted.get(bus_id)}
        for bus_id in changed:
            self._bus_configs.pop(bus_id, None)
            poller = self.pollers.get(bus_id)
            if poller is None:
                continue
            self.pollers = {k: p for k, p in self.pollers.items() if k != bus_id}
            self._bus_stops.pop(bus_id).set()
            name = f"bus-{poller.bus.name}"
            self._leaving[bus_id] = (poller, self._bus_threads.pop(bus_id),
                                     self.supervisors.get(name))
            log.info("bus %s changed: its poller stops", poller.bus.name)
        if any(s is not None and s.state.state != "stopped" for _p, _t, s in
               self._leaving.values()):
            return  # a cycle still runs: started again at the next look
        carried = {slot.meter.id: slot for poller, _t, _s in self._leaving.values()
                   for slot in poller.slots}
        for bus_id, (poller, thread, supervisor) in self._leaving.items():
            thread.join(timeout=5)  # its loop is over: the thread ends now (a QThread must)
            if thread in self._threads:
                self._threads.remove(thread)
            name = f"bus-{poller.bus.name}"
            if self.supervisors.get(name) is supervisor:
                del self.supervisors[name]
            if bus_id not in wanted and campus.bus(bus_id) is not None:  # switched off
                self.writer.put([], BusOutcome(bus_id, "idle", error="not polled: disabled"))
        self._leaving.clear()
        for poller in self._build_pollers(only=changed & wanted.keys(), carried=carried):
            poller.track_health(self.writer.put_comm, self.comm_flush_s)
            self._start_bus(poller)
            log.info("bus %s: polling %d meters as configured now", poller.bus.name,
                     len(poller.slots))
        self._config_version = version

    # -- supervised loops ------------------------------------------------------------------------
    def _spawn(self, name: str, loop: Callable[[], None], stop: threading.Event,
               on_state: Callable[[SupervisorState], None] | None = None) -> Startable:
        def report(state: SupervisorState) -> None:
            self.writer.put_worker(WorkerRow(state.name, state.state, state.error,
                                             state.restarts, state.last_error_at,
                                             state.changed_at))
            if on_state is not None:
                on_state(state)

        supervisor = Supervisor(name, loop, stop, on_state=report,
                                backoff_start_s=self.restart_backoff_s)
        self.supervisors[name] = supervisor
        thread = self.thread_factory(supervisor.run, name)
        thread.start()
        return thread

    def health(self) -> list[SupervisorState]:
        """Each supervised loop's state now (running, error with its reason, restarts)."""
        return [s.state for s in list(self.supervisors.values())]  # edited meanwhile

    def buses_dead(self) -> list[str]:
        """The buses of this service whose thread keeps failing (none: every bus polls)."""
        return [name.removeprefix("bus-") for name, s in self.supervisors.items()
                if name.startswith("bus-") and s.dead()]

    def start(self) -> tuple[bool, LeaseInfo]:
        """Take the polling lease and start every bus. (False, holder) if another has it."""
        ok, info = lease.acquire(self.role, self.lease_ttl_s)
        if not ok:
            return False, info
        self._stop.clear()
        self._renewal_held = False
        if self.db_path is not None:
            unsent.discard_left(self.db_path)
        try:
            self._config_version = campus.config_version()
            self._build_pollers()
            for poller in self.pollers.values():
                poller.track_health(self.writer.put_comm, self.comm_flush_s)
        except BaseException:
            lease.release()  # do not lock others out for the lease's lifetime
            self.pollers.clear()
            raise
        self.writer.stopping.clear()
        self._writer_thread = self._spawn("writer", self.writer.run, self.writer.stopping)
        self.frame_feed.start()
        for poller in self.pollers.values():
            self._start_bus(poller)
        self._threads.append(self._spawn("lease", self._renew, self._stop))
        self._threads.append(self._spawn("holds", self._watch_holds, self._stop))
        self._threads.append(self._spawn("billing", self._billing, self._stop))
        self._threads.append(self._spawn(  # restores, schedules, holds (core/automatic)
            "control", lambda: automatic.run(self._stop, self.control_every_s), self._stop))
        if settings.get(settings.SMS_SENDER) != "none":  # texts to residents (the SMS outbox)
            self._threads.append(self._spawn(
                "sms", lambda: sms_outbox.run(self._stop, self.sms_every_s), self._stop))
        self.running = True
        log.info("reading service started: %d buses, %d meters", len(self.pollers),
                 sum(len(p.slots) for p in self.pollers.values()))
        return True, info

    def _watch_holds(self) -> None:
        """Tell each poller whether a tool (a scan, the meter setup) has taken its bus, and
        tell the tool once the poller gave it up (``core/bus_access``). The pollers never wait
        on the database for it: while the database cannot be read, the holds known last stand
        until they expire."""
        from app.storage import bus_holds

        known: dict[int, bus_holds.HoldRecord] = {}
        acknowledged: set[tuple[int, float]] = set()
        try:
            while not self._stop.wait(HOLDS_EVERY_S):
                try:
                    with busy.short_wait():
                        known = bus_holds.all_current()
                except Exception as exc:
                    if not busy.unwritable(exc):
                        raise
                    now = time.time()
                    known = {b: h for b, h in known.items() if h.expires_at > now}
                for bus_id, poller in list(self.pollers.items()):
                    poller.hold = known.get(bus_id)
                    gave = poller.gave_up_for
                    if gave is None or (bus_id, gave) in acknowledged:
                        continue
                    try:
                        with busy.short_wait():
                            bus_holds.acknowledge(bus_id, gave)
                        acknowledged.add((bus_id, gave))
                    except Exception as exc:  # the tool waits; acknowledged at the next turn
                        if not busy.unwritable(exc):
                            raise
        finally:
            close_database()

    def _renew(self) -> None:
        """Renew the lease (unless every bus keeps failing); start the daily backup when it is
        due."""
        try:
            self._maintain()
        finally:
            close_database()  # this thread's connection

    def _maintain(self) -> None:
        # the first look at the daily backup ~10 s after the start, then once a minute
        last_backup_check = time.monotonic() - self.backup_check_every_s \
            + min(10.0, self.backup_check_every_s)
        last_look = time.monotonic()
        while not self._stop.wait(min(self.lease_ttl_s / 3, 3.0)):
            look = time.monotonic() - last_look >= self.follow_every_s
            try:  # buses and meters edited meanwhile
                self._follow_campus(look)
                if look:
                    last_look = time.monotonic()
            except Exception as exc:
                if not busy.unwritable(exc):
                    log.exception("could not follow the edited buses and meters")
            if time.monotonic() - last_backup_check >= self.backup_check_every_s:
                last_backup_check = time.monotonic()
                self._maybe_backup()
                self._reports.check(self.db_path)
            dead = self.buses_dead()
            if dead:
                if self._hold_renewal(dead):
                    return
                continue
            if self._renewal_held:
                log.warning("every bus polls again: renewing the polling lease")
                self._renewal_held = False
            try:
                ok, info = lease.acquire(self.role, self.lease_ttl_s)
            except Exception as exc:
                if busy.unwritable(exc):  # another process writes; renewed at the next turn
                    log.warning("could not renew the polling lease now: %s", exc)
                else:
                    log.exception("could not renew the polling lease")
                continue
            if not ok:
                log.error("polling lease taken by %s; stopping", info.describe())
                self._lose_lease()
                return

    def _hold_renewal(self, dead: list[str]) -> bool:
        """A bus keeps failing: this service does not really poll the campus, so the lease
        runs out and a standby station may poll. True (stop) once another process holds it."""
        if not self._renewal_held:
            log.error("bus %s keeps failing: the polling lease is not renewed, so another "
                      "station may take over", ", ".join(dead))
            self._renewal_held = True
        try:
            info = lease.holder()
        except Exception:
            log.exception("could not read the polling lease")
            return False
        _role, pid, host = lease.me()
        if info is not None and (info.pid, info.host) != (pid, host):
            log.error("polling lease taken by %s; stopping", info.describe())
            self._lose_lease()
            return True
        return False

    def _lose_lease(self) -> None:
        self.lost_lease = True
        self._stop.set()
        for bus_stop in list(self._bus_stops.values()):  # each bus stops at once, as before
            bus_stop.set()

    def _billing(self) -> None:
        """Billing about once a minute (it books closed intervals only), the first run ~3 s
        after the start. A failure is the supervisor's: logged, reported, run again."""
        try:
            wait = min(3.0, self.billing_every_s)
            while not self._stop.wait(wait):
                wait = self.billing_every_s
                try:
                    report = self.run_billing(operator="billing")
                except Exception as exc:
                    if not busy.unwritable(exc):
                        raise
                    # another process holds the database: what is not billed now is next time
                    log.warning("billing waits: the database cannot be written now (%s)", exc)
                    continue
                for problem in report.problems:
                    log.warning("billing: %s", problem)
        finally:
            close_database()  # this thread's connection

    def _maybe_backup(self) -> None:
        """Start the daily backup in its own thread when it is due (a copy of a large database
        takes minutes: lease renewal must not wait for it)."""
        if self.db_path is None or time.monotonic() < self._backup_retry_at or (
                self._backup_thread is not None and self._backup_thread.is_alive()):
            return
        try:
            if not backup.daily_backup_needed(self.db_path):
                return
        except Exception:
            log.exception("could not check whether the daily backup is due")
            return
        if self._stop.is_set():
            return
        self._backup_progress = Progress()
        self._backup_thread = threading.Thread(target=self._run_backup, name="daily-backup",
                                               daemon=True)
        self._backup_thread.start()

    def _run_backup(self) -> None:
        assert self.db_path is not None
        try:
            backup.daily_backup(self.db_path, self._backup_progress)
        except Cancelled:
            log.info("daily backup cancelled: the reading service stops")
        except Exception:  # logged and alarmed by daily_backup
            self._backup_retry_at = time.monotonic() + backup.RETRY_AFTER.total_seconds()
        finally:
            close_database()  # this thread's connection

    def stop(self) -> None:
        self._stop.set()
        for bus_stop in list(self._bus_stops.values()):
            bus_stop.set()
        self._backup_progress.cancel()
        self._reports.stop()
        if self._backup_thread is not None:
            self._backup_thread.join(timeout=10)
            self._backup_thread = None
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self.frame_feed.stop()
        self.writer.stopping.set()
        if self._writer_thread is not None:
            self._writer_thread.join(timeout=10)
            self._writer_thread = None
        self.writer.stop()
        if self.running and not self.lost_lease:
            try:
                lease.release()
            except Exception:
                log.exception("could not release the polling lease")
        self.running = False

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stopped (or ``timeout``); True if stopped."""
        return self._stop.wait(timeout)

    def submit(self, meter_id: int, action: str, value: object = None) -> Command:
        """Queue a control on the meter's bus; it runs ahead of polling."""
        for poller in self.pollers.values():
            if poller.has_meter(meter_id):
                return poller.submit(Command(meter_id, action, value))
        raise UserFacingError(f"meter {meter_id} is not polled by this process")
