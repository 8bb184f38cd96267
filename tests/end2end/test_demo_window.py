"""``python main.py --demo`` as a user runs it: the window (offscreen) on the demo campus, the
simulator beside it, polling; Ctrl+C stops both cleanly."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import free_port_base

ROOT = Path(__file__).resolve().parent.parent.parent
BUSES, METERS = 2, 5


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"main.py --demo exited with {proc.returncode} while waiting for {what}")
        if predicate():
            return
        time.sleep(0.2)  # another process: nothing to wait on but the database
    pytest.fail(f"timed out waiting for {what}")


def _query(db: Path, sql: str):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


@pytest.mark.slow
def test_demo_window_polls_the_simulator_and_stops_cleanly(tmp_path, _isolated_home):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VOLTKEEPER_HOME": str(_isolated_home)}
    db = _isolated_home / "demo.db"
    base = free_port_base(BUSES)
    subprocess.run([sys.executable, "main.py", "init-demo", "--db", str(db), "--buses",
                    str(BUSES), "--meters", str(METERS), "--port", str(base)],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen([sys.executable, "main.py", "--demo"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: _query(db, "SELECT holder FROM lease") == [("window",)], 30,
              "the window to take the polling lease", proc)
        _wait(lambda: _query(db, "SELECT COUNT(*) FROM latest_reading WHERE online")
              == [(BUSES * METERS,)], 30, "every meter read", proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    assert _query(db, "SELECT COUNT(*) FROM lease") == [(0,)]  # released on the way out
    with socket.socket() as s:  # the simulator went with the window
        assert s.connect_ex(("127.0.0.1", base + 1)) != 0
    text = (tmp_path / "demo.log").read_text()
    assert "Traceback" not in text, text
