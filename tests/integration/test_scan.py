"""The scan against the simulator on ptys, through ``main.py scan`` as maintenance runs it.

On a serial line the scan finds exactly the simulated ids: an offline meter is missing, a meter
set to 19,200 baud on a 9,600 line is found at its own speed. Against the database, while the
reading service polls: the bus is taken from its poller (state ``held``) and given back after,
the other bus keeps its cycle time, and what was found is set against what the database has.
"""

from __future__ import annotations

import json
import os
import threading
import time

from app.core.service import ReadingService
from app.simulator import start_simulator
from app.simulator.demo_campus import create_demo_campus
from app.storage import campus, readings
from app.storage.db import open_database
from app.storage.models import BusHold, BusState
from tests.helpers import run_main

from .conftest import point_buses_at, wait_for

FAULTS = "1.3:baud=19200;1.5:offline"


def _env() -> dict:
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


def _device(url: str) -> str:
    return url.removeprefix("rtu://").split("?")[0]


def test_scan_finds_the_simulated_ids_each_at_its_speed():
    with start_simulator(buses=1, meters=8, transport="pty", faults=FAULTS,
                         random_heaters=False) as sim:
        out = run_main(["scan", "--serial", _device(sim.endpoints[0]), "--bauds", "9600,19200",
                        "--ids", "1-10", "--timeout-ms", "100", "--json"], _env())
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert data["scanned"] == 10
        assert [(f["id"], f["baud"], f["parity"]) for f in data["found"]] == [
            (1, 9600, "N"), (2, 9600, "N"), (3, 19200, "N"), (4, 9600, "N"), (6, 9600, "N"),
            (7, 9600, "N"), (8, 9600, "N")]
        for f in data["found"]:
            assert f["model"] == "DDSY1352"
            assert f["serial"] == sim.meter(1, f["id"]).serial
        text = run_main(["scan", "--serial", _device(sim.endpoints[0]), "--ids", "1-4",
                         "--timeout-ms", "100"], _env())
        assert text.returncode == 0, text.stderr
        assert "3 of 4 ids answered" in text.stdout  # at 9600 only: id 3 is not heard


def test_scan_refuses_what_cannot_be_scanned():
    out = run_main(["scan", "--tcp", "127.0.0.1:1", "--ids", "1-2"], _env())
    assert out.returncode == 1 and "nothing could be scanned" in out.stderr
    out = run_main(["scan", "--tcp", "localhost", "--ids", "1-2"], _env())
    assert out.returncode == 2 and "HOST:PORT" in out.stderr
    out = run_main(["scan", "--serial", "/dev/null", "--ids", "0-3"], _env())
    assert out.returncode == 1 and "1 to 247" in out.stderr
    out = run_main(["scan", "--tcp", "127.0.0.1:502", "--bauds", "9600"], _env())
    assert out.returncode == 2


def _cycles(bus_id: int) -> tuple[float | None, float | None, str]:
    row = BusState.get_or_none(BusState.bus == bus_id)
    return (row.last_cycle_s, row.last_cycle_at, row.state) if row else (None, None, "")


def test_scanning_a_polled_bus_takes_it_and_gives_it_back(tmp_path):
    """Two buses of 5 meters in the database; the simulator has a sixth on bus 1, meter 3 of
    bus 1 set to 19,200 baud and meter 5 silent."""
    with start_simulator(buses=2, meters=6, transport="pty", seed=7, faults=FAULTS,
                         random_heaters=False) as sim:
        db_path = tmp_path / "station.db"
        create_demo_campus(db_path, buses=2, meters=5, seed=7)
        point_buses_at(sim.endpoints)
        b1, b2 = campus.buses()
        service = ReadingService(role="test", flush_s=0.05)
        ok, _info = service.start()
        assert ok
        try:
            assert wait_for(lambda: sum(r.online for r in readings.latest()) == 8)
            assert wait_for(lambda: _cycles(b2.id)[0] is not None)
            before = _cycles(b2.id)[0]
            samples: list[tuple[float | None, float | None, str, str]] = []
            done = threading.Event()

            def watch() -> None:
                while not done.is_set():
                    s2 = _cycles(b2.id)
                    samples.append((s2[0], s2[1], s2[2], _cycles(b1.id)[2]))
                    time.sleep(0.05)

            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                out = run_main(["scan", "--db", str(db_path), "--bus", b1.name,
                                "--bauds", "9600,19200", "--ids", "1-8", "--timeout-ms", "100",
                                "--json"], _env())
            finally:
                done.set()
                watcher.join()
            assert out.returncode == 0, out.stderr
            data = json.loads(out.stdout)
            assert [f["id"] for f in data["found"]] == [1, 2, 3, 4, 6]
            assert [m["id"] for m in data["missing"]] == [5]
            assert [f["id"] for f in data["unexpected"]] == [6]
            assert [(o["id"], o["baud"], o["expected_baud"]) for o in data["other_setting"]] \
                == [(3, 19200, 9600)]
            assert data["serial_mismatch"] == []
            # the scanned bus was given to the scan, the other one went on polling at its pace
            assert "held" in {s[3] for s in samples}
            held_at = [s[1] for s in samples if s[3] == "held"]
            assert max(s[1] for s in samples if s[1]) > min(held_at)  # B02 cycled meanwhile
            during = [s[0] for s in samples if s[3] == "held" and s[0] is not None]
            assert during and max(during) < 3 * max(before, 0.05) + 0.2
            # given back: the hold is gone and bus 1 polls again
            assert BusHold.select().count() == 0
            assert wait_for(lambda: _cycles(b1.id)[2] == "polling", timeout=10)
        finally:
            service.stop()
        open_database(db_path).close()
