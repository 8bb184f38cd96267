"""``python main.py --demo`` as a user runs it: the window (offscreen) on the demo campus, the
simulator beside it, polling; Ctrl+C stops both cleanly, the meters' memory kept. A second demo
window joins the simulator that runs instead of fighting over its ports; the last one to close
stops it. ``--port`` re-points the demo's buses."""

from __future__ import annotations

import json
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
    # its meters' memory is kept for the next start; no record of a running simulator is left
    saved = json.loads((_isolated_home / "demo-sim.json").read_text())
    assert saved["campus"]["buses"] == BUSES and len(saved["meters"]) == BUSES * METERS
    assert not (_isolated_home / "demo-sim.pid").exists()


def _answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_a_second_window_joins_the_demo_and_the_last_one_stops_it(tmp_path, _isolated_home):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VOLTKEEPER_HOME": str(_isolated_home),
           "LANGUAGE": "en"}
    db = _isolated_home / "demo.db"
    pid_file = _isolated_home / "demo-sim.pid"
    old = free_port_base(BUSES)
    subprocess.run([sys.executable, "main.py", "init-demo", "--db", str(db), "--buses",
                    str(BUSES), "--meters", str(METERS), "--port", str(old)],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    base = old
    while base == old:
        base = free_port_base(BUSES)
    logs = [(tmp_path / f"window{n}.log").open("w") for n in (1, 2)]
    first = subprocess.Popen([sys.executable, "main.py", "--demo", "--port", str(base)],
                             cwd=ROOT, env=env, stdout=logs[0], stderr=subprocess.STDOUT)
    second = None
    try:
        _wait(lambda: _query(db, "SELECT holder, pid FROM lease") == [("window", first.pid)],
              30, "the first window to take the polling lease", first)
        _wait(lambda: _query(db, "SELECT COUNT(*) FROM latest_reading WHERE online")
              == [(BUSES * METERS,)], 30, "every meter read on the new ports", first)
        # --port re-pointed the existing demo's buses (and the demo remembers it)
        assert sorted(link for (link,) in _query(db, "SELECT link FROM bus")) == [
            f"tcp://127.0.0.1:{base + k}" for k in range(1, BUSES + 1)]
        assert _query(db, "SELECT value FROM meta WHERE key = 'demo_port'") == [(str(base),)]
        simulator = json.loads(pid_file.read_text())
        assert simulator["users"] == [first.pid]
        # other ports while it runs: refused in one line, nothing started or changed
        refused = subprocess.run([sys.executable, "main.py", "--demo", "--port", str(old)],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1
        assert "the demo runs already with its simulator on other ports" in refused.stderr
        assert json.loads(pid_file.read_text()) == simulator
        # a second window joins the simulator that runs and follows the first
        second = subprocess.Popen([sys.executable, "main.py", "--demo"], cwd=ROOT, env=env,
                                  stdout=logs[1], stderr=subprocess.STDOUT)
        _wait(lambda: json.loads(pid_file.read_text())["users"] == [first.pid, second.pid],
              30, "the second window to join the simulator", second)
        assert json.loads(pid_file.read_text())["pid"] == simulator["pid"]
        first.send_signal(signal.SIGINT)
        assert first.wait(30) == 0
        # the simulator stays for the second window, which takes over the polling
        assert _answers(base + 1)
        _wait(lambda: _query(db, "SELECT holder, pid FROM lease") == [("window", second.pid)],
              45, "the second window to take the polling lease", second)
        since = time.time()
        _wait(lambda: _query(db, f"SELECT COUNT(*) FROM latest_reading WHERE read_at > {since}")
              == [(BUSES * METERS,)], 30, "the second window to read every meter", second)
        second.send_signal(signal.SIGINT)
        assert second.wait(30) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for log in logs:
            log.close()
    assert not _answers(base + 1)  # the last window out stopped it
    assert not pid_file.exists()
    for n in (1, 2):
        text = (tmp_path / f"window{n}.log").read_text()
        assert "Traceback" not in text, text
