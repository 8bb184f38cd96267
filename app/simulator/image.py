"""A simulated meter's register map, built from its profile: what a read returns, what a write
means.

The meter's physics speaks in quantities with fixed units (W, V, A, Hz, kWh, yuan, yuan/kWh);
this module turns them into each point's registers with :func:`registers.encode_point`, in the
point's own unit and scale, so any profile is served the way the station will decode it. Writes
are checked here as a meter would: only writable points, whole points, values in range.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from app.drivers.profile import MeterProfile, Point
from app.drivers.registers import Value, decode_point, encode_point
from app.simulator.protocol import ILLEGAL_ADDRESS, ILLEGAL_VALUE, ModbusReplyError

#: What a quantity in the simulator's unit is multiplied by to be in the point's unit.
UNIT_FACTORS: dict[str, Decimal] = {
    "kW": Decimal("0.001"), "kVA": Decimal("0.001"), "kvar": Decimal("0.001"),
    "Wh": Decimal(1000), "MWh": Decimal("0.001"), "fen": Decimal(100),
}

#: function code -> register address -> value
Image = dict[int, dict[int, int]]


def _raw_range(point: Point) -> tuple[int, int]:
    bits = 16 * point.count
    if point.type.startswith("i"):
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    if point.min is not None:
        lo = max(lo, int((point.min / point.scale).to_integral_value()))
    if point.max is not None:
        hi = min(hi, int((point.max / point.scale).to_integral_value()))
    return lo, hi


def _as_decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(0)


def point_registers(point: Point, quantities: Mapping[str, object]) -> list[int]:
    """The registers ``point`` holds when the meter's quantities are ``quantities``.

    A quantity the meter does not have reads as zero, as an unused register does.
    """
    q = quantities.get(point.name)
    if point.states:
        names = dict(point.states)
        state = q if isinstance(q, str) and q in names else point.states[0][0]
        return list(point.state_registers(state))
    if point.type == "bytes":
        data = bytes(q) if isinstance(q, (bytes, bytearray)) else b""
        return encode_point(point, data[: 2 * point.count])
    if point.type == "bcd":
        digits = q if isinstance(q, str) and q.isdigit() else "0"
        return encode_point(point, digits[-4 * point.count:])
    if point.bits:
        raw = 0
        for bit in point.bits:
            field = int(quantities.get(bit.name, 0) or 0) & ((1 << bit.width) - 1)
            raw |= field << bit.shift
        return encode_point(point, raw)
    value = _as_decimal(q) * UNIT_FACTORS.get(point.unit, Decimal(1))
    if point.type == "float32":
        if point.min is not None:
            value = max(value, point.min)
        if point.max is not None:
            value = min(value, point.max)
        return encode_point(point, float(value))
    lo, hi = _raw_range(point)
    raw = int((value / point.scale).to_integral_value(ROUND_HALF_EVEN))
    raw = min(max(raw, lo), hi)
    return encode_point(point, raw if point.scale == 1 else Decimal(raw) * point.scale)


def build_image(profile: MeterProfile, quantities: Mapping[str, object]) -> Image:
    """Every register of every point of the profile, by function code and address."""
    image: Image = {}
    for point in profile.points.values():
        table = image.setdefault(point.function, {})
        for i, word in enumerate(point_registers(point, quantities)):
            table[point.address + i] = word
    return image


def read_image(profile: MeterProfile, image: Image, function: int, start: int,
               count: int) -> list[int]:
    """What a read of ``count`` registers from ``start`` returns.

    A read that touches no register of any point is refused (exception 2), as a meter refuses
    an address it does not have; holes between points inside a read return zero.
    """
    end = start + count
    if end > 0x10000:
        raise ModbusReplyError(ILLEGAL_ADDRESS, "read runs past register 65535")
    if not any(p.function == function and p.address < end and p.end > start
               for p in profile.points.values()):
        raise ModbusReplyError(ILLEGAL_ADDRESS, f"no register at {start}..{end - 1}")
    table = image.get(function, {})
    return [table.get(a, 0) for a in range(start, end)]


def parse_write(profile: MeterProfile, start: int, words: list[int]) -> list[tuple[Point, Value]]:
    """The points a write of ``words`` at ``start`` sets, with their values.

    Every register must belong to a writable point and every point must be written whole
    (exception 2 otherwise); a state the point does not name, or a value outside the point's
    min/max, is exception 3. Nothing is applied unless the whole write is valid.
    """
    writable = {p.address: p for p in profile.points.values() if p.writable}
    out: list[tuple[Point, Value]] = []
    address, i = start, 0
    while i < len(words):
        point = writable.get(address)
        if point is None or i + point.count > len(words):
            raise ModbusReplyError(ILLEGAL_ADDRESS, f"register {address} is not writable here")
        value = decode_point(point, words[i : i + point.count])
        if point.states and value == "unknown":
            raise ModbusReplyError(ILLEGAL_VALUE, f"{point.name}: no such state")
        if isinstance(value, (int, Decimal, float)) and not point.bits:
            number = _as_decimal(value)
            if (point.min is not None and number < point.min) or (
                    point.max is not None and number > point.max):
                raise ModbusReplyError(ILLEGAL_VALUE, f"{point.name}: {value} is out of range")
        out.append((point, value))
        address += point.count
        i += point.count
    return out
