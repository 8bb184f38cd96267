"""A lease in the database: only one process polls a database's buses at a time.

The holder renews the lease well before it expires; a process that dies stops renewing and
another may take over once the lease has expired. Taking and renewing happen inside an
IMMEDIATE transaction, so two processes can never both believe they hold it.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from app.storage.models import Lease, database

POLLING = "polling"
DEFAULT_TTL_S = 30.0


@dataclass(frozen=True)
class LeaseInfo:
    holder: str
    pid: int
    host: str
    acquired_at: float
    expires_at: float

    def describe(self) -> str:
        return f"{self.holder} (pid {self.pid} on {self.host})"


def me(role: str = "voltkeeper") -> tuple[str, int, str]:
    return role, os.getpid(), socket.gethostname()


def _info(row: Lease) -> LeaseInfo:
    return LeaseInfo(row.holder, row.pid, row.host, row.acquired_at, row.expires_at)


def acquire(role: str, ttl_s: float = DEFAULT_TTL_S, name: str = POLLING,
            now: float | None = None) -> tuple[bool, LeaseInfo]:
    """Take or renew the lease. Returns (True, mine) or (False, the current holder's)."""
    holder, pid, host = me(role)
    now = time.time() if now is None else now
    with database.atomic("IMMEDIATE"):
        row = Lease.get_or_none(Lease.name == name)
        if row is not None and row.expires_at > now and not (row.pid == pid and row.host == host):
            return False, _info(row)
        acquired = row.acquired_at if row is not None and row.pid == pid and row.host == host \
            else now
        Lease.insert(name=name, holder=holder, pid=pid, host=host, acquired_at=acquired,
                     expires_at=now + ttl_s).on_conflict_replace().execute()
        return True, LeaseInfo(holder, pid, host, acquired, now + ttl_s)


def release(name: str = POLLING) -> None:
    _, pid, host = me()
    with database.atomic("IMMEDIATE"):
        Lease.delete().where((Lease.name == name) & (Lease.pid == pid) & (Lease.host == host)) \
            .execute()


def holder(name: str = POLLING, now: float | None = None) -> LeaseInfo | None:
    """The live holder of the lease, or None if nobody holds it."""
    now = time.time() if now is None else now
    row = Lease.get_or_none(Lease.name == name)
    if row is None or row.expires_at <= now:
        return None
    return _info(row)
