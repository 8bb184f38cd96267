"""The centralised reading service: a poller per bus, one storage writer, one lease.

Runs the same in ``serve`` (plain threads) and in the window (QThreads, through
``thread_factory``). Only the process holding the database's polling lease polls; ``start``
says who holds it otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from app.core import backup, billing
from app.core.outbox import OutboxDelivery
from app.core.polling import BusPoller, Command
from app.core.progress import Progress
from app.core.writer import Listener, StorageWriter
from app.drivers.modbus_link import LinkConfig, ModbusLink
from app.drivers.profile import load_profile
from app.drivers.token import MasterKey, load_master_key
from app.errors import Cancelled, ConfigError, UserFacingError
from app.paths import default_key_file
from app.storage import campus, lease, readings
from app.storage.db import close_database
from app.storage.lease import LeaseInfo

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


class ReadingService:
    def __init__(self, *, role: str = "serve", thread_factory: ThreadFactory = plain_thread,
                 link_factory: Callable[[LinkConfig], ModbusLink] = ModbusLink,
                 flush_s: float = 0.25, lease_ttl_s: float = lease.DEFAULT_TTL_S,
                 key_file: Path | None = None, billing_every_s: float = 60.0,
                 db_path: Path | None = None) -> None:
        self.role = role
        self.thread_factory = thread_factory
        self.link_factory = link_factory
        self.lease_ttl_s = lease_ttl_s
        self.writer = StorageWriter(flush_s=flush_s)
        self.pollers: dict[int, BusPoller] = {}
        self._threads: list[Startable] = []
        self._stop = threading.Event()
        self.running = False
        self.lost_lease = False
        self.outbox = OutboxDelivery(_load_key(key_file))
        self.billing_every_s = billing_every_s
        # the daily backup (only when the database's file is known)
        self.db_path = Path(db_path) if db_path is not None else None
        self.backup_check_every_s = 60.0
        self._backup_thread: threading.Thread | None = None
        self._backup_progress = Progress()
        self._backup_retry_at = 0.0

    def add_listener(self, listener: Listener) -> None:
        self.writer.add_listener(listener)

    def _build_pollers(self) -> None:
        baselines = readings.baselines()
        by_bus: dict[int, list] = {}
        for m in campus.meters():
            by_bus.setdefault(m.bus_id, []).append((m, load_profile(m.profile)))
        for bus in campus.buses():
            if not bus.enabled:
                continue
            self.pollers[bus.id] = BusPoller(bus, by_bus.get(bus.id, []), self.writer.put,
                                             baselines=baselines,
                                             link_factory=self.link_factory,
                                             outbox=self.outbox)

    def start(self) -> tuple[bool, LeaseInfo]:
        """Take the polling lease and start every bus. (False, holder) if another has it."""
        ok, info = lease.acquire(self.role, self.lease_ttl_s)
        if not ok:
            return False, info
        self._stop.clear()
        try:
            self._build_pollers()
        except BaseException:
            lease.release()  # do not lock others out for the lease's lifetime
            self.pollers.clear()
            raise
        self.writer.start()
        for poller in self.pollers.values():
            t = self.thread_factory(lambda p=poller: p.run(self._stop), f"bus-{poller.bus.name}")
            t.start()
            self._threads.append(t)
        renew = threading.Thread(target=self._renew, name="lease", daemon=True)
        renew.start()
        self.running = True
        log.info("reading service started: %d buses, %d meters", len(self.pollers),
                 sum(len(p.slots) for p in self.pollers.values()))
        return True, info

    def _renew(self) -> None:
        """Renew the lease; run billing now and then (it books closed intervals only); start
        the daily backup when it is due."""
        try:
            self._maintain()
        finally:
            close_database()  # this thread's connection

    def _maintain(self) -> None:
        last_billing = time.monotonic() - self.billing_every_s + 3.0  # first run after ~3 s
        # the first look at the daily backup ~10 s after the start, then once a minute
        last_backup_check = time.monotonic() - self.backup_check_every_s \
            + min(10.0, self.backup_check_every_s)
        while not self._stop.wait(min(self.lease_ttl_s / 3, self.billing_every_s, 3.0)):
            if time.monotonic() - last_backup_check >= self.backup_check_every_s:
                last_backup_check = time.monotonic()
                self._maybe_backup()
            if time.monotonic() - last_billing >= self.billing_every_s:
                last_billing = time.monotonic()
                try:
                    report = billing.bill(operator="billing")
                    for problem in report.problems:
                        log.warning("billing: %s", problem)
                except Exception:
                    log.exception("billing run failed")
            try:
                ok, info = lease.acquire(self.role, self.lease_ttl_s)
            except Exception:
                log.exception("could not renew the polling lease")
                continue
            if not ok:
                log.error("polling lease taken by %s; stopping", info.describe())
                self.lost_lease = True
                self._stop.set()
                return

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
        self._backup_progress.cancel()
        if self._backup_thread is not None:
            self._backup_thread.join(timeout=10)
            self._backup_thread = None
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
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
