"""Small helpers shared by test folders and benches (no fixtures here: plain functions and a
writer thread like the polling side's)."""

from __future__ import annotations

import socket
import sqlite3
import statistics
import threading
import time
from pathlib import Path


def free_port_base(buses: int) -> int:
    """A port P with P+1..P+buses free right now (the simulator's bus k listens on P+k)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1] - 1
        if base + buses > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for k in range(1, buses + 1):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", base + k))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return base
    raise RuntimeError("no free ports")


def assert_plausible_over_plain_pymodbus(port: int, units: range | tuple[int, ...]) -> None:
    """A client that is not VoltKeeper's reads the DDSY1352 profile's addresses: voltage
    000BH (x0.1 V) and frequency 0011H (x0.01 Hz) are plausible mains values."""
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
    assert client.connect()
    try:
        for unit in units:
            volts = client.read_holding_registers(0x0B, count=1, device_id=unit)
            hertz = client.read_holding_registers(0x11, count=1, device_id=unit)
            assert 198 <= volts.registers[0] / 10 <= 242
            assert 49.5 <= hertz.registers[0] / 100 <= 50.5
    finally:
        client.close()


def operator(role: str = "administrator", name: str | None = None):
    """An operator of ``role`` acting in a test (as a front end has it after signing in)."""
    from app.core.operators import Operator, Role

    return Operator(name or role, Role(role))


def ledger_rows(path) -> tuple[list[tuple], list[tuple]]:
    """Every booking and entry of the ledger in the database file ``path`` (read-only)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        txns = conn.execute("SELECT id, t, kind, account_id, operator, memo, reference, method, "
                            "corrects FROM ledger_txn ORDER BY id").fetchall()
        entries = conn.execute("SELECT id, txn_id, book_id, account_id, amount_cents "
                               "FROM ledger_entry ORDER BY id").fetchall()
    finally:
        conn.close()
    return txns, entries


class PollingWriter(threading.Thread):
    """A small write transaction every ``every`` seconds on its own connection; records how
    long each took from asking for the write lock to its commit."""

    def __init__(self, db: Path, every: float = 0.05) -> None:
        super().__init__(daemon=True, name="polling-writer")
        self.db, self.every = db, every
        self.waits: list[float] = []
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.db, timeout=10, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA synchronous = NORMAL")
        n = 0
        try:
            while not self._halt.is_set():
                n += 1
                t0 = time.perf_counter()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                 ("polling_tick", str(n)))
                    conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    self.errors.append(str(exc))
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                self.waits.append(time.perf_counter() - t0)
                self._halt.wait(self.every)
        finally:
            conn.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(30)

    def summary(self) -> str:
        if not self.waits:
            return "no writes"
        w = sorted(self.waits)
        p99 = w[min(len(w) - 1, int(len(w) * 0.99))]
        over = sum(1 for x in w if x > 1.0)
        text = (f"{len(w)} writes, longest wait {w[-1] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                f"median {statistics.median(w) * 1000:.1f} ms, {over} over 1 s")
        if self.errors:
            text += f", {len(self.errors)} FAILED ({self.errors[0]})"
        return text


# -- the program as a subprocess ---------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "main.py")


def run_main(args: list[str], env: dict, timeout: float = 90, **kw):
    """``python main.py ARGS`` as its users run it; its CompletedProcess (text)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, MAIN, *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kw)


def status_json(db, env: dict) -> dict:
    """``main.py status --json`` of ``db``, parsed (it must succeed)."""
    import json

    out = run_main(["status", "--db", str(db), "--json"], env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def wait_until(predicate, timeout: float = 30.0, every: float = 0.3) -> bool:
    """Poll a condition (never a bare sleep as synchronisation)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return predicate()
