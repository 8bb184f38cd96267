"""The campus meter simulator: hundreds of simulated prepaid meters served over real Modbus.

Qt-free and free of the station's core: it plays the meters, nothing else. Modules:
``identity`` (serials, shops), ``curves`` (the day's loads), ``meter`` (one meter's physics and
registers), ``image`` (profile points as registers), ``protocol`` (frames), ``faults``
(``--faults``), ``campus`` (buses of meters), ``server`` (the wire), ``state`` (the meters'
memory across restarts, ``--state``), ``handle`` (in-process use), ``cli`` (``python main.py
simulate``), ``demo_campus`` and ``process`` (the demo's database and its simulator process).
"""

from __future__ import annotations

from app.simulator.campus import SimCampus
from app.simulator.clock import SimClock
from app.simulator.faults import FaultSpecError, parse_faults
from app.simulator.handle import SimulatorHandle, start_simulator
from app.simulator.identity import is_shop, serial_for
from app.simulator.meter import SimMeter, TripReason
from app.simulator.snapshot import STATION_FIELDS, MeterSnapshot

__all__ = [
    "STATION_FIELDS", "FaultSpecError", "MeterSnapshot", "SimCampus", "SimClock", "SimMeter",
    "SimulatorHandle", "TripReason", "is_shop", "parse_faults", "serial_for", "start_simulator",
]
