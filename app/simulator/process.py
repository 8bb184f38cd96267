"""``--demo``: the demo database (created once) and the simulator process beside the window."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from app.core import operators
from app.core.operators import PASSWORD_ENV
from app.simulator.demo_campus import add_demo_operators, create_demo_campus, demo_settings
from app.storage import campus
from app.storage.db import open_database

log = logging.getLogger("voltkeeper.ui.demo")

MAIN = Path(__file__).resolve().parent.parent.parent / "main.py"


def ensure_demo_database(path: Path) -> dict[str, str]:
    """Create the seed's campus at ``path`` unless it holds one; return its demo settings."""
    if path.exists():
        open_database(path)
        if not campus.is_empty():
            if not operators.has_operators():  # a demo made before operators existed
                add_demo_operators(os.environ.get(PASSWORD_ENV) or None)
            return demo_settings()
    log.info("creating the demo campus in %s", path)
    # the window signs in as the demo's administrator without a password; scripts may fix
    # one for the command line with VOLTKEEPER_PASSWORD
    create_demo_campus(path, password=os.environ.get(PASSWORD_ENV) or None)
    return demo_settings()


class SimulatorProcess:
    """``main.py simulate`` with the demo database's flags, as a child process."""

    def __init__(self, demo: dict[str, str], key_file: Path) -> None:
        self.buses = int(demo.get("demo_buses", 12))
        self.args = [
            sys.executable, str(MAIN), "simulate",
            "--buses", str(self.buses), "--meters", demo.get("demo_meters", "27"),
            "--port", demo.get("demo_port", "5020"),
            "--host", demo.get("demo_host", "127.0.0.1"),
            "--transport", demo.get("demo_transport", "tcp"),
            "--profile", demo.get("demo_profile", "acrel-ddsy1352"),
            "--seed", demo.get("demo_seed", "1"), "--key-file", str(key_file),
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.endpoints: list[str] = []
        self._ready = threading.Event()

    def start(self, timeout_s: float = 20.0) -> bool:
        """Start it and wait until every bus listens. False if it could not (ports taken by a
        simulator already running, say): the window opens anyway and shows the buses down."""
        log.info("starting the simulator: %s", " ".join(self.args[1:]))
        # its own session: Ctrl+C in the terminal reaches the window, which stops polling
        # first and then stops the simulator (not both at once)
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True)
        threading.Thread(target=self._read, name="simulator-output", daemon=True).start()
        self._ready.wait(timeout_s)
        if len(self.endpoints) < self.buses:
            log.warning("the simulator did not start every bus (%d of %d)",
                        len(self.endpoints), self.buses)
            return False
        return True

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip()
            if " listening on " in line:
                self.endpoints.append(line.split(" listening on ", 1)[1].split(" ", 1)[0])
                if len(self.endpoints) >= self.buses:
                    self._ready.set()
            log.info("simulator: %s", line)
        self._ready.set()  # it exited

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
