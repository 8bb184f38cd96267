"""Running the simulator inside another program (tests, benchmarks, the demo): a daemon thread
with its own asyncio loop, and a handle to look at and steer the meters from outside it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from app.drivers.profile import MeterProfile
from app.drivers.token import MasterKey
from app.simulator.campus import SimCampus
from app.simulator.clock import SimClock
from app.simulator.meter import SimMeter
from app.simulator.server import SimServer, WireTiming

_START_TIMEOUT_S = 10.0


class SimulatorHandle:
    """A running simulator. Every method is safe to call from any thread."""

    def __init__(self, campus: SimCampus, server: SimServer, master_key: MasterKey) -> None:
        self.campus = campus
        self.server = server
        self.master_key = master_key
        self.endpoints: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="voltkeeper-simulator",
                                        daemon=True)
        self._stopped = False

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def start(self) -> SimulatorHandle:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.server.start(), self._loop)
        try:
            self.endpoints = future.result(_START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def clock(self) -> SimClock:
        return self.campus.clock

    def meter(self, bus: int, unit: int) -> SimMeter:
        return self.campus.meter(bus, unit)

    def set_faults(self, spec: str) -> None:
        """Change the faults now (a bad SPEC raises FaultSpecError and changes nothing)."""
        self.campus.set_faults(spec)

    def advance(self, seconds: float) -> None:
        """Step meter time (with ``speed=0``, the only way it moves)."""
        self.campus.clock.advance(seconds)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self.server.close(), self._loop)
            try:
                future.result(_START_TIMEOUT_S)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(_START_TIMEOUT_S)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def start_simulator(buses: int = 1, meters: int = 27, transport: str = "tcp",
                    host: str = "127.0.0.1", port: int = 0,
                    profile: str | MeterProfile = "acrel-ddsy1352", seed: int = 1,
                    wire_baud: int | None = None, wire_parity: str = "N", faults: str = "",
                    speed: float = 1.0, start: float | None = None,
                    master_key: MasterKey | None = None,
                    random_heaters: bool = True) -> Iterator[SimulatorHandle]:
    """Serve a simulated campus for the ``with`` block.

    ``port`` 0 takes free ports (see ``handle.endpoints``); ``speed`` 0 freezes meter time
    (step it with ``handle.advance``); ``start`` is the meter time at start in epoch seconds.
    Without ``master_key`` a fresh one is made (``handle.master_key``) so tests can make tokens.
    """
    key = master_key or MasterKey.generate()
    campus = SimCampus(buses, meters, profile, seed=seed, master_key=key,
                       clock=SimClock(start, speed), faults=faults,
                       random_heaters=random_heaters)
    wire = None
    if wire_baud:
        wire = WireTiming(wire_baud, wire_parity, campus.profile.serial.turnaround_ms / 1000)
    handle = SimulatorHandle(campus, SimServer(campus, transport, host, port, wire), key)
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
