"""``--demo`` creates its database once and starts the simulator with its flags."""

from __future__ import annotations

from app.simulator.process import SimulatorProcess, ensure_demo_database
from app.storage import campus
from app.storage.db import close_database


def test_demo_database_is_created_once(tmp_path):
    db = tmp_path / "demo.db"
    settings = ensure_demo_database(db)
    assert settings["demo_buses"] == "12" and settings["demo_meters"] == "27"
    nodes = len(campus.nodes())
    assert campus.count_meters() == 324
    again = ensure_demo_database(db)
    assert again == settings and len(campus.nodes()) == nodes
    sim = SimulatorProcess(settings, tmp_path / "master.key")
    assert sim.args[2:] == ["simulate", "--buses", "12", "--meters", "27", "--port", "5020",
                            "--host", "127.0.0.1", "--transport", "tcp", "--profile",
                            "acrel-ddsy1352", "--seed", "1", "--key-file",
                            str(tmp_path / "master.key")]
    close_database()
