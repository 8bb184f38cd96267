"""What a simulated meter shows the station, decoded the station's way, for tests to compare.

A snapshot is decoded from the meter's own register image with the station's decoder
(:func:`registers.decode_point`, :func:`meter_values.values_from_points`), so a test can compare
a :meth:`ModbusLink.read_meter` record with it field by field: any difference is the wire's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

from app.drivers.meter_values import MeterValues, values_from_points
from app.drivers.profile import MeterProfile
from app.drivers.registers import Value, decode_bits, decode_point
from app.simulator.image import Image


@dataclass(frozen=True)
class MeterSnapshot:
    """The meter's state in the station's units, exactly as its registers encode it.

    The fields named like :class:`MeterValues`'s are what a full read of the meter decodes to
    (see :data:`STATION_FIELDS`); the rest is the simulator's own truth, for tests.
    """

    bus: int
    unit: int
    sim_time: float
    voltage_v: float | None
    current_a: float | None
    active_power_w: float | None
    power_factor: float | None
    frequency_hz: float | None
    energy_kwh: Decimal | None
    remaining_energy_kwh: Decimal | None
    remaining_money_cents: int | None
    purchase_count: int | None
    relay_closed: bool | None
    control_mode: str | None
    flags: frozenset[str]
    price_per_kwh: Decimal | None
    power_limit_w: int | None
    malicious_detection: bool | None
    malicious_step_w: int | None
    token_status: int | None
    serial: str | None
    extra: dict[str, Value | bool]
    trip_reason: int
    overlimit_trips: int
    money_micro: int
    energy_units: int
    demand_w: float
    shop: bool


#: Fields a snapshot shares with a :class:`MeterValues` read.
STATION_FIELDS = tuple(f.name for f in fields(MeterValues) if f.name not in ("read_at", "extra"))


def decode_image(profile: MeterProfile, image: Image, read_at: float) -> MeterValues:
    """Every point the station polls (all but ``poll = "never"``), decoded from ``image``."""
    decoded: dict[str, Value | bool] = {}
    for p in profile.points.values():
        if p.poll == "never":
            continue
        table = image[p.function]
        value = decode_point(p, [table[p.address + i] for i in range(p.count)])
        decoded[p.name] = value
        if p.bits and isinstance(value, int):
            decoded.update(decode_bits(p, value))
    return values_from_points(decoded, {n: p.unit for n, p in profile.points.items()}, read_at)
