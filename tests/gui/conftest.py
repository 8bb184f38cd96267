"""GUI fixtures: the seed's campus in a real SQLite file, the window on it, the simulator."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from app.drivers.meter_values import MeterValues
from app.simulator import start_simulator
from app.simulator.demo_campus import create_demo_campus
from app.storage import campus, readings
from app.storage.db import close_database
from app.storage.models import Bus
from app.storage.readings import BusOutcome, PollOutcome
from app.ui.app import configure_application
from app.ui.context import AppContext, build_context
from app.ui.language import apply_language
from app.ui.settings import UiSettings
from app.ui.workers import running_threads
from app.views.main_window import MainWindow
from tests.helpers import operator


@pytest.fixture(autouse=True)
def _gui_app(qapp):
    configure_application(qapp)
    apply_language("en")
    yield
    apply_language("en")


@pytest.fixture
def shoot(artifacts_dir):
    """Save a screenshot of a widget under artifacts/, once its layout has settled."""

    def _shoot(widget, name: str) -> Path:
        QApplication.sendPostedEvents()  # pending layout requests (a label that grew)
        QApplication.processEvents()
        path = artifacts_dir / f"{name}.png"
        assert widget.grab().save(str(path))
        return path

    return _shoot


@pytest.fixture
def ui_settings(tmp_path) -> UiSettings:
    return UiSettings.at(tmp_path / "ui.ini")


@pytest.fixture
def seed_campus(tmp_path) -> Path:
    """The seed's installation: 6 dormitory buildings and shops, 12 buses of 27 meters."""
    db = tmp_path / "campus.db"
    create_demo_campus(db)
    return db


def store_readings(power_of: Callable[[int], float] | None = None, seed: int = 7,
                   age_s: float = 0.0) -> None:
    """One stored poll of every meter (what the reading service would have written), taken
    ``age_s`` ago."""
    rng = random.Random(seed)
    now = time.time() - age_s
    outcomes = []
    for i, m in enumerate(campus.meters()):
        power = power_of(i) if power_of else rng.choice([0.0, 35.0, 120.0, 860.0, 1500.0])
        outcomes.append(PollOutcome(m.id, now, True, sample=True, values=MeterValues(
            read_at=now, voltage_v=218 + rng.random() * 6, current_a=power / 220,
            active_power_w=power, power_factor=0.9 + rng.random() * 0.1, frequency_hz=50.0,
            energy_kwh=Decimal(rng.randrange(10**6)).scaleb(-3),
            remaining_money_cents=rng.randrange(-500, 30_000),
            relay_closed=rng.random() > 0.05,
            control_mode="keep_power" if rng.random() < 0.03 else "auto")))
    readings.write_batch(outcomes, [BusOutcome(b.id, "polling", 0.8, now, "", 27, 27)
                                    for b in campus.buses()])


@pytest.fixture
def open_window(qtbot, ui_settings):
    """Opens MainWindow on a database; closes it and stops its workers afterwards."""
    opened: list[tuple[MainWindow, AppContext]] = []

    def _open(db: Path, *, start: bool = False, settings: UiSettings | None = None,
              check_interval_s: float = 10.0, role: str = "administrator",
              name: str | None = None) -> MainWindow:
        ctx = build_context(db, settings or ui_settings, operator(role, name),
                            feed_interval_s=0.5, check_interval_s=check_interval_s)
        window = MainWindow(ctx)
        qtbot.addWidget(window)
        window.resize(1280, 800)
        window.show()
        qtbot.waitExposed(window)
        if start:
            ctx.start()
        opened.append((window, ctx))
        return window

    yield _open
    for window, ctx in opened:
        window.close()
        ctx.close()
    assert running_threads() == []
    close_database()


@pytest.fixture
def live_campus(tmp_path):
    """A 1-bus, 5-meter demo campus whose bus points at an in-process simulator (60x time)."""
    db = tmp_path / "live.db"
    create_demo_campus(db, buses=1, meters=5)
    with start_simulator(buses=1, meters=5, transport="tcp", port=0, seed=1, speed=60.0) as sim:
        for number, url in enumerate(sim.endpoints, start=1):
            Bus.update(link=url, poll_interval_s=1.0).where(Bus.name == f"B{number:02d}") \
                .execute()
        yield db, sim
