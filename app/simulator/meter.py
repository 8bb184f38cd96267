"""One simulated prepaid meter: its physics, its money, its relay, and the registers it serves.

Time is injected (epoch seconds of simulated time) and the meter is lazy: :meth:`SimMeter.advance`
integrates from the last time it was asked to the new one, in steps that never cross a minute
boundary (the load is constant within a minute), so a meter nobody reads costs nothing and the
result does not depend on how often it is read. Energy is an exact count of 0.01 kWh; money is
integer micro-yuan, so every 0.01 kWh costs exactly ``price_raw`` micro-yuan (price in 0.0001
yuan/kWh) and the arithmetic can be checked to the last micro-yuan.

The relay opens at zero balance, on a power-limit breach and on a resistive ("malicious") load,
restores itself after a delay a limited number of times, and obeys the station's controls.

What the room draws (:meth:`SimMeter.demand`) is its own appliances (:func:`curves.base_load`),
now and then a hidden heater in a dorm in the evening, an appliance a test plugs in
(:meth:`SimMeter.plug_in`) and the ``--faults`` appliance (``load=W:PF``,
:meth:`SimMeter.set_appliance`), combined into one active power and one power factor, so the
current and power factor the meter reports show the mix.

The meter's own protection, as the real Acrel meter does it (the profile's points):

* **Power limit** (``power_limit``, 0481H, W; 0 = no limit; enforced while ``load_control``,
  0480H, is 1, the factory setting): when the active power the room draws is above the limit
  (the load is constant within a minute, so a breach lasts at least until the minute ends) the
  relay opens with ``trip_reason`` 2 (over the limit) and the status word's over-limit bit.
* **Malicious load** (``malicious_detection``, 1013H, 1 on / 0 off; ``malicious_step``, 0482H,
  W; ``malicious_pf``, 0483H, x0.001, factory 0.950): an appliance switched on (a step in the
  room's demand above its own appliances) of more than the step at a power factor of at least
  the threshold, an immersion heater or a hot plate, opens the relay with ``trip_reason`` 3.
  A motor (power factor 0.7, say) is no malicious load, whatever its power.
  The malicious rule is looked at first: a 3 kW heater is reported as malicious.
* Either trip counts in ``overlimit_trips`` (0222H) and restores itself after
  ``restore_delay_min`` (0486H high byte, factory 1 minute); an appliance still on trips it
  again at once. The trip that reaches ``restore_count`` (0485H) leaves it open with
  ``trip_reason`` 5 (lock-out) until the station closes it (control_mode auto), which clears
  the count.
* Keep-power (control_mode ``keep_power``) blocks both self-trips (and the arrears trip), and a
  forced trip (``forced_trip``) holds the relay open whatever the load. ``control_mode`` stays
  as the station wrote it through a self-trip (``auto``): the reason is in ``trip_reason``.

Its own line settings (the profile's ``[comm]`` block, 0360H for the DDSY1352): the address it
answers at (written: it answers the write at the old one, then the campus moves it to the new one;
an address another meter of its bus has is refused with exception 3) and its speed (written: on
a serial line it answers at that speed only; the ``baud=`` fault overrides it). They are not
kept by ``--state``.

What a real meter keeps through a power cut (money, energy, purchase count, relay state and
why, control mode, settings, breach count) is :meth:`SimMeter.memory`, which
:meth:`SimMeter.restore` takes back: ``--state`` (:mod:`app.simulator.state`) saves it.
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.drivers.profile import MeterProfile
from app.drivers.registers import Value, decode_comm, encode_comm
from app.drivers.token import TokenStatus, verify_token
from app.simulator import curves
from app.simulator.clock import CAMPUS_TZ
from app.simulator.curves import Load
from app.simulator.identity import is_shop, serial_for
from app.simulator.image import Image, build_image, parse_write, read_image
from app.simulator.protocol import ILLEGAL_VALUE, ModbusReplyError
from app.simulator.snapshot import STATION_FIELDS, MeterSnapshot, decode_image

STEP_S = 60.0
#: 0.01 kWh, the meter's energy unit, in joules.
UNIT_J = 36_000.0
MICRO_PER_CENT = 10_000
DEFAULT_PRICE_RAW = 5880  # 0.5880 yuan/kWh
ALARM1_MICRO = 10 * 1_000_000
ALARM2_MICRO = 5 * 1_000_000
_EPS = 1e-9


class TripReason(enum.IntEnum):
    """Why the relay is open (the profile's ``trip_reason`` register)."""

    CLOSED = 0
    ARREARS = 1
    OVER_LIMIT = 2
    MALICIOUS = 3
    REMOTE = 4
    LOCKED_OUT = 5


@dataclass
class MeterSettings:
    """What the station may set on a meter; the defaults are the factory's."""

    power_limit_w: int = 2500
    load_control: int = 1
    malicious_detection: int = 1
    malicious_step_w: int = 800
    malicious_pf_milli: int = 950
    restore_count: int = 3
    restore_delay_min: int = 1
    price_raw: int = DEFAULT_PRICE_RAW


class SimMeter:
    """A simulated meter at ``unit`` on ``bus``. Thread-safe through ``lock``."""

    def __init__(self, profile: MeterProfile, bus: int, unit: int, *, seed: int = 1,
                 meters_per_bus: int = 27, start: float = 0.0,
                 keys_by_version: Mapping[int, tuple[bytes, bytes]] | None = None,
                 clock: Callable[[], float] | None = None,
                 lock: threading.RLock | None = None, random_heaters: bool = True) -> None:
        self.profile = profile
        self.bus = bus
        self.unit = unit
        self.seed = seed
        self.serial = serial_for(bus, unit)
        self.shop = is_shop(bus, unit, meters_per_bus)
        self.prepaid = profile.is_prepaid
        self.lock = lock or threading.RLock()
        self._keys = dict(keys_by_version or {})
        self._clock = clock
        self._random_heaters = random_heaters and not self.shop
        key = (bus, unit)
        self._key = key
        self.room = curves.unit_hash(seed, *key, "room")
        self.settings = MeterSettings(power_limit_w=8000 if self.shop else 2500)
        self.key_version = 1
        units = 10_000 + int(290_000 * curves.unit_hash(seed, *key, "energy"))
        spike, peak, valley = units // 10, units * 3 // 10, units // 4
        self.tariff_units = [spike, peak, units - spike - peak - valley, valley]
        self.energy_units = units
        self._frac = 0.0
        cents = 2_000 + int(18_000 * curves.unit_hash(seed, *key, "money"))
        self.money_micro = cents * MICRO_PER_CENT
        self.purchase_count = 1 + int(20 * curves.unit_hash(seed, *key, "count"))
        self.token_status = int(TokenStatus.NONE)
        self.control_mode = "auto"
        self.trip_reason = TripReason.CLOSED
        self.overlimit_trips = 0
        self.restore_at: float | None = None
        self._plugged: Load | None = None
        #: The ``--faults`` appliance (``load=W:PF``): not memory, it comes from the SPEC.
        self._appliance: Load | None = None
        self._loads_version = 0
        self._extra: dict[str, Value] = {}
        self._t = float(start)
        self._version = 0
        #: Bumped by every change the station (or a test hook) makes: a write, set_money.
        self.writes = 0
        self._image_version = -1
        self._image: Image = {}
        self._demand_key: tuple[int, int] | None = None
        self._demand: tuple[float, float, list[Load]] = (0.0, 1.0, [])
        #: The meter's own line settings (the profile's [comm]): None is the factory's, which
        #: answers at whatever speed the line runs (and reports the profile's default).
        self.line_baud: int | None = None
        self.line_parity = profile.serial.parity
        self.line_stop_bits = profile.serial.stop_bits
        #: Set by the campus: may this meter take that address on its bus? (a simulator's
        #: courtesy: a real meter would take it and collide)
        self.can_move_to: Callable[[int], bool] | None = None
        #: The meter's own clock against meter time (its battery clock was never set: it shows
        #: meter time in campus time, UTC+8, until the station sets it)
        self.clock_offset_s = 0.0

    # -- time --------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated time the state is at."""
        return self._t

    def sync(self) -> None:
        """Bring the meter up to its clock's now (no-op without a clock)."""
        if self._clock is not None:
            self.advance(self._clock())

    def advance(self, now: float) -> None:
        """Live from the last time to ``now``: consume, pay, trip and restore on the way."""
        with self.lock:
            t = self._t
            if now <= t:
                return
            while t < now:
                self._settle(t)
                end = min(now, (math.floor(t / STEP_S) + 1) * STEP_S)
                if self.restore_at is not None and t < self.restore_at < end:
                    end = self.restore_at
                power = self._power(t)
                if power > 0:
                    units = power * (end - t) / UNIT_J
                    need = self._units_until_empty()
                    if need is not None and self._frac + units >= need - _EPS:
                        units = need - self._frac
                        end = min(end, t + units * UNIT_J / power)
                    self._consume(units, t)
                t = end
            self._t = now
            self._settle(now)
            self._version += 1

    # -- loads -------------------------------------------------------------------------------
    def plug_in(self, watts: float, pf: float = 1.0) -> None:
        """Test hook: someone plugs in an appliance (a heater when ``pf`` is 1)."""
        with self.lock:
            self.sync()
            self._plugged = Load(float(watts), float(pf))
            self._loads_changed()
            self._settle(self._t)
            self._version += 1

    def unplug(self) -> None:
        with self.lock:
            self.sync()
            self._plugged = None
            self._loads_changed()
            self._version += 1

    def set_appliance(self, watts: float, pf: float = 1.0) -> None:
        """The ``--faults`` ``load=W:PF`` appliance switches on (``watts`` 0: off), on top of the
        room's demand and of a :meth:`plug_in` appliance; the meter reacts at once."""
        load = Load(float(watts), float(pf)) if watts > 0 else None
        with self.lock:
            if load == self._appliance:
                return
            self.sync()
            self._appliance = load
            self._loads_changed()
            self._settle(self._t)
            self._version += 1

    @property
    def appliance(self) -> Load | None:
        """The ``--faults`` appliance, if any."""
        return self._appliance

    def _loads_changed(self) -> None:
        self._loads_version += 1
        self._demand_key = None

    def set_money(self, cents: int) -> None:
        """Test and demo hook: set the balance (to run a meter nearly dry, say)."""
        with self.lock:
            self.sync()
            self.money_micro = int(cents) * MICRO_PER_CENT
            self._settle(self._t)
            self._version += 1
            self.writes += 1

    def demand(self, t: float | None = None) -> tuple[float, float, list[Load]]:
        """What the room draws at ``t`` if the relay is closed: watts, power factor, loads."""
        t = self._t if t is None else t
        key = (int(t // 60), self._loads_version)
        if key != self._demand_key:
            loads = [curves.base_load(self.seed, self._key, self.shop, self.room, t)]
            if self._random_heaters:
                heater = curves.hidden_heater(self.seed, self._key, t)
                if heater is not None:
                    loads.append(heater)
            if self._plugged is not None:
                loads.append(self._plugged)
            if self._appliance is not None:
                loads.append(self._appliance)
            self._demand = (*curves.combine(loads), loads)
            self._demand_key = key
        return self._demand

    @property
    def relay_closed(self) -> bool:
        if not self.prepaid:
            return True
        return self.control_mode == "keep_power" or self.trip_reason == TripReason.CLOSED

    def _power(self, t: float) -> float:
        return self.demand(t)[0] if self.relay_closed else 0.0

    # -- energy and money --------------------------------------------------------------------
    def _units_until_empty(self) -> int | None:
        """0.01 kWh units the money lasts, if running out would trip the relay."""
        if not self.prepaid or self.control_mode != "auto" or self.settings.price_raw <= 0:
            return None
        if self.money_micro <= 0:
            return None
        return -(-self.money_micro // self.settings.price_raw)

    def _consume(self, units: float, t: float) -> None:
        self._frac += units
        whole = int(self._frac + _EPS)
        if whole <= 0:
            return
        self._frac = max(0.0, self._frac - whole)
        self.energy_units += whole
        self.tariff_units[curves.tariff_at(t)] += whole
        if self.prepaid:
            self.money_micro -= whole * self.settings.price_raw
            if self.control_mode != "keep_power":
                self.money_micro = max(self.money_micro, 0)

    # -- relay logic -------------------------------------------------------------------------
    def _settle(self, t: float) -> None:
        """Apply what is true at ``t``: restore due, money gone or back, breaches."""
        if not self.prepaid:
            return
        if self.control_mode == "keep_power":
            self.trip_reason = TripReason.CLOSED
            return
        if self.control_mode == "forced_trip":
            self.trip_reason = TripReason.REMOTE
            return
        reason = self.trip_reason
        if reason in (TripReason.OVER_LIMIT, TripReason.MALICIOUS) and (
                self.restore_at is not None and self.restore_at <= t):
            self.trip_reason, self.restore_at = TripReason.CLOSED, None
        elif reason in (TripReason.ARREARS, TripReason.REMOTE) and self.money_micro > 0:
            self.trip_reason = TripReason.CLOSED
        if self.trip_reason != TripReason.CLOSED:
            return
        if self.money_micro <= 0:
            self.trip_reason = TripReason.ARREARS
            return
        watts, _pf, loads = self.demand(t)
        if self._malicious(loads[1:]):
            self._breach(t, TripReason.MALICIOUS)
        elif self.settings.load_control and 0 < self.settings.power_limit_w < watts:
            self._breach(t, TripReason.OVER_LIMIT)

    def _malicious(self, steps: list[Load]) -> bool:
        """Whether one of the appliances switched on above the room's own demand is a malicious
        load: more than the step, at a power factor of at least the threshold."""
        s = self.settings
        return bool(s.malicious_detection) and any(
            round(load.pf * 1000) >= s.malicious_pf_milli and load.watts > s.malicious_step_w
            for load in steps)

    def _breach(self, t: float, reason: TripReason) -> None:
        self.overlimit_trips += 1
        if self.overlimit_trips >= self.settings.restore_count:
            self.trip_reason, self.restore_at = TripReason.LOCKED_OUT, None
        else:
            self.trip_reason = reason
            self.restore_at = t + 60.0 * self.settings.restore_delay_min

    def _set_mode(self, mode: str) -> None:
        self.control_mode = mode
        self.restore_at = None
        if mode == "auto":
            # Closing from the station clears a lock-out and the breach count.
            self.overlimit_trips = 0
            self.trip_reason = TripReason.CLOSED
        elif mode == "forced_trip":
            self.trip_reason = TripReason.REMOTE
        else:
            self.trip_reason = TripReason.CLOSED

    # -- what the station writes -------------------------------------------------------------
    def apply(self, name: str, value: Value) -> None:
        """Act on a written point (already checked against the profile)."""
        s = self.settings
        if name == "control_mode":
            self._set_mode(str(value))
        elif name == "power_limit":
            s.power_limit_w = int(value)  # type: ignore[arg-type]
        elif name == "load_control":
            s.load_control = int(value)  # type: ignore[arg-type]
        elif name == "malicious_detection":
            s.malicious_detection = int(value)  # type: ignore[arg-type]
        elif name == "malicious_step":
            s.malicious_step_w = int(value)  # type: ignore[arg-type]
        elif name == "malicious_pf":
            s.malicious_pf_milli = int(Decimal(str(value)) * 1000)
        elif name == "restore_count":
            s.restore_count = int(value)  # type: ignore[arg-type]
        elif name == "price":
            raw = int(Decimal(str(value)) * 10_000)
            if raw <= 0:
                raise ModbusReplyError(ILLEGAL_VALUE, "a price must be above zero")
            s.price_raw = raw
        elif name == "token":
            self._recharge(bytes(value))  # type: ignore[arg-type]
        elif self.profile.comm is not None and name == self.profile.comm.point:
            self._set_comm(bytes(value))  # type: ignore[arg-type]
        elif name == "clock":
            self._set_clock(bytes(value))  # type: ignore[arg-type]
        else:
            self._extra[name] = value

    def clock_bytes(self) -> bytes:
        """The clock block: YY MM DD weekday hh mm ss in BCD, a pad byte (campus time)."""
        when = datetime.fromtimestamp(self._t + self.clock_offset_s, CAMPUS_TZ)
        parts = (when.year % 100, when.month, when.day, when.isoweekday() % 7, when.hour,
                  when.minute, when.second)
        return bytes((v // 10) << 4 | v % 10 for v in parts) + b"\0"

    def _set_clock(self, data: bytes) -> None:
        digits = [(b >> 4, b & 0x0F) for b in data[:7]]
        if len(digits) < 7 or any(hi > 9 or lo > 9 for hi, lo in digits):
            raise ModbusReplyError(ILLEGAL_VALUE, "the clock takes BCD digits")
        yy, mo, dd, _wd, hh, mi, ss = (hi * 10 + lo for hi, lo in digits)
        try:
            when = datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=CAMPUS_TZ)
        except ValueError:
            raise ModbusReplyError(ILLEGAL_VALUE, "not a date and time") from None
        self.clock_offset_s = when.timestamp() - self._t

    def comm_block(self) -> bytes:
        """The comm point's bytes: address and line codes, the meter number in BCD after."""
        comm = self.profile.comm
        assert comm is not None
        size = 2 * self.profile.points[comm.point].count
        data = bytearray(size)
        serial = self.serial[-2 * size:].rjust(2 * size, "0")
        tail = bytes.fromhex(serial)
        used = [b for b in (comm.address_byte, comm.baud_byte, comm.parity_byte, comm.stop_byte)
                if b is not None]
        rest = [i for i in range(size) if i > max(used)]
        for i, b in zip(rest, tail[-len(rest):] if rest else b"", strict=False):
            data[i] = b
        return encode_comm(comm, bytes(data), address=self.unit,
                           baud=self.line_baud or self.profile.serial.baud,
                           parity=self.line_parity if comm.parity_byte is not None else None,
                           stop_bits=self.line_stop_bits if comm.stop_byte is not None else None)

    def _set_comm(self, data: bytes) -> None:
        """A write of the comm block: a new address (the campus moves the meter once the reply
        has gone) and line settings (the meter answers only at its new speed on a pty)."""
        comm = self.profile.comm
        assert comm is not None
        new = decode_comm(comm, data)
        if not 1 <= new.address <= 247:
            raise ModbusReplyError(ILLEGAL_VALUE, f"address {new.address} is not 1..247")
        for offset, value in ((comm.baud_byte, new.baud), (comm.parity_byte, new.parity),
                              (comm.stop_byte, new.stop_bits)):
            if offset is not None and value is None:
                raise ModbusReplyError(ILLEGAL_VALUE, f"no such code at byte {offset}")
        if new.address != self.unit and self.can_move_to is not None \
                and not self.can_move_to(new.address):
            raise ModbusReplyError(ILLEGAL_VALUE, f"address {new.address} is taken")
        self.unit = new.address
        if new.baud is not None:
            self.line_baud = new.baud
        if new.parity is not None:
            self.line_parity = new.parity
        if new.stop_bits is not None:
            self.line_stop_bits = new.stop_bits

    def _recharge(self, token: bytes) -> None:
        verdict = verify_token(self._keys, self.serial, self.purchase_count, token)
        self.token_status = int(verdict.status)
        if verdict.applied:
            self.money_micro += verdict.amount_cents * MICRO_PER_CENT
            self.purchase_count = verdict.purchase_count

    # -- memory across power cuts -------------------------------------------------------------
    @property
    def version(self) -> int:
        """Bumped whenever the meter's state moves (time, a write, a hook)."""
        return self._version

    def memory(self) -> dict[str, Any]:
        """What the meter keeps through a power cut, as plain values (written points it does
        not act on, ``extra``, as they were written); not its time, its load or its identity,
        which come from the clock and the seed."""
        with self.lock:
            return {
                "energy_units": self.energy_units, "tariff_units": list(self.tariff_units),
                "energy_fraction": self._frac, "money_micro": self.money_micro,
                "purchase_count": self.purchase_count, "token_status": self.token_status,
                "control_mode": self.control_mode, "trip_reason": int(self.trip_reason),
                "overlimit_trips": self.overlimit_trips, "restore_at": self.restore_at,
                "key_version": self.key_version, "settings": asdict(self.settings),
                "extra": dict(self._extra),
                "plugged": None if self._plugged is None else [self._plugged.watts,
                                                               self._plugged.pf],
            }

    def restore(self, memory: Mapping[str, Any], now: float) -> None:
        """Take back what :meth:`memory` gave, at meter time ``now``: the time since it was
        saved passed with the power off (nothing used). A malformed ``memory`` raises
        ValueError naming the field, changing nothing."""
        m = check_memory(memory, self.profile)
        with self.lock:
            self.energy_units = m["energy_units"]
            self.tariff_units = list(m["tariff_units"])
            self._frac = m["energy_fraction"]
            self.money_micro = m["money_micro"]
            self.purchase_count = m["purchase_count"]
            self.token_status = m["token_status"]
            self.control_mode = m["control_mode"]
            self.trip_reason = TripReason(m["trip_reason"])
            self.overlimit_trips = m["overlimit_trips"]
            self.restore_at = m["restore_at"]
            self.key_version = m["key_version"]
            self.settings = MeterSettings(**m["settings"])
            self._extra = dict(m["extra"])
            plugged = m["plugged"]
            self._plugged = None if plugged is None else Load(*plugged)
            self._loads_changed()
            self._t = max(self._t, float(now))
            self._settle(self._t)
            self._version += 1

    # -- registers ---------------------------------------------------------------------------
    def quantities(self) -> dict[str, Any]:
        """Everything the meter can tell, in the simulator's units (W, V, kWh, yuan)."""
        t = self._t
        watts, pf, _ = self.demand(t) if self.relay_closed else (0.0, 1.0, [])
        volts = curves.mains_voltage(self.seed, self._key, t)
        amps = watts / (volts * pf) if watts else 0.0
        apparent = watts / pf if watts else 0.0
        money = max(self.money_micro, 0)
        s = self.settings
        q: dict[str, Any] = dict(self._extra)
        q.update(
            energy=Decimal(self.energy_units) / 100,
            energy_spike=Decimal(self.tariff_units[0]) / 100,
            energy_peak=Decimal(self.tariff_units[1]) / 100,
            energy_flat=Decimal(self.tariff_units[2]) / 100,
            energy_valley=Decimal(self.tariff_units[3]) / 100,
            voltage=volts, current=amps, active_power=watts, power_factor=pf,
            apparent_power=apparent, reactive_power=math.sqrt(max(apparent**2 - watts**2, 0)),
            frequency=curves.mains_frequency(self.seed, t),
            serial=self.serial, control_mode=self.control_mode, clock=self.clock_bytes(),
            price=Decimal(s.price_raw) / 10_000,
            remaining_money=Decimal(money // MICRO_PER_CENT) / 100,
            remaining_energy=Decimal(money // max(s.price_raw, 1)) / 100,
            purchase_count=self.purchase_count, overlimit_trips=self.overlimit_trips,
            overlimit_allowed=s.restore_count, load_control=s.load_control,
            power_limit=s.power_limit_w, malicious_step=s.malicious_step_w,
            malicious_pf=Decimal(s.malicious_pf_milli) / 1000, restore_count=s.restore_count,
            restore_delay_min=s.restore_delay_min, token=b"", token_status=self.token_status,
            malicious_detection=s.malicious_detection, key_version=self.key_version,
            trip_reason=int(self.trip_reason), relay_closed=self.relay_closed, fault=0,
            **({self.profile.comm.point: self.comm_block()} if self.profile.comm else {}),
            cost_control=int(self.prepaid and self.control_mode == "auto"),
            over_limit=int(self.trip_reason in (TripReason.OVER_LIMIT, TripReason.LOCKED_OUT)),
            arrears=int(self.prepaid and self.money_micro <= 0),
            alarm1=int(self.prepaid and self.money_micro < ALARM1_MICRO),
            alarm2=int(self.prepaid and self.money_micro < ALARM2_MICRO),
        )
        return q

    def image(self) -> Image:
        """The register map at the meter's current time, rebuilt only when the state moved."""
        with self.lock:
            if self._image_version != self._version:
                self._image = build_image(self.profile, self.quantities())
                self._image_version = self._version
            return self._image

    def read_registers(self, function: int, start: int, count: int) -> list[int]:
        with self.lock:
            self.sync()
            return read_image(self.profile, self.image(), function, start, count)

    def write_registers(self, start: int, values: list[int]) -> None:
        with self.lock:
            self.sync()
            for point, value in parse_write(self.profile, start, values):
                self.apply(point.name, value)
            self._settle(self._t)
            self._version += 1
            self.writes += 1

    def snapshot(self) -> MeterSnapshot:
        """The state now, decoded from the registers exactly as the station decodes a read."""
        with self.lock:
            self.sync()
            v = decode_image(self.profile, self.image(), self._t)
            return MeterSnapshot(
                bus=self.bus, unit=self.unit, sim_time=self._t,
                **{name: getattr(v, name) for name in STATION_FIELDS}, extra=dict(v.extra),
                overlimit_trips=self.overlimit_trips,
                money_micro=self.money_micro, energy_units=self.energy_units,
                demand_w=self.demand()[0], shop=self.shop,
            )


_INT_FIELDS = ("energy_units", "money_micro", "purchase_count", "token_status", "trip_reason",
               "overlimit_trips", "key_version")
_SETTINGS = tuple(f.name for f in fields(MeterSettings))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_memory(memory: Mapping[str, Any], profile: MeterProfile) -> Mapping[str, Any]:
    """``memory`` if it is what :meth:`SimMeter.memory` gives (``extra`` decoded), else
    ValueError naming the field."""
    def bad(name: str) -> ValueError:
        return ValueError(f"bad {name!r}")

    if not isinstance(memory, Mapping):
        raise ValueError("not a meter's memory")
    for name in _INT_FIELDS:
        if not _is_int(memory.get(name)):
            raise bad(name)
    if memory["energy_units"] < 0 or memory["purchase_count"] < 0:
        raise bad("energy_units" if memory["energy_units"] < 0 else "purchase_count")
    units = memory.get("tariff_units")
    if not (isinstance(units, list) and len(units) == 4 and all(
            _is_int(u) and u >= 0 for u in units)):
        raise bad("tariff_units")
    frac = memory.get("energy_fraction")
    if not (_is_number(frac) and 0 <= frac < 1):
        raise bad("energy_fraction")
    point = profile.points.get("control_mode")
    modes = {name for name, _regs in point.states} if point is not None else {"auto"}
    if memory.get("control_mode") not in modes | {"auto"}:
        raise bad("control_mode")
    if memory["trip_reason"] not in set(TripReason):
        raise bad("trip_reason")
    restore_at = memory.get("restore_at")
    if restore_at is not None and not _is_number(restore_at):
        raise bad("restore_at")
    settings = memory.get("settings")
    if not (isinstance(settings, Mapping) and set(settings) == set(_SETTINGS)
            and all(_is_int(v) for v in settings.values())):
        raise bad("settings")
    extra = memory.get("extra")
    if not (isinstance(extra, Mapping) and all(
            isinstance(k, str) and isinstance(v, (int, Decimal, float, str, bytes))
            for k, v in extra.items())):
        raise bad("extra")
    plugged = memory.get("plugged")
    if plugged is not None and not (isinstance(plugged, list) and len(plugged) == 2
                                    and all(_is_number(v) for v in plugged)):
        raise bad("plugged")
    return memory
