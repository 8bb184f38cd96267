"""Where VoltKeeper keeps its files: ``$VOLTKEEPER_HOME`` or ``~/.local/share/voltkeeper``."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"


def data_dir() -> Path:
    home = os.environ.get("VOLTKEEPER_HOME")
    if home:
        base = Path(home)
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "voltkeeper"
    base.mkdir(parents=True, exist_ok=True)
    return base


def default_key_file() -> Path:
    """The master key for recharge tokens (mode 0600, never in the repository)."""
    return data_dir() / "master.key"


def demo_db() -> Path:
    return data_dir() / "demo.db"


def demo_state_file() -> Path:
    """The demo simulator's memory of its meters (``simulate --state``)."""
    return data_dir() / "demo-sim.json"


def demo_pid_file() -> Path:
    """The demo simulator that runs, and the demo windows that use it (JSON)."""
    return data_dir() / "demo-sim.pid"


def log_dir() -> Path:
    d = data_dir() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d
