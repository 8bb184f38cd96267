"""Every long-running thread of the reading service survives an exception nobody expected: it is
logged with its traceback, restarted with back-off, and the bus or the service reports it.
Against a plain pymodbus slave and a real SQLite file; the faults are injected, the rest real.
"""

from __future__ import annotations

import logging
import threading

from app.core import billing, commands
from app.core.outbox import OutboxDelivery
from app.core.service import ReadingService, plain_thread
from app.drivers.modbus_link import ModbusLink
from app.storage import accounts as account_store
from app.storage import campus, capabilities, lease, readings
from app.storage.db import open_database
from app.storage.models import CommStats, Lease

from .conftest import wait_for
from .plain_slave import ddsy1352, plain_slave


def _station(tmp_path, url: str, meters: int = 2) -> list[int]:
    open_database(tmp_path / "station.db")
    root = campus.add_node(None, "campus", "campus")
    bus = campus.add_bus("B01", url, poll_interval_s=0.2)
    ids = []
    for unit in range(1, meters + 1):
        room = campus.add_node(root, "room", f"1-10{unit}", f"1-10{unit}")
        ids.append(campus.add_meter(bus, unit, "acrel-ddsy1352", f"3100000010{unit:02d}", room))
    return ids


def _units(n: int = 2) -> dict:
    return {u: ddsy1352(serial=f"3100000010{u:02d}") for u in range(1, n + 1)}


def _worker(name: str):
    return next((w for w in capabilities.worker_states() if w.name == name), None)


class _Once:
    """Raise ``exc`` the first time the armed call is made, then call through."""

    def __init__(self, call, exc: Exception) -> None:
        self.call, self.exc = call, exc
        self.armed = threading.Event()
        self.calls = 0

    def __call__(self, *args, **kwargs):
        if self.armed.is_set():
            self.armed.clear()
            raise self.exc
        self.calls += 1
        return self.call(*args, **kwargs)


def _bus_states(service: ReadingService) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    service.add_listener(lambda batch: seen.extend((b.state, b.error) for b in batch.buses))
    return seen


def test_a_bus_thread_that_fails_is_restarted_and_its_bus_shows_the_error(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="voltkeeper.supervisor")
    armed = threading.Event()

    class FlakyLink(ModbusLink):
        def read_registers(self, *args, **kwargs):
            if armed.is_set():
                armed.clear()
                raise RuntimeError("injected fault in the bus thread")
            return super().read_registers(*args, **kwargs)

    started: list[str] = []

    def factory(target, name):
        started.append(name)
        return plain_thread(target, name)

    with plain_slave(_units()) as slave:
        meters = _station(tmp_path, slave.url)
        service = ReadingService(role="test", flush_s=0.05, link_factory=FlakyLink,
                                 thread_factory=factory)
        seen = _bus_states(service)
        assert service.start()[0]
        try:
            assert sorted(started) == ["billing", "bus-B01", "control", "holds", "lease", "writer"]
            assert wait_for(lambda: all(r.online for r in readings.latest())
                            and len(readings.latest()) == 2)
            armed.set()
            assert wait_for(lambda: ("error", "RuntimeError: injected fault in the bus thread")
                            in seen)
            read_at = readings.latest([meters[0]])[0].values.read_at
            # restarted after its back-off (1 s): it polls again and says so
            assert wait_for(lambda: readings.latest([meters[0]])[0].values.read_at > read_at)
            assert wait_for(lambda: readings.bus_states()[1]["state"] == "polling")
            assert service.supervisors["bus-B01"].state.restarts == 1
            assert wait_for(lambda: _worker("bus-B01") is not None
                            and _worker("bus-B01").restarts == 1)
        finally:
            service.stop()
    index = seen.index(("error", "RuntimeError: injected fault in the bus thread"))
    assert ("polling", "") in seen[index:]
    worker = _worker("bus-B01")
    assert worker.state == "stopped" and "injected fault" in worker.error
    assert any(r.exc_info and "bus-B01" in r.getMessage() for r in caplog.records)


def test_the_writer_is_restarted_and_loses_nothing(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="voltkeeper.supervisor")
    with plain_slave(_units()) as slave:
        _station(tmp_path, slave.url)
        service = ReadingService(role="test", flush_s=0.05)
        store = _Once(readings.write_batch, RuntimeError("injected: the disk went away"))
        service.writer.store = store
        put = service.writer.put
        polls: list[int] = []

        def counting_put(outcomes, bus=None):
            polls.extend(o.meter_id for o in outcomes)
            put(outcomes, bus)

        service.writer.put = counting_put  # the pollers' sink, counted
        assert service.start()[0]
        try:
            assert wait_for(lambda: len(readings.latest()) == 2)
            store.armed.set()
            assert wait_for(lambda: not store.armed.is_set())
            calls = store.calls
            assert wait_for(lambda: store.calls > calls + 3)  # restarted, writing again
            assert service.supervisors["writer"].state.restarts == 1
        finally:
            service.stop()
    worker = _worker("writer")
    assert worker.restarts == 1 and "the disk went away" in worker.error
    # the batch that failed was kept and written after the restart: every poll is stored
    assert sum(s.reads for s in CommStats.select()) == len(polls)
    assert any(r.exc_info and "writer" in r.getMessage() for r in caplog.records)


def test_billing_is_restarted(tmp_path):
    with plain_slave(_units(1)) as slave:
        _station(tmp_path, slave.url, meters=1)
        service = ReadingService(role="test", flush_s=0.05, billing_every_s=0.2)
        run = _Once(billing.bill, RuntimeError("injected fault in billing"))
        run.armed.set()
        service.run_billing = run
        assert service.start()[0]
        try:
            assert wait_for(lambda: run.calls >= 2)  # failed once, restarted, billing again
            assert service.supervisors["billing"].state.restarts == 1
            assert wait_for(lambda: _worker("billing") is not None
                            and "injected fault in billing" in _worker("billing").error)
        finally:
            service.stop()


def test_an_outbox_failure_is_reported_by_its_bus_and_the_item_delivered_later(tmp_path):
    class FlakyOutbox(OutboxDelivery):
        failed = False

        def deliver(self, *args, **kwargs):
            if not self.failed:
                self.failed = True
                raise RuntimeError("injected fault in the outbox")
            return super().deliver(*args, **kwargs)

    units = _units(1)
    with plain_slave(units) as slave:
        meter = _station(tmp_path, slave.url, meters=1)[0]
        item = commands.queue(meter, "trip")
        service = ReadingService(role="test", flush_s=0.05)
        service.outbox = FlakyOutbox(None)
        seen = _bus_states(service)
        assert service.start()[0]
        try:
            assert wait_for(lambda: account_store.outbox_item(item).state == "applied")
            assert wait_for(lambda: readings.latest([meter])[0].values.control_mode
                            == "forced_trip")
        finally:
            service.stop()
    errors = [e for s, e in seen if s == "polling" and e]
    assert errors and "RuntimeError: injected fault in the outbox" in errors[0]
    assert errors[0].startswith(f"outbox item {item} (meter {meter})")
    assert seen[-1] == ("polling", "")
    assert service.supervisors["bus-B01"].state.restarts == 0  # caught per item
    assert units[1].holding[0x57] == 1 and units[1].holding[0x58] == 1


def test_the_lease_loop_is_restarted_and_dead_buses_let_the_lease_go(tmp_path):
    dying = threading.Event()

    class DeadLink(ModbusLink):
        def read_registers(self, *args, **kwargs):
            if dying.is_set():
                raise RuntimeError("injected: this bus always fails")
            return super().read_registers(*args, **kwargs)

    with plain_slave(_units(1)) as slave:
        meter = _station(tmp_path, slave.url, meters=1)[0]
        service = ReadingService(role="test", flush_s=0.05, link_factory=DeadLink,
                                 lease_ttl_s=1.5, restart_backoff_s=0.05)
        service.backup_check_every_s = 0.1
        service.db_path = tmp_path / "station.db"
        service._maybe_backup = _Once(lambda: None, RuntimeError("injected fault in the lease"))
        service._maybe_backup.armed.set()
        assert service.start()[0]
        try:
            assert wait_for(lambda: service.supervisors["lease"].state.restarts >= 1)
            assert wait_for(lambda: readings.latest() and readings.latest()[0].online)
            dying.set()
            # every bus keeps failing: its meters are not known to answer, and the lease is not
            # renewed and runs out
            assert wait_for(service.buses_dead)
            assert wait_for(lambda: not readings.latest([meter])[0].online)
            assert wait_for(lambda: lease.holder() is None, timeout=10)
            assert service.running and not service.lost_lease
            # another station takes it: this one stops polling
            Lease.insert(name=lease.POLLING, holder="standby", pid=999999, host="elsewhere",
                         acquired_at=0, expires_at=9e9).on_conflict_replace().execute()
            assert wait_for(lambda: service.lost_lease)
        finally:
            service.stop()
    assert readings.bus_states()[1]["state"] == "error"


def test_a_bus_with_a_link_nobody_understands_does_not_stop_the_others(tmp_path):
    units = _units(1)
    with plain_slave(units) as slave:
        meter = _station(tmp_path, slave.url, meters=1)[0]
        campus.add_bus("B02", "bogus://nowhere", poll_interval_s=0.2)
        service = ReadingService(role="test", flush_s=0.05)
        assert service.start()[0]
        try:
            assert wait_for(lambda: readings.latest([meter])
                            and readings.latest([meter])[0].online)
            assert wait_for(lambda: readings.bus_states().get(2, {}).get("state") == "error")
            assert "bad link address" in readings.bus_states()[2]["error"]
        finally:
            service.stop()
