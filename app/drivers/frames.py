"""Frames on a bus, as the frame monitor shows them: the raw bytes, decoded where they can be.

A ``ModbusLink`` with a ``FrameTap`` (``link.frames``) hands the tap every packet pymodbus sends
and receives, and the outcome of each transaction; the tap turns them into :class:`Frame`
records (time in ms, bus, direction, bytes, slave id, function code, error) and passes each to
whoever listens (the frame feed, ``core/frame_feed.py``). Without a tap the link does nothing
more than before.

Decoding is pure: ``parse`` splits an RTU frame (slave, PDU, CRC checked) or a Modbus-TCP (MBAP)
frame; ``describe`` says what a frame means, by the meter's profile where it knows the registers
(``read 0x000B x2: voltage, current``; the answer: ``meter 3-214: voltage 229.8 V, current
1.20 A``). An error is one of ``ERROR_KINDS``: a CRC that does not check (or bytes that make no
frame), a request that got no answer (``timeout``), a Modbus exception, the link failing.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from app.drivers.profile import MeterProfile, Point
from app.drivers.registers import decode_point
from app.i18n import N_, _

DIRECTIONS = ("tx", "rx")
#: What can be wrong with a frame ("" : nothing).
ERROR_KINDS = ("", "crc", "timeout", "exception", "link")
#: How many frames a bus keeps (the monitor's buffer).
RING_FRAMES = 5000

#: Modbus exception codes and what they say (the Modbus application protocol, 7).
EXCEPTION_TEXT = {
    1: N_("illegal function"), 2: N_("illegal data address"), 3: N_("illegal data value"),
    4: N_("server device failure"), 5: N_("acknowledge"), 6: N_("server device busy"),
    8: N_("memory parity error"), 10: N_("gateway path unavailable"),
    11: N_("gateway target device failed to respond"),
}
ERROR_TEXT = {"crc": N_("CRC error"), "timeout": N_("no answer (timeout)"),
              "exception": N_("Modbus exception"), "link": N_("link failed")}

#: Frames are timed on the monotonic clock, shown as wall time: t = wall at start + elapsed.
_WALL0, _MONO0 = time.time(), time.perf_counter()


def now() -> float:
    """Wall-clock seconds that never run backwards (ms resolution is what is shown)."""
    return _WALL0 + (time.perf_counter() - _MONO0)


# -- CRC and framing ------------------------------------------------------------------------------
def crc16(data: bytes) -> int:
    """The Modbus RTU CRC of ``data`` (sent low byte first): pymodbus's own, which gives it as
    the two bytes on the wire read high first."""
    from pymodbus.framer.rtu import FramerRTU

    return int.from_bytes(FramerRTU.compute_CRC(data).to_bytes(2, "big"), "little")


def rtu_frame(body: bytes) -> bytes:
    """``body`` (slave id and PDU) with its CRC appended."""
    return body + crc16(body).to_bytes(2, "little")


def mbap_frame(tid: int, unit: int, pdu: bytes) -> bytes:
    """A Modbus-TCP frame: the MBAP header (transaction id, protocol 0, length, unit) and PDU."""
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


@dataclass(frozen=True)
class Parsed:
    """A frame taken apart. ``valid``: a whole frame whose CRC (RTU) or length (MBAP) checks."""

    slave: int | None
    function: int | None
    pdu: bytes
    valid: bool
    problem: str = ""  # why it is not valid, in words


def parse(data: bytes, framing: str = "rtu") -> Parsed:
    """Split ``data`` as an RTU frame (``framing`` "rtu") or a Modbus-TCP frame ("tcp")."""
    if framing == "tcp":
        if len(data) < 8:
            return Parsed(data[6] if len(data) > 6 else None, None, b"", False,
                          _("short frame ({n} bytes)").format(n=len(data)))
        _tid, proto, length, unit = struct.unpack(">HHHB", data[:7])
        pdu = data[7:]
        if proto != 0:
            return Parsed(unit, pdu[0], pdu, False, _(
                "protocol id {proto}, not Modbus (0)").format(proto=f"0x{proto:04X}"))
        ok = length == len(data) - 6
        return Parsed(unit, pdu[0], pdu, ok, "" if ok else _(
            "MBAP length {length} does not match {n} bytes").format(length=length,
                                                                     n=len(data) - 6))
    if len(data) < 4:
        return Parsed(data[0] if data else None, data[1] if len(data) > 1 else None,
                      data[1:], False, _("short frame ({n} bytes)").format(n=len(data)))
    got = int.from_bytes(data[-2:], "little")
    want = crc16(data[:-2])
    ok = got == want
    return Parsed(data[0], data[1], data[1:-2], ok, "" if ok else _(
        "CRC {got:04X}, should be {want:04X}").format(got=got, want=want))


# -- the record -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """One frame on a bus. ``request``: for an answer, the request it answers (its meaning
    depends on it: a read's answer does not say which registers it holds)."""

    t: float  # wall-clock seconds (see ``now``)
    bus: str
    direction: str  # "tx" (station to meter) or "rx"
    data: bytes
    slave: int | None = None
    function: int | None = None
    error: str = ""  # one of ERROR_KINDS
    framing: str = "rtu"  # "rtu" or "tcp" (MBAP)
    request: bytes = b""

    @property
    def exception_code(self) -> int | None:
        p = parse(self.data, self.framing)
        if p.function is not None and p.function & 0x80 and len(p.pdu) >= 2:
            return p.pdu[1]
        return None

    def to_json(self) -> dict:
        out: dict = {"t": round(self.t, 4), "bus": self.bus, "dir": self.direction,
                     "hex": self.data.hex(), "slave": self.slave, "fc": self.function,
                     "error": self.error, "framing": self.framing}
        if self.request:
            out["req"] = self.request.hex()
        return out

    @classmethod
    def from_json(cls, d: dict) -> Frame:
        return cls(float(d["t"]), str(d["bus"]), str(d["dir"]), bytes.fromhex(d["hex"]),
                   d.get("slave"), d.get("fc"), str(d.get("error", "")),
                   str(d.get("framing", "rtu")), bytes.fromhex(d.get("req", "")))


def make_frame(t: float, bus: str, direction: str, data: bytes, framing: str = "rtu",
               error: str = "", request: bytes = b"") -> Frame:
    """A frame with its slave id and function code decoded, and its error: the one given
    (the transaction's outcome), else a CRC that does not check, else an exception answer."""
    p = parse(data, framing)
    if not error and data and not p.valid:
        error = "crc"
    if not error and direction == "rx" and p.valid and p.function is not None \
            and p.function & 0x80:
        error = "exception"
    return Frame(t, bus, direction, bytes(data), p.slave, p.function, error, framing, request)


class FrameRing:
    """The last ``size`` frames of a bus; thread-safe. ``total``: every frame ever added."""

    def __init__(self, size: int = RING_FRAMES) -> None:
        self._frames: deque[Frame] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.total = 0

    def add(self, frame: Frame) -> None:
        with self._lock:
            self._frames.append(frame)
            self.total += 1

    def extend(self, frames: Iterable[Frame]) -> None:
        with self._lock:
            for f in frames:
                self._frames.append(f)
                self.total += 1

    def frames(self) -> list[Frame]:
        with self._lock:
            return list(self._frames)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)


# -- capture --------------------------------------------------------------------------------------
@dataclass
class FrameTap:
    """What a ``ModbusLink`` tells about its frames (called in the bus's thread only).

    ``packet`` gets what pymodbus traces (a request as sent; an answer as the receive buffer
    grows, or anew after the framer threw garbage away); ``done`` the transaction's outcome.
    Then the request and its answer go to ``emit``: the request flagged ``timeout`` when no
    byte came back, the answer flagged ``crc`` or ``exception``."""

    bus: str
    emit: Callable[[Frame], None]
    framing: str = "rtu"
    clock: Callable[[], float] = now
    _tx: tuple[float, bytes] | None = field(default=None, repr=False)
    _rx_t: float = 0.0
    _rx: bytearray = field(default_factory=bytearray, repr=False)
    _rx_seen: bytes = b""

    def packet(self, sending: bool, data: bytes) -> None:
        t = self.clock()
        if sending:
            if self._tx is not None:  # a request whose outcome never came: show it as sent
                self.done("")
            self._tx = (t, bytes(data))
            self._rx.clear()
            self._rx_seen = b""
            return
        if not self._rx:
            self._rx_t = t
        if data.startswith(self._rx_seen):
            self._rx += data[len(self._rx_seen):]
        else:  # the framer dropped what it had: this buffer is new bytes
            self._rx += data
        self._rx_seen = bytes(data)

    def done(self, outcome: str) -> None:
        """The transaction ended: "" (an answer), "timeout", "crc", "exception" or "link"."""
        tx, self._tx = self._tx, None
        rx, self._rx = bytes(self._rx), bytearray()
        self._rx_seen = b""
        if tx is None:
            return  # the tap came in the middle of a transaction
        t, request = tx
        tx_error = outcome if outcome == "timeout" or (outcome == "link" and not rx) else ""
        try:
            self.emit(make_frame(t, self.bus, "tx", request, self.framing, tx_error))
            if rx:
                rx_error = outcome if outcome in ("crc", "exception", "link") else ""
                self.emit(make_frame(self._rx_t, self.bus, "rx", rx, self.framing, rx_error,
                                     request))
        except Exception:  # a listener's fault must never be the bus's
            pass


# -- meaning --------------------------------------------------------------------------------------
def exception_text(code: int) -> str:
    label = EXCEPTION_TEXT.get(code)
    return _(label) if label else _("unknown exception")


def error_text(kind: str) -> str:
    label = ERROR_TEXT.get(kind)
    return _(label) if label else kind


def _names(profile: MeterProfile | None, function: int, start: int, count: int) -> list[str]:
    if profile is None:
        return []
    end = start + count
    return [p.name for p in sorted(profile.points.values(), key=lambda p: p.address)
            if p.function == function and p.address < end and p.end > start]


def _write_names(profile: MeterProfile | None, start: int, count: int) -> list[Point]:
    if profile is None:
        return []
    end = start + count
    return [p for p in sorted(profile.points.values(), key=lambda p: p.address)
            if p.writable and p.address >= start and p.end <= end]


def _show(point: Point, regs: list[int]) -> str:
    try:
        value = decode_point(point, regs)
    except (ValueError, ArithmeticError, struct.error):
        return "?"
    if point.bits and isinstance(value, int):
        return f"0x{value:0{4 * point.count}X}"
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, bytes):
        text = value.hex()
    else:
        text = str(value)
    return f"{text} {point.unit}" if point.unit and not point.states else text


def _values(profile: MeterProfile | None, start: int, regs: list[int],
            only_writable: bool = False, sep: str = " ") -> list[str]:
    if profile is None:
        return []
    end = start + len(regs)
    out = []
    for p in sorted(profile.points.values(), key=lambda p: p.address):
        if p.address < start or p.end > end or (only_writable and not p.writable):
            continue
        if not only_writable and p.function not in (3, 4):
            continue
        off = p.address - start
        out.append(f"{p.name}{sep}{_show(p, regs[off:off + p.count])}")
    return out


def _registers(data: bytes) -> list[int]:
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) - 1, 2)]


def _join(items: list[str], most: int = 8) -> str:
    if len(items) > most:
        return ", ".join(items[:most]) + ", …"
    return ", ".join(items)


def _with(head: str, items: list[str]) -> str:
    return f"{head}: {_join(items)}" if items else head


def describe(frame: Frame, profile: MeterProfile | None = None, meter: str = "") -> str:
    """What ``frame`` means: the request (``read 0x000B x2: voltage, current``) or the answer
    (``meter 3-214: voltage 229.8 V, current 1.20 A``), named by ``profile``'s registers where
    it knows them; what is wrong with it when something is."""
    p = parse(frame.data, frame.framing)
    if not frame.data:
        return error_text(frame.error) if frame.error else ""
    if not p.valid:
        return _("corrupt frame: {problem}").format(problem=p.problem)
    text = _pdu_meaning(frame, p, profile)
    if frame.direction == "rx" and meter:
        text = _("meter {meter}: {text}").format(meter=meter, text=text)
    if frame.error in ("timeout", "crc", "link"):
        text = f"{error_text(frame.error)}: {text}"
    return text


def _pdu_meaning(frame: Frame, p: Parsed, profile: MeterProfile | None) -> str:
    fc, pdu = p.function or 0, p.pdu
    if fc & 0x80:
        code = pdu[1] if len(pdu) > 1 else 0
        return _("exception {code}: {text}").format(code=code, text=exception_text(code))
    request = parse(frame.request, frame.framing).pdu if frame.request else b""
    if frame.direction == "tx":
        return _request_meaning(fc, pdu, profile)
    if fc in (3, 4):
        if len(request) >= 5 and request[0] == fc:
            start = int.from_bytes(request[1:3], "big")
            regs = _registers(pdu[2:2 + (pdu[1] if len(pdu) > 1 else 0)])
            values = _values(profile, start, regs)
            if values:
                return _join(values)
            return _("{count} registers from {start}").format(count=len(regs),
                                                              start=f"0x{start:04X}")
        return _("{count} registers").format(count=(pdu[1] // 2) if len(pdu) > 1 else 0)
    if fc in (1, 2):
        return _("{count} bytes of bits").format(count=pdu[1] if len(pdu) > 1 else 0)
    if fc in (5, 6, 15, 16) and len(pdu) >= 5:
        start = int.from_bytes(pdu[1:3], "big")
        if fc in (5, 6):
            return _("written {start}").format(start=f"0x{start:04X}")
        count = int.from_bytes(pdu[3:5], "big")
        names = [pt.name for pt in _write_names(profile, start, count)]
        return _with(_("written {start} x{count}").format(start=f"0x{start:04X}", count=count),
                     names)
    return _("function {fc}").format(fc=f"0x{fc:02X}")


def _request_meaning(fc: int, pdu: bytes, profile: MeterProfile | None) -> str:
    if len(pdu) < 5:
        return _("function {fc}").format(fc=f"0x{fc:02X}")
    start = int.from_bytes(pdu[1:3], "big")
    word = int.from_bytes(pdu[3:5], "big")
    at = f"0x{start:04X}"
    if fc in (3, 4):
        return _with(_("read {start} x{count}").format(start=at, count=word),
                     _names(profile, fc, start, word))
    if fc in (1, 2):
        return _("read bits {start} x{count}").format(start=at, count=word)
    if fc == 5:
        return _("write coil {start} = {state}").format(
            start=at, state="ON" if word == 0xFF00 else "OFF")
    if fc == 6:
        return _with(_("write {start} = {value}").format(start=at, value=f"0x{word:04X}"),
                     _values(profile, start, [word], only_writable=True, sep=" = "))
    if fc == 15:
        return _("write bits {start} x{count}").format(start=at, count=word)
    if fc == 16:
        regs = _registers(pdu[6:6 + (pdu[5] if len(pdu) > 5 else 0)])
        return _with(_("write {start} x{count}").format(start=at, count=word),
                     _values(profile, start, regs, only_writable=True, sep=" = "))
    return _("function {fc}").format(fc=f"0x{fc:02X}")
