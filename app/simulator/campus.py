"""The simulated campus: buses of meters, their faults, and what each request gets back.

The faults' ``load=W:PF`` appliances (:mod:`app.simulator.faults`) are plugged into their meters
when the campus is made and whenever :meth:`SimCampus.set_faults` changes the SPEC.

Transport-free: the servers in :mod:`app.simulator.server` hand every request here as
(bus, unit, PDU) and put the answer on the wire. One lock guards every meter; the server loop
holds it while a request is served, and tests reading a meter's state from another thread take
it too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app.drivers.profile import MeterProfile, load_profile
from app.drivers.token import MasterKey, meter_keys
from app.simulator.clock import SimClock
from app.simulator.faults import FaultPlan
from app.simulator.identity import serial_for
from app.simulator.meter import SimMeter
from app.simulator.protocol import BROADCAST, handle_pdu

MAX_UNIT = 247


@dataclass(frozen=True)
class Reply:
    """A meter's answer and what the bus does to it on the way back."""

    pdu: bytes
    corrupt: bool = False
    delay_s: float = 0.0


class SimCampus:
    """``buses`` buses of ``meters`` meters each (units 1..meters), all of one profile."""

    def __init__(self, buses: int, meters: int, profile: MeterProfile | str, seed: int = 1,
                 master_key: MasterKey | None = None, clock: SimClock | None = None,
                 faults: str = "", random_heaters: bool = True) -> None:
        if buses < 1:
            raise ValueError("a campus needs at least one bus")
        if not 1 <= meters <= MAX_UNIT:
            raise ValueError(f"a bus holds 1..{MAX_UNIT} meters, not {meters}")
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        self.seed = seed
        self.clock = clock or SimClock()
        self.lock = threading.RLock()
        self.faults = FaultPlan(faults, seed)
        self.meters_per_bus = meters
        start = self.clock.now()
        self._buses: dict[int, dict[int, SimMeter]] = {}
        for bus in range(1, buses + 1):
            self._buses[bus] = {}
            for unit in range(1, meters + 1):
                keys = ({master_key.version: meter_keys(master_key, serial_for(bus, unit))}
                        if master_key is not None else {})
                self._buses[bus][unit] = SimMeter(
                    self.profile, bus, unit, seed=seed, meters_per_bus=meters, start=start,
                    keys_by_version=keys, clock=self.clock.now, lock=self.lock,
                    random_heaters=random_heaters)
                self._buses[bus][unit].can_move_to = (
                    lambda address, b=bus: address not in self._buses[b])
        self._plug_appliances()

    def _plug_appliances(self) -> None:
        """Give every meter the ``load=`` appliance the faults name for it (none if none)."""
        for bus, meters in self._buses.items():
            for unit, meter in meters.items():
                appliance = self.faults.effects(bus, unit).appliance
                meter.set_appliance(*(appliance or (0.0, 1.0)))

    @property
    def bus_numbers(self) -> list[int]:
        return list(self._buses)

    def meters_on(self, bus: int) -> dict[int, SimMeter]:
        return self._buses[bus]

    def meter(self, bus: int, unit: int) -> SimMeter:
        try:
            return self._buses[bus][unit]
        except KeyError:
            raise KeyError(f"no simulated meter at bus {bus} unit {unit}") from None

    def set_faults(self, spec: str) -> None:
        """Change the faults at run time. A bad SPEC raises FaultSpecError, changing nothing.

        The ``load=`` appliances switch to the new SPEC's now: one it no longer names is
        switched off, a new one on (each meter's time up to now is lived with the old ones)."""
        plan = FaultPlan(spec, self.seed)
        with self.lock:
            self.faults = plan
            self._plug_appliances()

    def transact(self, bus: int, unit: int, pdu: bytes,
                 line_baud: int | None = None) -> Reply | None:
        """Serve one request; ``None`` when the bus stays silent.

        Silent: a broadcast, a unit nobody has on this bus, an offline meter, a dropped request,
        a meter set to another speed than the line's (``line_baud``: a pty's, as the station
        set it; None on TCP, which has no speed): the fault ``baud=`` or the speed written to
        the meter's comm settings (the fault wins).
        A meter whose address is written (the profile's [comm]) answers at the old one and
        moves to the new one: its old address is silent from then on.
        A dropped request is lost before the meter sees it (a write is not applied); a corrupt
        reply is spoiled after (the write was applied: the station must not assume otherwise).
        """
        with self.lock:
            meters = self._buses.get(bus, {})
            if unit == BROADCAST:
                for u, meter in meters.items():
                    if not self.faults.effects(bus, u).offline:
                        handle_pdu(meter, pdu, broadcast=True)
                        meter.unit = u  # one address for all: the simulator keeps each its own
                return None
            meter = meters.get(unit)
            if meter is None:
                return None
            fx = self.faults.effects(bus, unit)
            if fx.offline or self.faults.happens(fx.drop):
                return None
            own_baud = fx.baud or meter.line_baud
            if own_baud and line_baud and own_baud != line_baud:
                return None  # noise to this meter
            response = handle_pdu(meter, pdu)
            if meter.unit != unit:  # its address was written: it answered, then moved
                meters[meter.unit] = meters.pop(unit)
            if response is None:
                return None
            delay = fx.slow_ms / 1000 if fx.slow_ms and self.faults.happens(fx.slow_p) else 0.0
            return Reply(response, self.faults.happens(fx.crc), delay)

    def handle_request(self, bus: int, unit: int, pdu: bytes) -> bytes | None:
        """The response PDU to a request PDU, or ``None`` to stay silent (faults included,
        except what the line does to the reply: a corrupt CRC, a delay)."""
        reply = self.transact(bus, unit, pdu)
        return None if reply is None else reply.pdu
