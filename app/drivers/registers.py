"""Pure encode/decode of profile points to and from 16-bit registers, and read planning.

Nothing here does I/O: the driver and the simulator both call these functions, and the tests
check them against frames captured by hand.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from app.drivers.profile import CommMap, MeterProfile, Point

#: What a decoded point is: a number (int, exact Decimal when scaled, float for float32),
#: a state name, a string of BCD digits or raw bytes.
Value = int | Decimal | float | str | bytes


def _words(point: Point, regs: Sequence[int]) -> list[int]:
    words = list(regs[: point.count])
    if len(words) != point.count:
        raise ValueError(f"{point.name}: needs {point.count} registers, got {len(words)}")
    return words[::-1] if point.word_order == "little" else words


def raw_integer(point: Point, regs: Sequence[int]) -> int:
    """The integer in ``regs`` as the point's type says (before scaling)."""
    words = _words(point, regs)
    value = 0
    for w in words:
        value = (value << 16) | (w & 0xFFFF)
    if point.type in ("i16", "i32"):
        bits = 16 * point.count
        if value >= 1 << (bits - 1):
            value -= 1 << bits
    return value


def decode_point(point: Point, regs: Sequence[int]) -> Value:
    """Decode one point from its registers."""
    if point.states:
        key = tuple(regs[: point.count])
        for name, state_regs in point.states:
            if state_regs == key:
                return name
        return "unknown"
    if point.type == "float32":
        words = _words(point, regs)
        (f,) = struct.unpack(">f", struct.pack(">HH", *words))
        return f * float(point.scale) if point.scale != 1 else f
    if point.type == "bcd":
        digits = "".join(f"{w:04X}" for w in _words(point, regs))
        return digits
    if point.type == "bytes":
        return b"".join(w.to_bytes(2, "big") for w in _words(point, regs))
    raw = raw_integer(point, regs)
    if point.bits or point.scale == 1:
        return raw
    return Decimal(raw) * point.scale


def decode_bits(point: Point, raw: int) -> dict[str, bool | int]:
    return {bit.name: bit.extract(raw) for bit in point.bits}


def encode_point(point: Point, value: Value) -> list[int]:
    """The registers that write ``value`` to ``point``. Raises ValueError if it cannot be."""
    if point.states and isinstance(value, str) and point.type != "bcd":
        return list(point.state_registers(value))
    if point.type == "bytes":
        if not isinstance(value, (bytes, bytearray)):
            raise ValueError(f"{point.name}: needs bytes")
        data = bytes(value).ljust(2 * point.count, b"\0")
        if len(data) > 2 * point.count:
            raise ValueError(f"{point.name}: {len(value)} bytes do not fit {point.count} registers")
        words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        return words[::-1] if point.word_order == "little" else words
    if point.type == "bcd":
        digits = str(value).rjust(4 * point.count, "0")
        if len(digits) != 4 * point.count or not digits.isdigit():
            raise ValueError(f"{point.name}: {value!r} is not {4 * point.count} decimal digits")
        words = [int(digits[i : i + 4], 16) for i in range(0, len(digits), 4)]
        return words[::-1] if point.word_order == "little" else words
    if point.min is not None and Decimal(str(value)) < point.min:
        raise ValueError(f"{point.name}: {value} is below the minimum {point.min}")
    if point.max is not None and Decimal(str(value)) > point.max:
        raise ValueError(f"{point.name}: {value} is above the maximum {point.max}")
    if point.type == "float32":
        f = float(value) / float(point.scale)
        words = list(struct.unpack(">HH", struct.pack(">f", f)))
        return words[::-1] if point.word_order == "little" else words
    exact = Decimal(str(value)) / point.scale
    if exact != exact.to_integral_value():
        raise ValueError(f"{point.name}: {value} is not a multiple of {point.scale} {point.unit}")
    raw = int(exact)
    bits = 16 * point.count
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if point.type[0] == "i" else (
        0, (1 << bits) - 1)
    if not lo <= raw <= hi:
        raise ValueError(f"{point.name}: {value} is out of the register's range")
    raw &= (1 << bits) - 1
    words = [(raw >> (16 * (point.count - 1 - i))) & 0xFFFF for i in range(point.count)]
    return words[::-1] if point.word_order == "little" else words


@dataclass(frozen=True)
class ReadBlock:
    """One read transaction: ``count`` registers from ``start`` with ``function``."""

    function: int
    start: int
    count: int
    points: tuple[Point, ...]


def plan_reads(profile: MeterProfile, points: Iterable[Point], *, max_gap: int | None = None,
               single: bool = False) -> list[ReadBlock]:
    """Merge the points into as few transactions as the profile allows.

    Points of one function code are merged while the block stays within
    ``profile.max_registers`` and the hole between two points is at most ``profile.max_gap``
    registers (a meter may refuse to read registers it does not define, so the gap is the
    profile's to allow). A meter known to refuse such reads is planned with a smaller
    ``max_gap`` (0: contiguous points only) or ``single`` (one point per transaction).
    """
    gap = profile.max_gap if max_gap is None else min(max_gap, profile.max_gap)
    if single:
        return [block_of([p]) for p in sorted(points, key=lambda p: (p.function, p.address))]
    blocks: list[ReadBlock] = []
    by_function: dict[int, list[Point]] = {}
    for p in points:
        by_function.setdefault(p.function, []).append(p)
    for function in sorted(by_function):
        plist = sorted(by_function[function], key=lambda p: p.address)
        current: list[Point] = []
        start = end = 0
        for p in plist:
            if current and (p.address - end <= gap
                            and max(end, p.end) - start <= profile.max_registers):
                current.append(p)
                end = max(end, p.end)
                continue
            if current:
                blocks.append(ReadBlock(function, start, end - start, tuple(current)))
            current, start, end = [p], p.address, p.end
        if current:
            blocks.append(ReadBlock(function, start, end - start, tuple(current)))
    return blocks


def block_of(points: Sequence[Point]) -> ReadBlock:
    """The one transaction that reads ``points`` (all of one function code)."""
    ordered = sorted(points, key=lambda p: p.address)
    start = ordered[0].address
    end = max(p.end for p in ordered)
    return ReadBlock(ordered[0].function, start, end - start, tuple(ordered))


def split_block(block: ReadBlock) -> list[ReadBlock]:
    """Two smaller reads for a refused one: its documented points apart from the optional ones
    when it mixes them (an optional point is the likelier to be missing), else two halves."""
    documented = [p for p in block.points if p.documented]
    optional = [p for p in block.points if not p.documented]
    if documented and optional:
        return [block_of(documented), block_of(optional)]
    ordered = sorted(block.points, key=lambda p: p.address)
    half = len(ordered) // 2
    return [block_of(ordered[:half]), block_of(ordered[half:])]


def implausible(point: Point, value: Value) -> str | None:
    """Why a decoded value cannot be what the meter measured (None: it can): not a number,
    infinite, or outside the point's plausible range."""
    if point.bits or point.states or not isinstance(value, (int, float, Decimal)):
        return None
    if (isinstance(value, float) and math.isnan(value)) or (
            isinstance(value, Decimal) and value.is_nan()):
        return "not a number"
    if (isinstance(value, float) and math.isinf(value)) or (
            isinstance(value, Decimal) and value.is_infinite()):
        return "infinite"
    unit = f" {point.unit}" if point.unit else ""
    if point.plausible_min is not None and value < point.plausible_min:
        return f"below the plausible minimum {point.plausible_min}{unit}"
    if point.plausible_max is not None and value > point.plausible_max:
        return f"above the plausible maximum {point.plausible_max}{unit}"
    return None


#: A value a read refused: (point name, what was wrong with it).
BadValue = tuple[str, str]


def decode_checked(block: ReadBlock, regs: Sequence[int],
                   bad: list[BadValue]) -> dict[str, Value | bool]:
    """Like ``decode_block``, but a point that cannot be decoded or is implausible is left out
    and named in ``bad``: one wrong value never costs the block's other values."""
    if len(regs) < block.count:
        raise ValueError(f"block at {block.start}: needs {block.count} registers, got {len(regs)}")
    values: dict[str, Value | bool] = {}
    for p in block.points:
        off = p.address - block.start
        try:
            value = decode_point(p, regs[off : off + p.count])
        except (ValueError, ArithmeticError, struct.error) as exc:
            bad.append((p.name, f"cannot be decoded: {exc}"))
            continue
        problem = implausible(p, value)
        if problem is not None:
            bad.append((p.name, f"{_show(value)} {problem}"))
            continue
        values[p.name] = value
        if p.bits and isinstance(value, int):
            values.update(decode_bits(p, value))
    return values


def _show(value: Value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def decode_block(block: ReadBlock, regs: Sequence[int]) -> dict[str, Value | bool]:
    """Every point of a block, and every bit field of those points, by name."""
    if len(regs) < block.count:
        raise ValueError(f"block at {block.start}: needs {block.count} registers, got {len(regs)}")
    values: dict[str, Value | bool] = {}
    for p in block.points:
        off = p.address - block.start
        value = decode_point(p, regs[off : off + p.count])
        values[p.name] = value
        if p.bits and isinstance(value, int):
            values.update(decode_bits(p, value))
    return values


def wire_time(request_bytes: int, response_bytes: int, baud: int, parity: str = "N",
              stop_bits: int = 1, turnaround_s: float = 0.0) -> float:
    """Seconds one RTU transaction takes on the wire: both frames, 3.5-character gaps after
    each, and the meter's turnaround."""
    bits = 1 + 8 + (0 if parity == "N" else 1) + stop_bits
    char = bits / baud
    return (request_bytes + response_bytes + 7) * char + turnaround_s


def read_frame_sizes(count: int) -> tuple[int, int]:
    """RTU request and response sizes in bytes for a read of ``count`` registers."""
    return 8, 5 + 2 * count


def write_frame_sizes(count: int, function: int = 16) -> tuple[int, int]:
    """RTU request and response sizes in bytes for a write of ``count`` registers."""
    if function == 6:
        return 8, 8
    return 9 + 2 * count, 8


# -- a meter's own communication settings (the profile's [comm]) ------------------------------
@dataclass(frozen=True)
class LineSettings:
    """What a meter's comm block says: its address and line settings (None: the profile does
    not say where, or the code is not in its table)."""

    address: int
    baud: int | None = None
    parity: str | None = None
    stop_bits: int | None = None


def _code(table: Sequence, data: bytes, offset: int | None):
    if offset is None or offset >= len(data) or data[offset] >= len(table):
        return None
    return table[data[offset]]


def decode_comm(comm: CommMap, data: bytes) -> LineSettings:
    """The settings in the comm point's bytes."""
    return LineSettings(address=data[comm.address_byte],
                        baud=_code(comm.baud_codes, data, comm.baud_byte),
                        parity=_code(comm.parity_codes, data, comm.parity_byte),
                        stop_bits=_code(comm.stop_codes, data, comm.stop_byte))


def encode_comm(comm: CommMap, data: bytes, *, address: int | None = None,
                baud: int | None = None, parity: str | None = None,
                stop_bits: int | None = None) -> bytes:
    """``data`` (the comm point as read) with the settings given changed, the other bytes as
    they were. Raises ValueError for an address outside 1..247 or a setting the meter's code
    table does not have."""
    out = bytearray(data)
    if address is not None:
        if not 1 <= address <= 247:
            raise ValueError(f"address {address} is not 1..247")
        out[comm.address_byte] = address
    for value, table, offset, what in ((baud, comm.baud_codes, comm.baud_byte, "baud"),
                                       (parity, comm.parity_codes, comm.parity_byte, "parity"),
                                       (stop_bits, comm.stop_codes, comm.stop_byte, "stop bits")):
        if value is None:
            continue
        if offset is None or value not in table:
            raise ValueError(f"{what} {value} is not one this meter can be set to")
        out[offset] = table.index(value)
    return bytes(out)
