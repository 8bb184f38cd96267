"""The explicit context every window part receives: no global app object.

Holds the database path, the window's settings, who is signed in (``session``), the one runner
every act goes through (``runner``: its ``changed`` signal tells the views what an act
changed), the campus index, the rooms' account balances, the live store and the one bridge
live data arrives through, and the live source (this window polling, or following the process
that does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.core import queries
from app.core import status as core_status
from app.core.changes import Changes
from app.core.live import MeterLive, stored_snapshot
from app.core.operators import Operator
from app.core.queries import RoomBalance
from app.core.station import open_station
from app.ui.bridge import LiveBridge
from app.ui.campus_index import CampusIndex
from app.ui.live_source import LEASE_CHECK_S, LiveSource
from app.ui.live_store import LiveStore, MeterState, meter_state, worst
from app.ui.runner import OperationRunner
from app.ui.session import Session
from app.ui.settings import UiSettings
from app.ui.workers import qthread_factory


class ActingContext(Protocol):
    """What a dialog that acts needs: who acts, and the runner acts go through. The window's
    AppContext is one; a test may pass any object with these two."""

    runner: OperationRunner
    session: Session


@dataclass
class AppContext:
    db_path: Path
    settings: UiSettings
    index: CampusIndex
    store: LiveStore
    bridge: LiveBridge
    source: LiveSource
    session: Session
    runner: OperationRunner
    balances: dict[int, RoomBalance]
    demo: bool = False

    @property
    def operator(self) -> Operator:
        return self.session.operator

    def meter_state(self, node_id: int, meter_id: int | None) -> MeterState:
        """One meter's state in its room: low balance by the room's ledger balance (the
        meter's own money when the room has none yet); stale while its values are not a
        fresh read (``is_stale``); offline once the polling process says so (a bus that stays
        down takes its meters offline)."""
        account = self.balances.get(node_id)
        balance = account.balance_cents if account is not None else None
        live = self.store.meter(meter_id) if meter_id is not None else None
        return meter_state(live, balance, meter_id is not None
                           and self.is_stale(meter_id, live))

    def is_stale(self, meter_id: int, live: MeterLive | None = None,
                 now: float | None = None) -> bool:
        """True when the meter's values are not a fresh read, whatever its stored ``online``
        says: an old reading no fresh one has replaced since the start, a bus that is down or
        whose thread fails (nothing is read on it), or a read older than its bus's cycles
        allow (``core.status.stale_after_s``: nobody polls it any more)."""
        if self.store.is_stale(meter_id):
            return True
        live = live if live is not None else self.store.meter(meter_id)
        if live is None or live.values is None or not live.online:
            return False
        record = self.index.meters.get(meter_id)
        bus = self.index.buses.get(record.bus_id) if record is not None else None
        bus_live = self.store.buses.get(record.bus_id) if record is not None else None
        if bus_live is not None and bus_live.state in ("down", "error", "held"):
            return True
        after = core_status.stale_after_s(bus.poll_interval_s if bus is not None else None,
                                          bus_live.last_cycle_s if bus_live is not None
                                          else None)
        now = time.time() if now is None else now
        return now - live.values.read_at > after

    def room_state(self, node_id: int) -> MeterState:
        """A room's state for its icon: its meters' worst."""
        return worst(self.meter_state(node_id, m) for m in self.index.meters_of.get(node_id, ()))

    def apply_changes(self, changes: Changes) -> None:
        """Bring the shared state up to date after an act: the rooms' balances, the campus."""
        if changes.campus:
            # in place: the views hold this index
            self.index.__dict__.update(
                vars(CampusIndex.load(queries.campus_records(self.operator))))
        if changes.nodes:
            fresh = queries.room_balances(self.operator, sorted(changes.nodes))
            for node_id in changes.nodes:
                if node_id in fresh:
                    self.balances[node_id] = fresh[node_id]
                else:
                    self.balances.pop(node_id, None)

    def start(self) -> None:
        """Start the live data: poll here, or follow whoever holds the buses."""
        self.source.start()

    def close(self) -> None:
        """Stop every worker (joins the bus QThreads and running acts) and the bridge."""
        self.runner.close()
        self.source.stop()
        self.bridge.flush()
        self.bridge.stop()


#: A reading is stale when older than this many poll intervals (and never less than
#: STALE_MIN_S): a cycle that has not come round again (the status command's rule).
STALE_CYCLES = core_status.STALE_CYCLES
STALE_MIN_S = core_status.STALE_MIN_S


def stale_after_s(index: CampusIndex) -> float:
    """At start: how old a stored read may be on the slowest bus before it is stale."""
    intervals = [b.poll_interval_s for b in index.buses.values() if b.enabled]
    return core_status.stale_after_s(max(intervals, default=0.0))


def build_context(db_path: Path, settings: UiSettings, operator: Operator, *,
                  demo: bool = False, role: str = "window",
                  thread_factory: Callable = qthread_factory, feed_interval_s: float = 1.5,
                  check_interval_s: float = LEASE_CHECK_S,
                  runner: OperationRunner | None = None) -> AppContext:
    """Open the database and read the campus and the last stored values (not started yet),
    for ``operator``, who has signed in."""
    open_station(db_path)
    index = CampusIndex.load(queries.campus_records(operator))
    store = LiveStore()
    snapshot, since = stored_snapshot()
    store.apply(snapshot)
    # what was stored more than a cycle ago is shown as stale until a fresh read replaces it
    store.mark_stale(time.time() - stale_after_s(index))
    bridge = LiveBridge(store)
    source = LiveSource(bridge, role=role, since=since, thread_factory=thread_factory,
                        feed_interval_s=feed_interval_s, check_interval_s=check_interval_s)
    session = Session(operator, demo=demo)
    return AppContext(Path(db_path), settings, index, store, bridge, source, session,
                      runner or OperationRunner(), queries.room_balances(operator), demo)
