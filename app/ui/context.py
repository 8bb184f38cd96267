"""The explicit context every window part receives: no global app object.

Holds the database path, the window's settings, the campus index, the live store and the one
bridge live data arrives through, and the live source (this window polling, or following the
process that does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.storage.db import open_database
from app.ui.bridge import LiveBridge, load_snapshot
from app.ui.campus_index import CampusIndex
from app.ui.live_source import LEASE_CHECK_S, LiveSource
from app.ui.live_store import LiveStore
from app.ui.settings import UiSettings
from app.ui.workers import qthread_factory


@dataclass
class AppContext:
    db_path: Path
    settings: UiSettings
    index: CampusIndex
    store: LiveStore
    bridge: LiveBridge
    source: LiveSource
    demo: bool = False

    def start(self) -> None:
        """Start the live data: poll here, or follow whoever holds the buses."""
        self.source.start()

    def close(self) -> None:
        """Stop every worker (joins the bus QThreads) and the bridge."""
        self.source.stop()
        self.bridge.flush()
        self.bridge.stop()


def build_context(db_path: Path, settings: UiSettings, *, demo: bool = False,
                  role: str = "window", thread_factory: Callable = qthread_factory,
                  feed_interval_s: float = 1.5,
                  check_interval_s: float = LEASE_CHECK_S) -> AppContext:
    """Open the database and read the campus and the last stored values (not started yet)."""
    open_database(db_path)
    index = CampusIndex.load()
    store = LiveStore()
    snapshot, since = load_snapshot()
    store.apply(snapshot)
    bridge = LiveBridge(store)
    source = LiveSource(bridge, role=role, since=since, thread_factory=thread_factory,
                        feed_interval_s=feed_interval_s, check_interval_s=check_interval_s)
    return AppContext(Path(db_path), settings, index, store, bridge, source, demo)
