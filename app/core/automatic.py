"""The station's automatic control turn, run every few seconds by the process that polls:
restores whose time has come, schedules' windows begun and ended, held meters tripped where
their relay is not open (``core/relay_holds``, ``core/schedules``). Billing does the arrears
holds after each run; the writer trips on a power-limit breach or a malicious load as it stores
the readings (``core/power_limits``)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from app.core import relay_holds, schedules
from app.errors import ConfigError
from app.storage import busy
from app.storage.db import close_database

log = logging.getLogger("voltkeeper.control")

EVERY_S = 2.0
#: ``sync`` is the safety net (a hold trips its meter as it is made): every 15 s is enough,
#: and it reads every held meter's state (all of a campus at lights-out).
SYNC_EVERY_S = 15.0


@dataclass
class TurnReport:
    restored: int = 0
    schedules_changed: int = 0
    trips: int = 0


def turn(now: float | None = None, *, sync: bool = True) -> TurnReport:
    now = time.time() if now is None else now
    report = TurnReport()
    report.restored = len(relay_holds.restore_due(now))
    report.schedules_changed = schedules.apply(now)
    if sync:
        report.trips = relay_holds.sync(now)
    return report


def run(stop: threading.Event, every_s: float = EVERY_S) -> None:
    """``turn`` until ``stop``; a database another process holds only delays a turn."""
    synced = 0.0
    told = ""
    try:
        while not stop.wait(every_s):
            try:
                due = time.monotonic() - synced >= SYNC_EVERY_S
                turn(sync=due)
                if due:
                    synced = time.monotonic()
            except ConfigError as exc:  # the command key: its keeper's matter, said once
                if str(exc) != told:
                    log.error("automatic control waits: %s", exc)
                    told = str(exc)
            except Exception as exc:
                if not busy.unwritable(exc):
                    raise
                log.warning("automatic control waits: the database cannot be written now "
                            "(%s)", exc)
    finally:
        close_database()  # this thread's connection
