"""A tool's hold on a bus (``BusHold``, schema 9): rows in, records out (``core/bus_access.py``
says what a hold means)."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from app.storage.models import BusHold, database


@dataclass(frozen=True)
class HoldRecord:
    bus_id: int
    holder: str
    purpose: str
    pid: int
    host: str
    taken_at: float
    expires_at: float
    acknowledged_at: float | None

    @property
    def mine(self) -> bool:
        return (self.pid, self.host) == (os.getpid(), socket.gethostname())


def _record(row: BusHold) -> HoldRecord:
    return HoldRecord(row.bus_id, row.holder, row.purpose, row.pid, row.host, row.taken_at,
                      row.expires_at, row.acknowledged_at)


def current(bus_id: int, now: float | None = None) -> HoldRecord | None:
    """The bus's hold in force (not expired), if any."""
    now = time.time() if now is None else now
    row = BusHold.get_or_none((BusHold.bus == bus_id) & (BusHold.expires_at > now))
    return _record(row) if row is not None else None


def all_current(now: float | None = None) -> dict[int, HoldRecord]:
    """Every bus's hold in force, by bus id (one query: the reading service's look)."""
    now = time.time() if now is None else now
    return {row.bus_id: _record(row) for row in BusHold.select().where(BusHold.expires_at > now)}


def take(bus_id: int, holder: str, purpose: str, ttl_s: float,
         now: float | None = None) -> tuple[bool, HoldRecord | None]:
    """Take the bus. (True, mine), or (False, the hold in force of another process)."""
    now = time.time() if now is None else now
    with database.atomic("IMMEDIATE"):
        held = current(bus_id, now)
        if held is not None and not held.mine:
            return False, held
        BusHold.insert(bus=bus_id, holder=holder, purpose=purpose, pid=os.getpid(),
                       host=socket.gethostname(), taken_at=now, expires_at=now + ttl_s,
                       acknowledged_at=None).on_conflict_replace().execute()
    return True, current(bus_id, now)


def renew(bus_id: int, ttl_s: float, now: float | None = None) -> None:
    now = time.time() if now is None else now
    BusHold.update(expires_at=now + ttl_s).where(
        (BusHold.bus == bus_id) & (BusHold.pid == os.getpid())
        & (BusHold.host == socket.gethostname())).execute()


def release(bus_id: int) -> None:
    BusHold.delete().where((BusHold.bus == bus_id) & (BusHold.pid == os.getpid())
                           & (BusHold.host == socket.gethostname())).execute()


def acknowledge(bus_id: int, taken_at: float, now: float | None = None) -> None:
    """The bus's poller closed its link for the hold taken at ``taken_at``."""
    BusHold.update(acknowledged_at=time.time() if now is None else now).where(
        (BusHold.bus == bus_id) & (BusHold.taken_at == taken_at)).execute()
