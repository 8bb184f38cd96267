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
from app.core.changes import Changes
from app.core.live import stored_snapshot
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
        meter's own money when the room has none yet), stale until a fresh read."""
        account = self.balances.get(node_id)
        balance = account.balance_cents if account is not None else None
        live = self.store.meter(meter_id) if meter_id is not None else None
        return meter_state(live, balance, meter_id is not None
                           and self.store.is_stale(meter_id))

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


#: A reading is stale at start when older than this many poll intervals (and never less than
#: STALE_MIN_S): a cycle that has not come round again.
STALE_CYCLES = 2
STALE_MIN_S = 30.0


def stale_after_s(index: CampusIndex) -> float:
    intervals = [b.poll_interval_s for b in index.buses.values() if b.enabled]
    return max(STALE_MIN_S, STALE_CYCLES * max(intervals, default=0.0))


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
