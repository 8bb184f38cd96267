"""A database that is busy or full never stops polling, and never loses a reading's energy.

Against the simulator over TCP and a real SQLite file: another process-like connection holds
the write lock for 30 s (longer than the 10 s busy timeout) while tokens wait for delivery; a
small tmpfs fills up under the database and frees again. Afterwards every token has reached its
meter exactly once and every Wh the meters counted is booked.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from app.core.recharge import delivery_state, recharge
from app.core.service import ReadingService
from app.core.status import collect
from app.drivers.token import save_master_key
from app.paths import default_key_file
from app.simulator import start_simulator
from app.simulator.demo_campus import create_demo_campus
from app.storage import accounts as store
from app.storage import alarms as alarm_store
from app.storage import capabilities
from app.storage.db import open_database
from app.storage.models import Account, Bus, IntervalEnergy, LatestReading, Meter
from tests.helpers import operator

from .conftest import point_buses_at, wait_for


def _stored_energy() -> dict[int, tuple[int, int]]:
    """Per meter: (the stored register in Wh, the Wh booked in intervals)."""
    booked: dict[int, int] = {}
    for mid, wh in IntervalEnergy.select(IntervalEnergy.meter, IntervalEnergy.energy_wh).tuples():
        booked[mid] = booked.get(mid, 0) + wh
    return {mid: (e, booked.get(mid, 0)) for mid, e in
            LatestReading.select(LatestReading.meter, LatestReading.energy_wh)
            .where(LatestReading.energy_wh.is_null(False)).tuples()}


def _assert_energy_booked_in_full(before: dict[int, tuple[int, int]]) -> None:
    """Every Wh the register advanced since ``before`` is in the intervals, none twice."""
    after = _stored_energy()
    assert set(after) == set(before)
    for mid, (e0, b0) in before.items():
        e1, b1 = after[mid]
        assert e1 > e0, f"meter {mid}: no energy was read after the fault"
        assert b1 - b0 == e1 - e0, f"meter {mid}: used {e1 - e0} Wh, booked {b1 - b0} Wh"


class _Lock:
    """Hold SQLite's write lock from a connection of its own, as another program would."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                    check_same_thread=False)

    def __enter__(self) -> _Lock:
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def _cycles(service: ReadingService) -> dict[int, int]:
    return {bus: p.cycles for bus, p in service.pollers.items()}


def _longest_stall(service: ReadingService, seconds: float) -> float:
    """Watch every bus for ``seconds``: the longest time one went without a new cycle."""
    last = _cycles(service)
    since = {b: time.monotonic() for b in last}
    longest = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.1)
        now = time.monotonic()
        for b, n in _cycles(service).items():
            if n != last[b]:
                last[b], since[b] = n, now
            longest = max(longest, now - since[b])
    return longest


def _account_of(bus_no: int, unit: int) -> tuple[int, int]:
    bus = Bus.get(Bus.name == f"B{bus_no:02d}")
    meter = Meter.get((Meter.address == unit) & (Meter.bus == bus.id))
    return Account.get(Account.node == meter.node_id).id, meter.id


@pytest.fixture
def busy_campus(tmp_path):
    """2 buses x 3 meters over TCP, meter time 120x (energy moves), tokens deliverable."""
    with start_simulator(buses=2, meters=3, transport="tcp", seed=11, speed=120.0,
                         random_heaters=False) as sim:
        save_master_key(default_key_file(), sim.master_key)
        db_path = tmp_path / "station.db"
        create_demo_campus(db_path, buses=2, meters=3, seed=11)
        point_buses_at(sim.endpoints, poll_interval_s=0.3)
        service = ReadingService(role="test", flush_s=0.1, billing_every_s=0.5,
                                 db_path=db_path)
        assert service.start()[0]
        try:
            assert wait_for(lambda: not store.accounts_to_adopt(), timeout=30)
            yield sim, service, db_path
        finally:
            service.stop()
            open_database(db_path).close()


def test_a_database_locked_for_30_s_does_not_stop_polling(busy_campus):
    sim, service, db_path = busy_campus
    acct, mid = _account_of(1, 1)
    poller = next(p for p in service.pollers.values() if p.has_meter(mid))
    slot = next(s for s in poller.slots if s.meter.id == mid)
    # the meter is silent when the money is booked: its token waits in the outbox
    sim.set_faults("1.1:offline")
    assert wait_for(lambda: not slot.online, timeout=20)
    before_money = sim.meter(1, 1).snapshot().remaining_money_cents
    result = recharge(operator("cashier", "alice"), acct, 23_45, "cash")
    energy_before = _stored_energy()

    restarts = {s.name: s.restarts for s in service.health()}
    with _Lock(db_path):
        sim.set_faults("")  # the meter answers again while nobody can write
        start = _cycles(service)
        longest_stall = _longest_stall(service, 30.0)
        during = _cycles(service)
        states = {s.name: (s.state, s.restarts) for s in service.health()}
        held = collect()["storage"]  # what `status` says meanwhile
    assert held["unsent"] > 0 and "locked" in held["error"], held
    # every bus kept polling through the lock, none waited on the database, no loop died
    assert all(during[b] >= start[b] + 20 for b in start), (start, during)
    assert longest_stall < 2.5, f"a bus stopped polling for {longest_stall:.1f} s"
    assert states == {name: ("running", n) for name, n in restarts.items()}, states

    # once the lock is gone, the token arrives exactly once and the energy is booked in full
    assert wait_for(lambda: delivery_state(result) == "applied", timeout=30)
    assert wait_for(lambda: sim.meter(1, 1).snapshot().remaining_money_cents
                    >= before_money + 23_45 - 50, timeout=10)
    assert sim.meter(1, 1).snapshot().purchase_count == \
        store.outbox_item(result.outbox_id).purchase_count
    time.sleep(1.0)
    service.writer.flush()
    _assert_energy_booked_in_full(energy_before)
    assert {w.name: w.state for w in capabilities.worker_states()}["writer"] == "running"
    assert collect()["storage"]["unsent"] == 0


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


class _Disk:
    """Where the station's database lives, and a way to fill that disk and free it again: a
    4 MB tmpfs of its own where the machine lets us mount one (as root), else a write-failure
    hook in storage (the writer's store fails as SQLite fails on a full disk)."""

    def __init__(self, where: Path, mounted: bool) -> None:
        self.where, self.mounted = where, mounted
        self._filler: Path | None = None
        self._writer = None
        self._store = None

    def fill(self, service: ReadingService) -> None:
        if self.mounted:
            self._filler = _fill(self.where)
            return
        self._writer, self._store = service.writer, service.writer.store

        def full(*_args) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        service.writer.store = full

    def free(self) -> None:
        if self._filler is not None:
            self._filler.unlink()
        if self._writer is not None:
            self._writer.store = self._store


@pytest.fixture
def small_disk(tmp_path):
    where = tmp_path / "disk"
    mounted = _mount_tmpfs(where, "4m")
    where.mkdir(parents=True, exist_ok=True)
    try:
        yield _Disk(where, mounted)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Fill the file system to its last byte; returns the filler to delete."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def test_a_full_disk_loses_no_energy_and_says_so(small_disk):
    with start_simulator(buses=1, meters=3, transport="tcp", seed=12, speed=240.0,
                         random_heaters=False) as sim:
        db_path = small_disk.where / "station.db"
        create_demo_campus(db_path, buses=1, meters=3, seed=12, open_accounts=False)
        point_buses_at(sim.endpoints, poll_interval_s=0.2)
        service = ReadingService(role="test", flush_s=0.1, billing_every_s=3600,
                                 db_path=db_path)
        assert service.start()[0]
        try:
            assert wait_for(lambda: len(_stored_energy()) == 3, timeout=20)
            energy_before = _stored_energy()
            small_disk.fill(service)
            time.sleep(8)  # the meters use energy while nothing can be stored
            assert service.writer.unsent() > 0
            status = service.writer.status()
            assert status.unsent > 0 and status.error, status
            small_disk.free()
            # once writing works again the held readings are stored and the alarm is raised
            assert wait_for(lambda: service.writer.unsent() == 0, timeout=20)
            kinds = {a.kind for a in alarm_store.find_alarms(open_only=False)}
            assert "readings_unsent" in kinds
            time.sleep(1.0)
            service.writer.flush()
            _assert_energy_booked_in_full(energy_before)
        finally:
            service.stop()
            open_database(db_path).close()
