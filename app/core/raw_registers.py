"""The raw register tool: read or write any register of any slave on a bus, as Modbus Poll does,
for what a profile does not (yet) name.

Function codes 01/02 (coils, discrete inputs), 03/04 (holding, input registers), 05/0F (one or
several coils) and 06/10 (one or several registers). Register values are shown and taken as a
data type (``u16``, ``s16``, ``u32``, ``s32``, ``u64``, ``s64``, ``float32``, ``float64``,
``string``, ``bits``) in a word order (``big``: high word first, as Modbus sends a register's
bytes; ``little``: words swapped). Encoding and decoding are pure functions (tested alone); the
16- and 32-bit integers and float32 go through the profile codec (``drivers/registers.py``).

It is the maintenance role's (``raw_registers``: maintenance and administrators). The bus is
taken from its poller for each transaction (``core/bus_access.py``) and given back. A write is
audited with the registers before (read first, where the function has a read: 03 for 06/10,
01 for 05/0F; "not readable" otherwise) and after; a read is not (taking the bus is).
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.core import bus_access
from app.core.audit import act
from app.core.operators import Operator, Permission, require
from app.core.progress import Progress, quiet
from app.drivers.modbus_link import ModbusLink
from app.drivers.profile import Point
from app.drivers.registers import decode_point, encode_point
from app.errors import DriverError, UserFacingError
from app.i18n import N_, _

FUNCTIONS = {
    1: N_("01 read coils"), 2: N_("02 read discrete inputs"),
    3: N_("03 read holding registers"), 4: N_("04 read input registers"),
    5: N_("05 write one coil"), 6: N_("06 write one register"),
    15: N_("0F write coils"), 16: N_("10 write registers"),
}
READS = (1, 2, 3, 4)
WRITES = (5, 6, 15, 16)
BIT_FUNCTIONS = (1, 2, 5, 15)
#: Registers one value of a type takes (``string``: the whole count is one value).
TYPE_WORDS = {"u16": 1, "s16": 1, "bits": 1, "u32": 2, "s32": 2, "float32": 2,
              "u64": 4, "s64": 4, "float64": 4, "string": 0}
TYPES = tuple(TYPE_WORDS)
WORD_ORDERS = ("big", "little")
MAX_REGISTERS = 125
MAX_BITS = 2000

Shown = int | float | str | bool


# -- pure: encode and decode ----------------------------------------------------------------------
def _codec_point(dtype: str, word_order: str) -> Point:
    """A stand-in profile point, so the profile codec does what it already knows."""
    kind = {"s16": "i16", "s32": "i32"}.get(dtype, dtype)
    return Point("raw", 0, 3, kind, TYPE_WORDS[dtype], word_order=word_order)


def _ordered(words: Sequence[int], word_order: str) -> list[int]:
    return list(words)[::-1] if word_order == "little" else list(words)


def decode(regs: Sequence[int], dtype: str, word_order: str = "big") -> list[Shown]:
    """The values in ``regs`` as ``dtype``: one per ``TYPE_WORDS`` registers (a string: one;
    ``bits``: each register as 16 characters, bit 15 first). Registers left over that do not
    make a whole value are not decoded."""
    _check_type(dtype, word_order)
    if dtype == "string":
        data = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in _ordered(regs, word_order))
        return [data.rstrip(b"\0").decode("latin-1")]
    if dtype == "bits":
        return [f"{w & 0xFFFF:016b}" for w in regs]
    size = TYPE_WORDS[dtype]
    out: list[Shown] = []
    for i in range(0, len(regs) - size + 1, size):
        words = list(regs[i:i + size])
        if dtype in ("u64", "s64", "float64"):
            data = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in _ordered(words, word_order))
            if dtype == "float64":
                out.append(struct.unpack(">d", data)[0])
            else:
                out.append(int.from_bytes(data, "big", signed=dtype == "s64"))
            continue
        value = decode_point(_codec_point(dtype, word_order), words)
        out.append(value if isinstance(value, float) else int(value))  # type: ignore[arg-type]
    return out


def encode(values: Sequence[str], dtype: str, word_order: str = "big") -> list[int]:
    """The registers that write ``values`` (texts as an operator types them: ``123``,
    ``-5``, ``0x1F``, ``1.5``, ``0b1010``) as ``dtype``. A string is one value (Latin-1, padded
    with NUL to whole registers). Raises UserFacingError naming the value that does not fit."""
    _check_type(dtype, word_order)
    if dtype == "string":
        text = ",".join(values)
        try:
            data = text.encode("latin-1")
        except UnicodeEncodeError:
            raise UserFacingError(_("a string register takes Latin-1 characters only")) \
                from None
        if len(data) % 2:
            data += b"\0"
        words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
        return _ordered(words, word_order)
    out: list[int] = []
    for text in values:
        out.extend(_encode_one(text.strip(), dtype, word_order))
    return out


def _encode_one(text: str, dtype: str, word_order: str) -> list[int]:
    bad = UserFacingError(_("{value!r} is not a {type} value").format(value=text, type=dtype))
    if dtype in ("float32", "float64"):
        try:
            number = float(text)
        except ValueError:
            raise bad from None
        if not math.isfinite(number):
            raise bad
        if dtype == "float64":
            data = struct.pack(">d", number)
            words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, 8, 2)]
            return _ordered(words, word_order)
        try:
            return encode_point(_codec_point(dtype, word_order), number)
        except (ValueError, OverflowError):
            raise bad from None
    number = _integer(text, bad)
    if dtype == "bits":
        dtype = "u16"
    size = TYPE_WORDS[dtype]
    bits = 16 * size
    signed = dtype.startswith("s")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= number <= hi:
        raise UserFacingError(_("{value} does not fit a {type} ({lo} to {hi})").format(
            value=text, type=dtype, lo=lo, hi=hi))
    if size == 4:
        raw = number & ((1 << 64) - 1)
        words = [(raw >> (48 - 16 * i)) & 0xFFFF for i in range(4)]
        return _ordered(words, word_order)
    return encode_point(_codec_point(dtype, word_order), number)


def _integer(text: str, bad: UserFacingError) -> int:
    try:
        negative = text.startswith("-")
        body = text[1:] if negative else text
        value = int(body, 0) if body[:2].lower() in ("0x", "0b", "0o") else int(body, 10)
    except ValueError:
        raise bad from None
    return -value if negative else value


def parse_bits(values: Sequence[str]) -> list[bool]:
    """Coil values: 1/0, on/off, true/false."""
    out = []
    for text in values:
        word = text.strip().lower()
        if word in ("1", "on", "true", "yes"):
            out.append(True)
        elif word in ("0", "off", "false", "no"):
            out.append(False)
        else:
            raise UserFacingError(_("{value!r} is not a coil value (1 or 0, on or off)").format(
                value=text))
    return out


def split_values(text: str) -> list[str]:
    """``"1, 2,0x10"`` -> ``["1", "2", "0x10"]``."""
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_number(text: str, what: str, lo: int, hi: int) -> int:
    """An address, id or count as typed: decimal or ``0x`` hex."""
    value = _integer(text.strip(), UserFacingError(_("{what} {value!r} is not a number").format(
        what=what, value=text)))
    if not lo <= value <= hi:
        raise UserFacingError(_("{what} is {lo} to {hi}, not {value}").format(
            what=what, lo=lo, hi=hi, value=value))
    return value


def _check_type(dtype: str, word_order: str) -> None:
    if dtype not in TYPE_WORDS:
        raise UserFacingError(_("{type!r} is not a data type ({known})").format(
            type=dtype, known=", ".join(TYPES)))
    if word_order not in WORD_ORDERS:
        raise UserFacingError(_("the word order is big or little, not {order!r}").format(
            order=word_order))


# -- the request and what came back -------------------------------------------------------------
@dataclass(frozen=True)
class RawRequest:
    """One transaction as the operator asked it."""

    bus: str
    unit: int
    function: int
    start: int
    count: int = 1
    dtype: str = "u16"
    word_order: str = "big"
    values: tuple[str, ...] = ()  # what to write (texts), for 05/06/0F/10

    @property
    def is_write(self) -> bool:
        return self.function in WRITES

    def check(self) -> RawRequest:
        """This request if it can be sent, else UserFacingError saying why."""
        if self.function not in FUNCTIONS:
            raise UserFacingError(_("function {fc} is not one of 01, 02, 03, 04, 05, 06, 0F, 10")
                                  .format(fc=self.function))
        if not 1 <= self.unit <= 247:
            raise UserFacingError(_("the slave id is 1 to 247"))
        if not 0 <= self.start <= 0xFFFF:
            raise UserFacingError(_("the start address is 0 to 65535 (0x0000 to 0xFFFF)"))
        _check_type(self.dtype, self.word_order)
        if self.is_write and not self.values:
            raise UserFacingError(_("a write needs the value(s) to write"))
        if not self.is_write:
            most = MAX_BITS if self.function in BIT_FUNCTIONS else MAX_REGISTERS
            if not 1 <= self.count <= most:
                raise UserFacingError(_("a read takes 1 to {most} at a time").format(most=most))
        if self.start + self.size > 0x10000:
            raise UserFacingError(_("the request runs past address 65535"))
        return self

    @property
    def size(self) -> int:
        """Registers (or coils) the transaction covers."""
        if not self.is_write:
            return self.count
        if self.function in (5, 15):
            return len(self.payload_bits())
        return len(self.payload_registers())

    def payload_registers(self) -> list[int]:
        regs = encode(self.values, self.dtype, self.word_order)
        if self.function == 6 and len(regs) != 1:
            raise UserFacingError(_("function 06 writes one register; a {type} takes {n}: use "
                                    "function 10").format(type=self.dtype, n=len(regs)))
        if len(regs) > 123:
            raise UserFacingError(_("function 10 writes at most 123 registers"))
        return regs

    def payload_bits(self) -> list[bool]:
        bits = parse_bits(self.values)
        if self.function == 5 and len(bits) != 1:
            raise UserFacingError(_("function 05 writes one coil; use 0F for several"))
        if len(bits) > 1968:
            raise UserFacingError(_("function 0F writes at most 1968 coils"))
        return bits

    def as_json(self) -> dict:
        out = {"bus": self.bus, "id": self.unit, "fc": self.function, "start": self.start,
               "count": self.count, "type": self.dtype, "word_order": self.word_order}
        if self.values:
            out["values"] = list(self.values)
        return out


@dataclass
class RawResult:
    """What a transaction read (or wrote, with what was there before and after)."""

    request: RawRequest
    registers: list[int] = field(default_factory=list)  # read, or after a write
    bits: list[bool] = field(default_factory=list)
    before_registers: list[int] | None = None
    before_bits: list[bool] | None = None
    before_problem: str = ""  # why "before" could not be read
    after_problem: str = ""
    elapsed_ms: float = 0.0
    at: float = field(default_factory=time.time)

    @property
    def values(self) -> list[Shown]:
        if self.request.function in BIT_FUNCTIONS:
            return list(self.bits)
        if not self.registers:
            return []
        return decode(self.registers, self.request.dtype, self.request.word_order)

    def rows(self) -> list[tuple[int, str, str]]:
        """(address, registers in hex, value) per value, for a table."""
        req = self.request
        if req.function in BIT_FUNCTIONS:
            return [(req.start + i, "1" if b else "0", _("on") if b else _("off"))
                    for i, b in enumerate(self.bits)]
        size = TYPE_WORDS[req.dtype] or len(self.registers)
        out = []
        for i, value in enumerate(self.values):
            words = self.registers[i * size:(i + 1) * size]
            out.append((req.start + i * size, " ".join(f"{w:04X}" for w in words),
                        show(value, 16 * len(words))))
        return out

    def as_json(self) -> dict:
        out: dict = {"request": self.request.as_json(), "elapsed_ms": round(self.elapsed_ms, 1),
                     "values": [v if not isinstance(v, float) or math.isfinite(v) else str(v)
                                for v in self.values]}
        if self.request.function in BIT_FUNCTIONS:
            out["bits"] = [int(b) for b in self.bits]
        else:
            out["registers"] = list(self.registers)
        if self.request.is_write:
            out["before"] = (self.before_registers if self.before_registers is not None
                             else [int(b) for b in self.before_bits]
                             if self.before_bits is not None else None)
            if self.before_problem:
                out["before_problem"] = self.before_problem
        return out


def show(value: Shown, bits: int = 16) -> str:
    """A value as the tool shows it: integers in decimal and hex (a negative one as the
    ``bits``-wide two's complement the registers hold)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return f"{value} (0x{value & ((1 << bits) - 1):0{bits // 4}X})"
    if isinstance(value, float):
        return f"{value:.7g}"
    return str(value)


# -- on a link ------------------------------------------------------------------------------------
def run_on_link(link: ModbusLink, request: RawRequest) -> RawResult:
    """Carry out ``request`` on an open link (no database, no audit): what the operation does
    once it holds the bus. Driver errors (silence, a corrupt reply, an exception) raise."""
    req = request.check()
    result = RawResult(req)
    started = time.perf_counter()
    if req.function in (1, 2):
        result.bits = link.read_bits(req.unit, req.function, req.start, req.count)
    elif req.function in (3, 4):
        result.registers = link.read_registers(req.unit, req.function, req.start, req.count)
    elif req.function in (5, 15):
        bits = req.payload_bits()
        result.before_bits = _try(result, "before", link.read_bits, req.unit, 1, req.start,
                                  len(bits))
        link.write_bits(req.unit, req.start, bits, req.function)
        result.bits = _try(result, "after", link.read_bits, req.unit, 1, req.start,
                           len(bits)) or []
    else:
        regs = req.payload_registers()
        result.before_registers = _try(result, "before", link.read_registers, req.unit, 3,
                                       req.start, len(regs))
        link.write_registers(req.unit, req.start, regs, req.function)
        result.registers = _try(result, "after", link.read_registers, req.unit, 3,
                                req.start, len(regs)) or []
        if not result.registers:
            result.registers = regs  # what was written, when it cannot be read back
    result.elapsed_ms = (time.perf_counter() - started) * 1000
    return result


def _try(result: RawResult, when: str, read, *args):
    """A read around a write: None (and why) when the meter cannot be read there."""
    try:
        return read(*args)
    except DriverError as exc:
        setattr(result, f"{when}_problem", str(exc))
        return None


# -- the operation --------------------------------------------------------------------------------
def transact(operator: Operator, request: RawRequest,
             progress: Progress | None = None) -> RawResult:
    """Take the request's bus from its poller, carry the request out, give the bus back; a
    write is audited (``raw_write``) with the registers before and after."""
    require(operator, Permission.RAW_REGISTERS)
    req = request.check()
    progress = progress or quiet()
    bus = bus_access.find_bus(req.bus)
    progress.step(0, 2, _("taking bus {bus}").format(bus=bus.name))
    with bus_access.taken_bus(operator, bus, "raw", permission=Permission.RAW_REGISTERS) as taken:
        progress.step(1, 2, _(FUNCTIONS[req.function]))
        try:
            result = run_on_link(taken.link, req)
        except DriverError as exc:
            if req.is_write:
                # A write whose answer was lost may still have landed: that is recorded too.
                with act(operator, Permission.RAW_REGISTERS, "raw_write",
                         target=f"{bus.name}/{req.unit}") as a:
                    a.after = {**req.as_json(), "error": str(exc)}
            raise UserFacingError(_("slave {id} on bus {bus}: {problem}").format(
                id=req.unit, bus=bus.name, problem=exc)) from None
    if req.is_write:  # recorded after the I/O: the write transaction is brief
        with act(operator, Permission.RAW_REGISTERS, "raw_write",
                 target=f"{bus.name}/{req.unit}") as a:
            a.before = result.as_json().get("before") if (
                result.before_registers is not None or result.before_bits is not None) \
                else {"unreadable": result.before_problem}
            a.after = {**req.as_json(),
                       "read_back": result.as_json().get("registers", result.as_json().get(
                           "bits"))}
    progress.step(2, 2)
    return result

