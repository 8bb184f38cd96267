"""The demo restarted, as a user does it: ``main.py simulate --state`` and ``main.py serve`` as
subprocesses, stopped (SIGTERM) and started again three times with recharges, a closed account
and a meter's own trip in between. After every restart the meters and the books agree: each
open account's balance is the meter's money (within what the room used since), the closed
room's meter stays tripped, the tripped meter stays open, purchase counts keep counting, energy
registers never go back; no counter reset, no energy jump, no reconciliation (tamper) alarm.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import free_port_base

ROOT = Path(__file__).resolve().parent.parent.parent
MAIN = [sys.executable, str(ROOT / "main.py")]
PASSWORD = "demo-pass-1"
METERS = 4  # rooms 1-101 .. 1-104 on bus 1, units 1..4
PRICE_CENTS_PER_KWH = 58.8
#: Meter time runs 30 times the clock: energy moves by several 0.01 kWh during the test.
SPEED = "30"
RECHARGED, CLOSED, TRIPPED, LATE = "1-101", "1-102", "1-103", "1-104"


def _query(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


class Demo:
    """A demo campus of 1 bus x 4 meters, its simulator and its reading service."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.db = tmp_path / "demo.db"
        self.state = self.home / "demo-sim.json"
        self.logs = tmp_path
        self.port = free_port_base(1)
        self.env = {**os.environ, "VOLTKEEPER_HOME": str(self.home), "LANGUAGE": "en",
                    "VOLTKEEPER_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}
        self.sim: subprocess.Popen[str] | None = None
        self.serve: subprocess.Popen[str] | None = None
        self.starts = 0

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MAIN, *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def create(self) -> None:
        made = self.run("init-demo", "--db", str(self.db), "--buses", "1", "--meters",
                        str(METERS), "--port", str(self.port))
        assert made.returncode == 0, made.stderr
        con = sqlite3.connect(self.db)
        con.execute("UPDATE bus SET poll_interval_s = 0.5")
        con.commit()
        con.close()

    def start(self) -> float:
        """Start the simulator (until it listens), then the reading service; the time."""
        self.starts += 1
        t = time.time()
        sim_log = (self.logs / f"sim{self.starts}.log").open("w")
        self.sim = subprocess.Popen(
            [*MAIN, "simulate", "--buses", "1", "--meters", str(METERS), "--port",
             str(self.port), "--speed", SPEED, "--state", str(self.state)],
            cwd=ROOT, env=self.env, text=True, stdout=subprocess.PIPE, stderr=sim_log)
        sim_log.close()
        assert self.sim.stdout is not None
        line = self.sim.stdout.readline()
        assert "listening on" in line, (line, (self.logs / f"sim{self.starts}.log").read_text())
        serve_log = (self.logs / f"serve{self.starts}.log").open("w")
        self.serve = subprocess.Popen(
            [*MAIN, "serve", "--db", str(self.db), "--log-file",
             str(self.logs / "serve.rotating.log")],
            cwd=ROOT, env=self.env, text=True, stdout=serve_log, stderr=subprocess.STDOUT)
        serve_log.close()
        return t

    def stop(self) -> None:
        """Stop as the demo's window does: the reading service first, then the meters."""
        for proc in (self.serve, self.sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(30) == 0
        self.serve = self.sim = None

    def kill(self) -> None:
        for proc in (self.serve, self.sim):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def status(self) -> dict[str, dict]:
        out = self.run("status", "--db", str(self.db), "--json")
        assert out.returncode == 0, out.stderr
        return {m["room"]: m for m in json.loads(out.stdout)["meters"]}

    def wait(self, predicate, what: str, timeout: float = 45) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while True:
            for proc, name in ((self.sim, "simulate"), (self.serve, "serve")):
                if proc is not None and proc.poll() is not None:
                    pytest.fail(f"{name} exited with {proc.returncode} waiting for {what}")
            meters = self.status()
            if predicate(meters):
                return meters
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}: {meters}")
            time.sleep(0.3)  # other processes: nothing to wait on but the database

    def recharge(self, room: str, yuan: str) -> None:
        done = self.run("recharge", "--db", str(self.db), "--room", room, "--amount", yuan,
                        "--method", "cash", "--operator", "cashier", "--wait", "30")
        assert done.returncode == 0, done.stdout + done.stderr


def _purchase_counts(db: Path) -> dict[str, int]:
    """Each room's meter's purchase count as last read (``status --json`` does not show it)."""
    rows = _query(db, "SELECT n.code, l.purchase_count FROM latest_reading l "
                      "JOIN meter m ON m.id = l.meter_id JOIN node n ON n.id = m.node_id")
    return dict(rows)


def _write_power_limit(port: int, unit: int, watts: int) -> None:
    """A maintenance engineer sets a meter's power limit with the vendor's tool (register
    0481H): any load trips it now, and after three breaches it locks out."""
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
    assert client.connect()
    try:
        assert not client.write_registers(0x0481, [watts], device_id=unit).isError()
    finally:
        client.close()


@pytest.mark.slow
def test_meters_and_books_agree_across_three_restarts(tmp_path: Path) -> None:
    demo = Demo(tmp_path)
    demo.create()
    try:
        demo.start()
        first = demo.wait(lambda ms: all(m["online"] and m["balance_cents"] for m in ms.values()),
                          "every meter read and its balance taken over")
        demo.recharge(RECHARGED, "12.34")
        closed = demo.run("account", "--db", str(demo.db), "close", "--room", CLOSED,
                          "--operator", "finance")
        assert closed.returncode == 0, closed.stdout + closed.stderr
        _write_power_limit(demo.port + 1, 3, 1)
        before = demo.wait(lambda ms: ms[CLOSED]["control_mode"] == "forced_trip"
                           and ms[CLOSED]["relay_closed"] is False
                           and ms[TRIPPED]["relay_closed"] is False
                           and ms[RECHARGED]["money_cents"] >= first[RECHARGED]["money_cents"]
                           + 1234 - 100, "the recharge, the closed room's trip, the breach")
        assert before[CLOSED]["account"] is None
        counts = _purchase_counts(demo.db)
        recharged = {RECHARGED: 1234, LATE: 0}
        for n in range(3):
            demo.stop()
            restarted = demo.start()
            after = demo.wait(lambda ms, t=restarted: all(
                m["online"] and m["read_at"] and m["read_at"] > t for m in ms.values()),
                f"every meter read after restart {n + 1}")
            for room, m in after.items():
                assert m["energy_wh"] >= before[room]["energy_wh"], (room, m, before[room])
                used_cents = (m["energy_wh"] - first[room]["energy_wh"]) \
                    * PRICE_CENTS_PER_KWH / 1000
                if m["account"] is not None:
                    # the books: the opening balance taken from the meter, the recharges, the
                    # bills so far; the meter: the same, less what it charged since
                    assert abs(m["money_cents"] - m["balance_cents"]) <= used_cents + 2, (
                        n, room, m)
                    assert m["money_cents"] >= first[room]["money_cents"] + recharged.get(room, 0) \
                        - used_cents - 2, (n, room, m)
            assert after[CLOSED]["relay_closed"] is False
            assert after[CLOSED]["control_mode"] == "forced_trip"
            assert after[CLOSED]["account"] is None
            assert after[TRIPPED]["relay_closed"] is False
            assert _purchase_counts(demo.db) == counts  # no token lost, none applied twice
            events = _query(demo.db, "SELECT kind, detail FROM meter_event WHERE kind IN "
                                     "('counter_reset', 'energy_jump')")
            assert events == [], events
            # nothing that says the meters and the books disagree (the demo's heaters may trip
            # a meter over its limit, and a room may run low: those are the demo's life)
            alarms = _query(demo.db, "SELECT kind, message FROM alarm WHERE kind IN "
                                     "('reconciliation', 'forged_command', 'token_refused', "
                                     "'command_failed', 'readings_unsent', 'bad_reading')")
            assert alarms == [], alarms
            # something for the next restart to keep: money on another meter
            demo.recharge(LATE, "5.00")
            recharged[LATE] += 500
            before = demo.wait(lambda ms: ms[LATE]["money_cents"]
                               >= first[LATE]["money_cents"] + recharged[LATE] - 100,
                               "the late recharge on the meter")
            late = _purchase_counts(demo.db)
            assert late == {**counts, LATE: counts[LATE] + 1}
            counts = late
        demo.stop()
    finally:
        demo.kill()
    saved = json.loads(demo.state.read_text())
    assert saved["campus"] == {"buses": 1, "meters": METERS, "profile": "acrel-ddsy1352",
                               "seed": 1}
    assert saved["meters"]["1.2"]["control_mode"] == "forced_trip"
    assert saved["meters"]["1.3"]["settings"]["power_limit_w"] == 1
