"""Meter profiles: a meter model's serial defaults, register map and control points, as data.

A profile is a TOML file in ``resources/meters/``. This module loads and validates it into
frozen dataclasses; :mod:`app.drivers.registers` encodes and decodes values with it, and both
the station's driver and the simulator serve from the same profile, so a new meter model needs
no code. A profile with a mistake is refused with a :class:`ProfileError` that names the file,
the key and what is wrong.

The station understands points and controls by name. A metering-only profile
(``kind = "metering"``) has the measurement points only; a prepaid profile (``kind = "prepaid"``)
must also have the money, relay and control points listed in ``PREPAID_POINTS`` and
``PREPAID_CONTROLS``. What a profile does not declare, the station does not offer.

Meters as they come: a point is ``documented`` (the maker's manual or datasheet has it) or
optional (decoded from a vendor tool, inferred, or VoltKeeper's own): a meter that refuses an
optional point is read all the same, without it (``drivers/capability.py``). Every numeric point
has a plausible range (``plausible_min``/``plausible_max``, in the point's unit): the profile's
``min``/``max``, or else the station's default for the point's name (``PLAUSIBLE_RANGES``, in
the station's units); a value outside it, or not a number, is refused as a bad reading.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from app.drivers.plausible import PLAUSIBLE_RANGES, default_range
from app.errors import ConfigError
from app.i18n import _

PROFILE_DIR = Path(__file__).resolve().parent.parent.parent / "resources" / "meters"

#: Registers each fixed-size type takes. ``bcd`` and ``bytes`` take ``count`` registers.
TYPE_REGISTERS = {"u16": 1, "i16": 1, "u32": 2, "i32": 2, "float32": 2}
VARIABLE_TYPES = {"bcd", "bytes"}
TYPES = set(TYPE_REGISTERS) | VARIABLE_TYPES
READ_FUNCTIONS = {3, 4}
WRITE_FUNCTIONS = {6, 16}
POLL_GROUPS = ("fast", "slow", "never")
KINDS = ("prepaid", "metering")
SOURCES = ("manual", "vendor-tool", "inferred", "voltkeeper", "datasheet", "community")
#: Sources that make a point documented unless the profile says ``documented``: the maker's own.
DOCUMENTED_SOURCES = ("manual", "datasheet")

#: Every meter measures these.
MEASUREMENT_POINTS = ("voltage", "current", "active_power", "power_factor", "frequency", "energy")
#: A prepaid meter also has these (``relay_closed`` may be a bit of a status word).
PREPAID_POINTS = (
    "remaining_money", "remaining_energy", "purchase_count", "relay_closed", "control_mode",
    "price", "power_limit", "malicious_detection", "malicious_step", "token", "token_status",
    "serial",
)
#: The states a prepaid meter's ``control_mode`` point must name.
CONTROL_MODE_STATES = ("auto", "forced_trip", "keep_power")
#: Controls the station knows; each writes a point, with a named state or a caller's value.
KNOWN_CONTROLS = (
    "trip", "close", "keep_power_on", "keep_power_off", "power_limit",
    "malicious_load_detection", "malicious_load_threshold", "price", "recharge",
    "restore_count",
)
PREPAID_CONTROLS = (
    "trip", "close", "keep_power_on", "keep_power_off", "power_limit",
    "malicious_load_detection", "malicious_load_threshold", "price", "recharge",
)

_METER_KEYS = {"model", "vendor", "kind", "description", "sources", "type_code"}
_SERIAL_KEYS = {"baud", "parity", "stop_bits", "address", "bauds", "turnaround_ms"}
_READING_KEYS = {"max_registers", "max_gap"}
_POINT_KEYS = {
    "address", "function", "type", "count", "word_order", "scale", "unit", "bits", "states",
    "writable", "write_function", "poll", "source", "description", "min", "max", "documented",
}
_CONTROL_KEYS = {"point", "state", "description"}
_TOP_KEYS = {"meter", "serial", "reading", "points", "controls", "voltkeeper", "comm"}
_COMM_KEYS = {"point", "address_byte", "baud_byte", "parity_byte", "stop_byte", "baud_codes",
              "parity_codes", "stop_codes", "source", "description"}


class ProfileError(ConfigError):
    """A profile file is wrong. The message names the file, the key and the fault."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class BitField:
    """A named field inside an integer point: one bit (a flag) or ``width`` bits (a number)."""

    name: str
    shift: int
    width: int = 1

    def extract(self, raw: int) -> bool | int:
        value = (raw >> self.shift) & ((1 << self.width) - 1)
        return bool(value) if self.width == 1 else value


@dataclass(frozen=True)
class Point:
    """One value in the meter's register map."""

    name: str
    address: int
    function: int
    type: str
    count: int
    word_order: str = "big"
    scale: Decimal = Decimal(1)
    unit: str = ""
    bits: tuple[BitField, ...] = ()
    states: tuple[tuple[str, tuple[int, ...]], ...] = ()
    writable: bool = False
    write_function: int = 16
    poll: str = "fast"
    source: str = "manual"
    description: str = ""
    min: Decimal | None = None
    max: Decimal | None = None
    #: The maker documents it (a meter of this model has it); else optional: a meter may lack it.
    documented: bool = True
    #: What a read may plausibly return, in the point's unit (None: no bound).
    plausible_min: Decimal | None = None
    plausible_max: Decimal | None = None

    @property
    def end(self) -> int:
        """One past the last register."""
        return self.address + self.count

    def state_registers(self, state: str) -> tuple[int, ...]:
        for name, regs in self.states:
            if name == state:
                return regs
        raise KeyError(state)


@dataclass(frozen=True)
class Control:
    """A station action: write ``point``, with the named ``state`` or with the caller's value."""

    name: str
    point: str
    state: str | None = None
    description: str = ""


@dataclass(frozen=True)
class CommMap:
    """Where a meter keeps its own communication settings (address, baud, parity, stop bits):
    bytes of one writable ``bytes`` point (``point``), at these byte offsets (big-endian within
    each register, the point's first byte 0); each code byte indexes its list (``baud_codes[i]``
    is the baud rate code i means). The point's other bytes are kept as read when it is
    written (read, change, write back)."""

    point: str
    address_byte: int
    baud_byte: int | None = None
    parity_byte: int | None = None
    stop_byte: int | None = None
    baud_codes: tuple[int, ...] = ()
    parity_codes: tuple[str, ...] = ()
    stop_codes: tuple[int, ...] = ()
    source: str = "manual"
    description: str = ""


@dataclass(frozen=True)
class SerialDefaults:
    baud: int = 9600
    parity: str = "N"
    stop_bits: int = 1
    address: int = 1
    bauds: tuple[int, ...] = (9600,)
    turnaround_ms: int = 20


@dataclass(frozen=True)
class MeterProfile:
    """A validated meter model."""

    name: str
    model: str
    vendor: str
    kind: str
    description: str
    sources: tuple[str, ...]
    serial: SerialDefaults
    max_registers: int
    max_gap: int
    points: dict[str, Point] = field(hash=False)
    controls: dict[str, Control] = field(hash=False)
    path: str = ""
    type_code: int | None = None
    #: Where the meter keeps its address and line settings ([comm]); None: not known.
    comm: CommMap | None = None

    @property
    def is_prepaid(self) -> bool:
        return self.kind == "prepaid"

    def has(self, name: str) -> bool:
        """True when the profile can read ``name`` (a point or a bit field of one)."""
        return self.find(name) is not None

    def find(self, name: str) -> tuple[Point, BitField | None] | None:
        if name in self.points:
            return self.points[name], None
        for point in self.points.values():
            for bit in point.bits:
                if bit.name == name:
                    return point, bit
        return None

    def can(self, control: str) -> bool:
        """True when the meter supports the control (trip, recharge, ...)."""
        return control in self.controls

    def poll_points(self, groups: tuple[str, ...] = ("fast",)) -> list[Point]:
        return [p for p in self.points.values() if p.poll in groups]


def _problem(path: str, key: str, msg: str) -> ProfileError:
    return ProfileError(path, key, msg)


def _check_keys(path: str, where: str, table: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _problem(path, where, f"must be a table, not {type(table).__name__}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _problem(path, f"{where}.{unknown[0]}" if where else unknown[0],
                       f"unknown key (allowed: {', '.join(sorted(allowed))})")
    return table


def _int(path: str, key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _problem(path, key, f"must be an integer, not {type(value).__name__} {value!r}")
    if not lo <= value <= hi:
        raise _problem(path, key, f"{value} is out of range {lo}..{hi}")
    return value


def _str(path: str, key: str, value: Any, choices: tuple[str, ...] | set[str] | None = None) -> str:
    if not isinstance(value, str):
        raise _problem(path, key, f"must be a string, not {type(value).__name__} {value!r}")
    if choices is not None and value not in choices:
        raise _problem(path, key, f"{value!r} is not one of {', '.join(sorted(choices))}")
    return value


def _decimal(path: str, key: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _problem(path, key, f"must be a decimal string such as \"0.01\" or an integer, "
                                  f"not {type(value).__name__} {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise _problem(path, key, f"{value!r} is not a decimal number") from None
    if not result.is_finite():
        raise _problem(path, key, f"{value!r} is not a finite number")
    return result


def _parse_point(path: str, name: str, raw: Any) -> Point:
    where = f"points.{name}"
    table = _check_keys(path, where, raw, _POINT_KEYS)
    for required in ("address", "function", "type"):
        if required not in table:
            raise _problem(path, f"{where}.{required}", "is required")
    address = _int(path, f"{where}.address", table["address"], 0, 0xFFFF)
    function = _int(path, f"{where}.function", table["function"], 1, 127)
    if function not in READ_FUNCTIONS:
        raise _problem(path, f"{where}.function", f"{function} is not a read function (3 or 4)")
    dtype = _str(path, f"{where}.type", table["type"], TYPES)
    if dtype in VARIABLE_TYPES:
        if "count" not in table:
            raise _problem(path, f"{where}.count", f"is required for type {dtype}")
        count = _int(path, f"{where}.count", table["count"], 1, 125)
    else:
        count = TYPE_REGISTERS[dtype]
        if "count" in table and table["count"] != count:
            raise _problem(path, f"{where}.count", f"type {dtype} takes {count} registers")
    if address + count > 0x10000:
        raise _problem(path, f"{where}.address", "runs past register 65535")
    word_order = _str(path, f"{where}.word_order", table.get("word_order", "big"),
                      ("big", "little"))
    scale = _decimal(path, f"{where}.scale", table.get("scale", "1"))
    if scale == 0:
        raise _problem(path, f"{where}.scale", "must not be zero")
    bits: list[BitField] = []
    if "bits" in table:
        if dtype not in ("u16", "u32"):
            raise _problem(path, f"{where}.bits", "bit fields need type u16 or u32")
        width_total = 16 * count
        bit_table = table["bits"]
        if not isinstance(bit_table, dict):
            raise _problem(path, f"{where}.bits", "must be a table of name = bit")
        for bit_name, spec in bit_table.items():
            key = f"{where}.bits.{bit_name}"
            if isinstance(spec, list):
                if len(spec) != 2:
                    raise _problem(path, key, "a field is [first bit, width]")
                shift = _int(path, key, spec[0], 0, width_total - 1)
                width = _int(path, key, spec[1], 1, width_total - shift)
            else:
                shift, width = _int(path, key, spec, 0, width_total - 1), 1
            bits.append(BitField(bit_name, shift, width))
        used: dict[int, str] = {}
        for bit in bits:
            for b in range(bit.shift, bit.shift + bit.width):
                if b in used:
                    raise _problem(path, f"{where}.bits.{bit.name}",
                                   f"bit {b} is also {used[b]}")
                used[b] = bit.name
    states: list[tuple[str, tuple[int, ...]]] = []
    if "states" in table:
        state_table = table["states"]
        if not isinstance(state_table, dict):
            raise _problem(path, f"{where}.states", "must be a table of name = [registers]")
        for state_name, regs in state_table.items():
            key = f"{where}.states.{state_name}"
            if not isinstance(regs, list) or len(regs) != count:
                raise _problem(path, key, f"must be a list of {count} register values")
            states.append((state_name, tuple(_int(path, key, r, 0, 0xFFFF) for r in regs)))
        seen = [s for _, s in states]
        if len(set(seen)) != len(seen):
            raise _problem(path, f"{where}.states", "two states have the same registers")
    writable = table.get("writable", False)
    if not isinstance(writable, bool):
        raise _problem(path, f"{where}.writable", "must be true or false")
    write_function = _int(path, f"{where}.write_function", table.get("write_function", 16), 1, 127)
    if write_function not in WRITE_FUNCTIONS:
        raise _problem(path, f"{where}.write_function", f"{write_function} is not 6 or 16")
    if write_function == 6 and count != 1:
        raise _problem(path, f"{where}.write_function", "function 6 writes one register only")
    if writable and function != 3:
        raise _problem(path, f"{where}.writable", "only function-3 registers are writable")
    lo = _decimal(path, f"{where}.min", table["min"]) if "min" in table else None
    hi = _decimal(path, f"{where}.max", table["max"]) if "max" in table else None
    if lo is not None and hi is not None and lo > hi:
        raise _problem(path, f"{where}.min", f"{lo} is above max {hi}")
    unit = _str(path, f"{where}.unit", table.get("unit", ""))
    source = _str(path, f"{where}.source", table.get("source", "manual"), SOURCES)
    documented = table.get("documented", source in DOCUMENTED_SOURCES)
    if not isinstance(documented, bool):
        raise _problem(path, f"{where}.documented", "must be true or false")
    numeric = not bits and not states and dtype not in VARIABLE_TYPES
    plausible_lo, plausible_hi = lo, hi
    if numeric and lo is None and hi is None and name in PLAUSIBLE_RANGES:
        plausible_lo, plausible_hi = _default_range(path, where, name, unit)
    return Point(
        name=name, address=address, function=function, type=dtype, count=count,
        word_order=word_order, scale=scale,
        unit=unit, bits=tuple(bits), states=tuple(states), writable=writable,
        write_function=write_function,
        poll=_str(path, f"{where}.poll", table.get("poll", "fast"), POLL_GROUPS),
        source=source,
        description=_str(path, f"{where}.description", table.get("description", "")),
        min=lo, max=hi, documented=documented,
        plausible_min=plausible_lo if numeric else None,
        plausible_max=plausible_hi if numeric else None,
    )


def _default_range(path: str, where: str, name: str, unit: str) -> tuple[Decimal, Decimal]:
    """The station's plausible range for ``name``, in the point's own ``unit``."""
    try:
        return default_range(name, unit)
    except ValueError as exc:
        raise _problem(path, f"{where}.unit", str(exc)) from None


def _check_overlaps(path: str, points: dict[str, Point]) -> None:
    by_table: dict[int, list[Point]] = {}
    for p in points.values():
        by_table.setdefault(p.function, []).append(p)
    for function, plist in by_table.items():
        plist.sort(key=lambda p: p.address)
        for a, b in itertools.pairwise(plist):
            if b.address < a.end:
                raise _problem(
                    path, f"points.{b.name}.address",
                    f"register {b.address} (function {function}) overlaps points.{a.name} "
                    f"({a.address}..{a.end - 1})")


def parse_profile(data: dict[str, Any], path: str, name: str) -> MeterProfile:
    """Validate a profile already read from TOML. Raises ProfileError."""
    _check_keys(path, "", data, _TOP_KEYS)
    if "meter" not in data:
        raise _problem(path, "meter", "the [meter] table is required")
    meter = _check_keys(path, "meter", data["meter"], _METER_KEYS)
    for required in ("model", "vendor", "kind"):
        if required not in meter:
            raise _problem(path, f"meter.{required}", "is required")
    kind = _str(path, "meter.kind", meter["kind"], KINDS)
    sources = meter.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise _problem(path, "meter.sources", "must be a list of strings")
    type_code = meter.get("type_code")
    if type_code is not None:
        type_code = _int(path, "meter.type_code", type_code, 0, 0xFFFF)

    serial_t = _check_keys(path, "serial", data.get("serial", {}), _SERIAL_KEYS)
    bauds = serial_t.get("bauds", [serial_t.get("baud", 9600)])
    if not isinstance(bauds, list) or not bauds:
        raise _problem(path, "serial.bauds", "must be a non-empty list of baud rates")
    serial = SerialDefaults(
        baud=_int(path, "serial.baud", serial_t.get("baud", 9600), 300, 115200),
        parity=_str(path, "serial.parity", serial_t.get("parity", "N"), ("N", "E", "O")),
        stop_bits=_int(path, "serial.stop_bits", serial_t.get("stop_bits", 1), 1, 2),
        address=_int(path, "serial.address", serial_t.get("address", 1), 1, 247),
        bauds=tuple(_int(path, "serial.bauds", b, 300, 115200) for b in bauds),
        turnaround_ms=_int(path, "serial.turnaround_ms", serial_t.get("turnaround_ms", 20),
                           0, 1000),
    )
    reading = _check_keys(path, "reading", data.get("reading", {}), _READING_KEYS)
    max_registers = _int(path, "reading.max_registers", reading.get("max_registers", 64), 1, 125)
    max_gap = _int(path, "reading.max_gap", reading.get("max_gap", 0), 0, 124)

    points_t = data.get("points")
    if not isinstance(points_t, dict) or not points_t:
        raise _problem(path, "points", "at least one point is required")
    points = {pname: _parse_point(path, pname, praw) for pname, praw in points_t.items()}
    # VoltKeeper's own section: points the meter's documentation lacks, clearly apart.
    vk = _check_keys(path, "voltkeeper", data.get("voltkeeper", {}), {"points", "note"})
    vk_points = vk.get("points", {})
    if not isinstance(vk_points, dict):
        raise _problem(path, "voltkeeper.points", _("must be a table of points"))
    for pname, praw in vk_points.items():
        if pname in points:
            raise _problem(path, f"voltkeeper.points.{pname}", "is also in [points]")
        if isinstance(praw, dict):
            praw = {"source": "voltkeeper", **praw}
        points[pname] = _parse_point(path, pname, praw)
    _check_overlaps(path, points)
    for p in points.values():
        if p.count > max_registers:
            raise _problem(path, f"points.{p.name}.count",
                           f"{p.count} registers exceed reading.max_registers {max_registers}")

    bit_names: set[str] = set()
    for p in points.values():
        for b in p.bits:
            if b.name in bit_names:
                raise _problem(path, f"points.{p.name}.bits.{b.name}",
                               _("this bit field name is used twice"))
            bit_names.add(b.name)
    clash = bit_names & set(points)
    if clash:
        raise _problem(path, f"points.{sorted(clash)[0]}", "is both a point and a bit field")
    required = list(MEASUREMENT_POINTS) + (list(PREPAID_POINTS) if kind == "prepaid" else [])
    for req in required:
        if req not in points and req not in bit_names:
            raise _problem(path, f"points.{req}", f"is required for a {kind} meter")

    controls: dict[str, Control] = {}
    controls_t = data.get("controls", {})
    if not isinstance(controls_t, dict):
        raise _problem(path, "controls", _("must be a table of controls"))
    for cname, craw in controls_t.items():
        where = f"controls.{cname}"
        if cname not in KNOWN_CONTROLS:
            raise _problem(path, where, f"unknown control (known: {', '.join(KNOWN_CONTROLS)})")
        ctable = _check_keys(path, where, craw, _CONTROL_KEYS)
        if "point" not in ctable:
            raise _problem(path, f"{where}.point", "is required")
        pname = _str(path, f"{where}.point", ctable["point"])
        if pname not in points:
            raise _problem(path, f"{where}.point", f"no point named {pname!r}")
        if not points[pname].writable:
            raise _problem(path, f"{where}.point", f"point {pname!r} is not writable")
        state = ctable.get("state")
        if state is not None:
            state = _str(path, f"{where}.state", state)
            if state not in dict(points[pname].states):
                raise _problem(path, f"{where}.state", f"point {pname!r} has no state {state!r}")
        controls[cname] = Control(cname, pname, state,
                                  _str(path, f"{where}.description",
                                       ctable.get("description", "")))
    if kind == "prepaid":
        for req in PREPAID_CONTROLS:
            if req not in controls:
                raise _problem(path, f"controls.{req}", "is required for a prepaid meter")
        if "control_mode" not in points or not points["control_mode"].states:
            raise _problem(path, "points.control_mode",
                           _("must be a point of its own with states (not a bit field)"))
        mode_states = dict(points["control_mode"].states)
        for st in CONTROL_MODE_STATES:
            if st not in mode_states:
                raise _problem(path, f"points.control_mode.states.{st}", "is required")

    comm = _parse_comm(path, data["comm"], points) if "comm" in data else None
    return MeterProfile(
        name=name, model=_str(path, "meter.model", meter["model"]),
        vendor=_str(path, "meter.vendor", meter["vendor"]), kind=kind,
        description=_str(path, "meter.description", meter.get("description", "")),
        sources=tuple(sources), serial=serial, max_registers=max_registers, max_gap=max_gap,
        points=points, controls=controls, path=path, type_code=type_code, comm=comm,
    )


def _parse_comm(path: str, raw: Any, points: dict[str, Point]) -> CommMap:
    table = _check_keys(path, "comm", raw, _COMM_KEYS)
    if "point" not in table or "address_byte" not in table:
        raise _problem(path, "comm", "needs point and address_byte")
    pname = _str(path, "comm.point", table["point"])
    point = points.get(pname)
    if point is None or point.type != "bytes" or not point.writable:
        raise _problem(path, "comm.point", f"{pname!r} is not a writable bytes point")
    size = 2 * point.count
    offsets: dict[str, int | None] = {}
    for key in ("address_byte", "baud_byte", "parity_byte", "stop_byte"):
        offsets[key] = (_int(path, f"comm.{key}", table[key], 0, size - 1)
                        if key in table else None)
    used = [v for v in offsets.values() if v is not None]
    if len(set(used)) != len(used):
        raise _problem(path, "comm", "two settings share one byte")
    codes: dict[str, tuple] = {}
    for key, byte_key in (("baud_codes", "baud_byte"), ("parity_codes", "parity_byte"),
                          ("stop_codes", "stop_byte")):
        value = table.get(key, [])
        if not isinstance(value, list) or len(value) > 256:
            raise _problem(path, f"comm.{key}", "must be a list (index = code)")
        if offsets[byte_key] is not None and not value:
            raise _problem(path, f"comm.{key}", f"is required with {byte_key}")
        if key == "parity_codes":
            codes[key] = tuple(_str(path, f"comm.{key}", v, ("N", "E", "O")) for v in value)
        elif key == "baud_codes":
            codes[key] = tuple(_int(path, f"comm.{key}", v, 300, 115200) for v in value)
        else:
            codes[key] = tuple(_int(path, f"comm.{key}", v, 1, 2) for v in value)
    return CommMap(
        point=pname, address_byte=offsets["address_byte"],  # type: ignore[arg-type]
        baud_byte=offsets["baud_byte"], parity_byte=offsets["parity_byte"],
        stop_byte=offsets["stop_byte"], baud_codes=codes["baud_codes"],
        parity_codes=codes["parity_codes"], stop_codes=codes["stop_codes"],
        source=_str(path, "comm.source", table.get("source", "manual"), SOURCES),
        description=_str(path, "comm.description", table.get("description", "")))


def load_profile_file(path: Path) -> MeterProfile:
    """Read and validate one profile file. Whatever is wrong with it (not readable, not text,
    not TOML, a key twice, a wrong value) is a ProfileError naming the file and the key."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProfileError(str(path), "(file)", "no such file") from None
    except OSError as exc:
        raise ProfileError(str(path), "(file)", _("cannot be read: {error}").format(
            error=exc.strerror or exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(str(path), "(file)", _(
            "not a text file in UTF-8 (byte {offset} is {byte}): is it a meter profile?").format(
            offset=exc.start, byte=f"0x{raw[exc.start]:02X}")) from None
    if "\x00" in text:
        raise ProfileError(str(path), "(file)", _(
            "holds NUL bytes: a binary file, not a meter profile"))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(str(path), _toml_key(text, str(exc)), str(exc)) from None
    return parse_profile(data, str(path), path.stem)


_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_TOML_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")


def _toml_key(text: str, message: str) -> str:
    """The key a TOML syntax error is at (``controls.trip (syntax)`` for a control named
    twice), as far as its line tells; else ``(syntax)`` (the message has the line)."""
    m = _TOML_LINE.search(message)
    if m is None:
        return "(syntax)"
    number = int(m.group(1))
    lines = text.splitlines()
    table = ""
    for line in lines[:number - 1]:
        if t := _TOML_TABLE.match(line):
            table = t.group(1)
    line = lines[number - 1] if 0 < number <= len(lines) else ""
    if t := _TOML_TABLE.match(line):
        return f"{t.group(1)} (syntax)"
    if k := _TOML_KEY.match(line):
        key = k.group(1).strip().replace('"', "").replace("'", "")
        return f"{table + '.' if table else ''}{key} (syntax)"
    return "(syntax)"


@cache
def load_profile(name: str, directory: Path = PROFILE_DIR) -> MeterProfile:
    """The profile called ``name`` (file ``<directory>/<name>.toml``), or the profile file
    ``name`` when it names one (``/etc/voltkeeper/meters/acme-x1.toml``: a station's own
    meter model, kept outside the program); cached once it loads."""
    path = Path(name) if name.endswith(".toml") else directory / f"{name}.toml"
    if not path.exists():
        known = ", ".join(available_profiles(directory)) or "none"
        raise ProfileError(str(path), "(file)", f"no meter profile {name!r} (known: {known})")
    return load_profile_file(path)


def available_profiles(directory: Path = PROFILE_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))
