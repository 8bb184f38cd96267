"""The simulator as users run it: a subprocess, its listening lines, clients that are not
VoltKeeper's (plain pymodbus, Debian's mbpoll), signals, and its refusals."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.drivers.modbus_link import LinkConfig, ModbusLink
from app.drivers.profile import load_profile
from tests.helpers import assert_plausible_over_plain_pymodbus, free_port_base

ROOT = Path(__file__).resolve().parent.parent.parent
#: How users start the simulator (``python -m app.simulator`` takes the same flags).
SIMULATE = [sys.executable, str(ROOT / "main.py"), "simulate"]
LINE = re.compile(r"^bus (\d+) listening on (\S+) \((\d+) meters, ([\w-]+)\)$")
START_TIMEOUT_S = 15
needs_mbpoll = pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll not installed")


class Simulator:
    """A running ``simulate`` subprocess with its output lines in a queue."""

    def __init__(self, args: list[str], home: Path) -> None:
        env = {**os.environ, "VOLTKEEPER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([*SIMULATE, *args], cwd=ROOT, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def listening(self, buses: int) -> list[re.Match[str]]:
        found = []
        while len(found) < buses:
            line = self.lines.get(timeout=START_TIMEOUT_S)
            if line is None:
                raise AssertionError(f"simulator exited: {self.proc.wait()} "
                                     f"{self.proc.stderr.read() if self.proc.stderr else ''}")
            match = LINE.match(line)
            assert match, f"unexpected line {line!r}"
            found.append(match)
        return found

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=10)


@contextmanager
def simulate(args: list[str], home: Path) -> Iterator[Simulator]:
    sim = Simulator(args, home)
    try:
        yield sim
    finally:
        if sim.proc.poll() is None:
            sim.proc.kill()
            sim.proc.wait(timeout=10)


def run_once(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """Run the simulator expecting it to stop by itself (a refusal)."""
    return subprocess.run([*SIMULATE, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "VOLTKEEPER_HOME": str(home)})


def mbpoll(*args: str) -> list[int]:
    """Registers read by mbpoll: lines ``[ref]: value``."""
    out = subprocess.run(["mbpoll", *args, "-1"], capture_output=True, text=True, timeout=20,
                         check=True).stdout
    return [int(v) for v in re.findall(r"^\[\d+\]:\s+(\d+)", out, re.MULTILINE)]


@needs_mbpoll
def test_tcp_campus_serves_plain_pymodbus_and_mbpoll(tmp_path: Path) -> None:

    base = free_port_base(2)
    key_file = tmp_path / "keys" / "master.key"
    with simulate(["--buses", "2", "--meters", "3", "--port", str(base), "--seed", "1",
                   "--key-file", str(key_file)], tmp_path) as sim:
        lines = sim.listening(2)
        assert [m.group(0) for m in lines] == [
            f"bus {k} listening on tcp://127.0.0.1:{base + k} (3 meters, acrel-ddsy1352)"
            for k in (1, 2)]
        assert_plausible_over_plain_pymodbus(base + 2, (1, 2, 3))
        # mbpoll counts registers from 1: register 000BH (voltage) is reference 12.
        (volts,) = mbpoll("-m", "tcp", "-p", str(base + 1), "-a", "2", "-r", "12", "-c", "1",
                          "-t", "4", "127.0.0.1")
        (hertz,) = mbpoll("-m", "tcp", "-p", str(base + 1), "-a", "2", "-r", "18", "-c", "1",
                          "-t", "4", "127.0.0.1")
        assert 198 <= volts / 10 <= 242 and 49.5 <= hertz / 100 <= 50.5
        assert sim.stop(signal.SIGTERM) == 0
        err = sim.proc.stderr.read() if sim.proc.stderr else ""
    assert "generated a new one" in err
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_hex = key_file.read_text().split(":")[1].strip()
    assert key_hex not in err


@needs_mbpoll
def test_pty_transport_prints_the_station_end(tmp_path: Path) -> None:
    with simulate(["--transport", "pty", "--buses", "1", "--meters", "2", "--wire-baud", "9600",
                   "--key-file", str(tmp_path / "k")], tmp_path) as sim:
        (line,) = sim.listening(1)
        url = line.group(2)
        assert url.startswith("rtu:///dev/")
        device = LinkConfig.from_url(url).device
        assert Path(device).exists()
        (volts,) = mbpoll("-m", "rtu", "-b", "9600", "-P", "none", "-a", "1", "-r", "12",
                          "-c", "1", "-t", "4", device)
        assert 198 <= volts / 10 <= 242
        with ModbusLink(LinkConfig.from_url(url)) as link:
            read = link.read_meter(2, load_profile("acrel-ddsy1352"))
        assert 198 <= read.voltage_v <= 242 and 49.5 <= read.frequency_hz <= 50.5
        assert sim.stop(signal.SIGINT) == 0


def test_bad_faults_spec_is_refused_with_its_reason(tmp_path: Path) -> None:
    done = run_once(["--faults", "1:flood=1"], tmp_path)
    assert done.returncode == 2
    assert "unknown effect 'flood'" in done.stderr and done.stdout == ""


def test_a_port_in_use_is_one_clear_message(tmp_path: Path) -> None:
    base = free_port_base(1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 1))
        taken.listen()
        done = run_once(["--buses", "1", "--port", str(base), "--key-file",
                         str(tmp_path / "k")], tmp_path)
    assert done.returncode == 1
    assert f"127.0.0.1:{base + 1}" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2  # the key notice, and the reason


def _register(port: int, unit: int, address: int, value: int | None = None) -> int:
    """Write (if ``value``) then read one holding register with plain pymodbus."""
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
    assert client.connect()
    try:
        if value is not None:
            assert not client.write_registers(address, [value], device_id=unit).isError()
        return client.read_holding_registers(address, count=1, device_id=unit).registers[0]
    finally:
        client.close()


def test_state_file_keeps_the_meters_across_a_restart(tmp_path: Path) -> None:
    base = free_port_base(1)
    state = tmp_path / "sim.json"
    args = ["--buses", "1", "--meters", "2", "--port", str(base), "--speed", "0",
            "--key-file", str(tmp_path / "k"), "--state", str(state)]
    power_limit = 0x0481  # DDSY1352, W
    with simulate(args, tmp_path) as sim:
        sim.listening(1)
        assert _register(base + 1, 2, power_limit, 1234) == 1234
        # one simulator per state file: a second one is refused in one line
        other = run_once([*args[:4], "--port", str(free_port_base(1)), *args[6:]], tmp_path)
        assert other.returncode == 1
        assert other.stderr.strip().splitlines() == [
            f"simulate: another simulator (process {sim.proc.pid}) keeps {state}; stop it "
            "first or give another --state"]
        assert sim.stop(signal.SIGTERM) == 0
        assert "fresh meters" in (sim.proc.stderr.read() if sim.proc.stderr else "")
    saved = json.loads(state.read_text())
    assert saved["meters"]["1.2"]["settings"]["power_limit_w"] == 1234
    with simulate(args, tmp_path) as sim:
        sim.listening(1)
        assert _register(base + 1, 2, power_limit) == 1234
        assert _register(base + 1, 1, power_limit) == 2500  # the factory's, as before
        assert sim.stop(signal.SIGINT) == 0
        assert "restored from" in (sim.proc.stderr.read() if sim.proc.stderr else "")
    # another campus's state file is refused, not silently replaced by fresh meters
    other = run_once(["--buses", "2", *args[2:]], tmp_path)
    assert other.returncode == 1 and "Traceback" not in other.stderr
    (line,) = other.stderr.strip().splitlines()
    assert str(state) in line and "holds another campus (--buses 1 --meters 2 --profile " \
        "acrel-ddsy1352 --seed 1), not this one (--buses 2 --meters 2" in line
    assert json.loads(state.read_text())["meters"]["1.2"]["settings"]["power_limit_w"] == 1234
