"""Integration fixtures: a simulated campus and a station database pointing at it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from app.simulator import start_simulator
from app.simulator.demo_campus import create_demo_campus
from app.storage.db import open_database
from app.storage.models import Bus


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, every: float = 0.05) -> bool:
    """Poll a condition (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def point_buses_at(endpoints: list[str], poll_interval_s: float = 0.2) -> None:
    for k, url in enumerate(endpoints, start=1):
        Bus.update(link=url, poll_interval_s=poll_interval_s).where(
            Bus.name == f"B{k:02d}").execute()


@pytest.fixture
def sim_campus(tmp_path):
    """A 2 x 5 simulated campus on ptys and its station database (demo layout); meter time
    runs 120 times the clock so energy moves within seconds."""
    with start_simulator(buses=2, meters=5, transport="pty", seed=7, speed=120.0,
                         random_heaters=False) as sim:
        db_path = tmp_path / "station.db"
        create_demo_campus(db_path, buses=2, meters=5, seed=7)
        point_buses_at(sim.endpoints)
        yield sim, db_path
        open_database(db_path).close()
