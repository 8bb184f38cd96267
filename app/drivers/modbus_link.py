"""One bus's Modbus link: serial RTU, Modbus-TCP or RTU over TCP, behind one small interface.

A ``ModbusLink`` belongs to the one thread that polls its bus (a pymodbus client is not safe to
share between threads). It reads a meter's values into a typed :class:`MeterValues` (contiguous
registers merged into as few transactions as the profile allows) and writes controls. Every
failure surfaces as a typed :mod:`app.errors` error, never as a crash:

* ``NoResponse``: the meter stayed silent until the timeout;
* ``CrcError``: bytes came back but no valid frame could be made of them;
* ``MeterException``: the meter answered with a Modbus exception;
* ``LinkDown``: the port or gateway itself is unusable.

Nothing a meter sends raises past the link: a value that cannot be decoded, is not a number or is
outside its point's plausible range is left out of the read and reported (``MeterRead.bad``).
With a meter's ``MeterCapability``, a read the meter refuses (exception 1, 2 or 3) is split until
the refused points are found; those are learned and left out, and everything else is read.

Timeouts follow the link: on a 9600-baud bus a silent meter costs about a quarter of a second,
not pymodbus's default of 3 s times 3 retries. pymodbus closes a TCP connection after a few
consecutive failures (by design, pymodbus issue 3012), which behind an RTU-over-TCP gateway would
cut off the healthy meters behind it; this link resets that counter after each failure and, if the
connection was closed all the same, reconnects before the next transaction.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlencode, urlsplit

from app.drivers.capability import MISSING_CODES, MeterCapability
from app.drivers.frames import FrameTap
from app.drivers.meter_values import MeterValues, values_from_points
from app.drivers.profile import MeterProfile
from app.drivers.registers import (
    BadValue,
    ReadBlock,
    Value,
    block_of,
    decode_checked,
    encode_point,
    plan_reads,
    split_block,
)
from app.errors import (
    ConfigError,
    CrcError,
    DriverError,
    LinkDown,
    MeterException,
    NoResponse,
    NotSupported,
)

log = logging.getLogger("voltkeeper.drivers.modbus")
# pymodbus logs every timeout at ERROR; our typed errors say it once, in our words.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

TRANSPORTS = ("rtu", "tcp", "rtu-tcp")
#: Time a meter may take to start answering, on top of the wire time (the DDSY1352 answers in
#: about 20 ms; slower meters exist).
RESPONSE_ALLOWANCE_S = 0.12
#: Largest frame the link waits for when it computes a timeout: a 64-register read.
_TIMEOUT_FRAME_BYTES = 8 + 5 + 2 * 64 + 7


@dataclass(frozen=True)
class LinkConfig:
    """Where a bus is and how to talk on it."""

    transport: str
    device: str = ""  # serial device path for "rtu"
    host: str = ""
    port: int = 502
    baud: int = 9600
    parity: str = "N"
    stop_bits: int = 1
    timeout_s: float | None = None  # None: derived from the link
    retries: int = 1

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"unknown transport {self.transport!r} "
                              f"(known: {', '.join(TRANSPORTS)})")
        if self.transport == "rtu" and not self.device:
            raise ConfigError("a serial (rtu) link needs a device path")
        if self.transport != "rtu" and not self.host:
            raise ConfigError(f"a {self.transport} link needs a host")
        if self.parity not in ("N", "E", "O"):
            raise ConfigError(f"parity must be N, E or O, not {self.parity!r}")

    @property
    def char_time_s(self) -> float:
        return (10 + (0 if self.parity == "N" else 1) + (self.stop_bits - 1)) / self.baud

    @property
    def effective_timeout_s(self) -> float:
        """The timeout for one transaction: explicit, or the wire time of the largest frame
        plus the meter's allowance (serial and RTU-over-TCP), or 1 s on Modbus-TCP."""
        if self.timeout_s is not None:
            return self.timeout_s
        if self.transport == "tcp":
            return 1.0
        return round(_TIMEOUT_FRAME_BYTES * self.char_time_s + RESPONSE_ALLOWANCE_S, 3)

    def url(self) -> str:
        """A one-line form: ``rtu:///dev/ttyUSB0?baud=9600&parity=N``, ``tcp://host:502``."""
        query: dict[str, str | int | float] = {}
        if self.transport != "tcp" or self.baud != 9600:
            query["baud"] = self.baud
        if self.parity != "N":
            query["parity"] = self.parity
        if self.stop_bits != 1:
            query["stop_bits"] = self.stop_bits
        if self.timeout_s is not None:
            query["timeout"] = self.timeout_s
        if self.retries != 1:
            query["retries"] = self.retries
        tail = f"?{urlencode(query)}" if query else ""
        if self.transport == "rtu":
            return f"rtu://{self.device}{tail}"
        return f"{self.transport}://{self.host}:{self.port}{tail}"

    @classmethod
    def from_url(cls, url: str) -> LinkConfig:
        parts = urlsplit(url)
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            common = dict(
                baud=int(q.get("baud", 9600)), parity=q.get("parity", "N").upper(),
                stop_bits=int(q.get("stop_bits", 1)),
                timeout_s=float(q["timeout"]) if "timeout" in q else None,
                retries=int(q.get("retries", 1)),
            )
            if parts.scheme == "rtu":
                # a Windows port: rtu://COM3 (a "host") or rtu:///COM3 (a path)
                device = parts.path or parts.netloc
                if re.fullmatch(r"/COM\d+", device, re.IGNORECASE):
                    device = device[1:]
                return cls("rtu", device=device, **common)
            if parts.scheme in ("tcp", "rtu-tcp"):
                return cls(parts.scheme, host=parts.hostname or "", port=parts.port or 502,
                           **common)
        except ValueError as exc:
            raise ConfigError(f"bad link address {url!r}: {exc}") from None
        raise ConfigError(f"bad link address {url!r}: use rtu://DEVICE, tcp://HOST:PORT "
                          "or rtu-tcp://HOST:PORT")


@dataclass
class MeterRead:
    """One read of a meter: its values, and what the read learned about the meter."""

    values: MeterValues
    refused: list[str] = field(default_factory=list)  # points the meter refused (now missing)
    found: list[str] = field(default_factory=list)  # missing points that answered again
    bad: list[BadValue] = field(default_factory=list)  # values left out: (point, why)


@dataclass
class LinkCounters:
    transactions: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    exceptions: int = 0
    reconnects: int = 0


class ModbusLink:
    """A bus's Modbus master. Use from one thread; ``with ModbusLink(cfg) as link: ...``."""

    def __init__(self, config: LinkConfig) -> None:
        self.config = config
        self.counters = LinkCounters()
        self.last_latency_s = 0.0
        self._client = None
        self._rx_bytes = 0
        #: Who wants this bus's frames (the frame monitor's feed); None: nobody, no cost.
        self.frames: FrameTap | None = None

    # -- connection --------------------------------------------------------------------------
    def _make_client(self):
        from pymodbus import FramerType
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient

        cfg = self.config
        timeout = cfg.effective_timeout_s
        common = dict(timeout=timeout, retries=0, trace_packet=self._trace_packet)
        if cfg.transport == "rtu":
            return ModbusSerialClient(cfg.device, framer=FramerType.RTU, baudrate=cfg.baud,
                                      parity=cfg.parity, stopbits=cfg.stop_bits, **common)
        framer = FramerType.RTU if cfg.transport == "rtu-tcp" else FramerType.SOCKET
        return ModbusTcpClient(cfg.host, port=cfg.port, framer=framer, **common)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx_bytes += len(data)
        tap = self.frames  # read once: another thread may take it away meanwhile
        if tap is not None:
            tap.packet(sending, data)
        return data

    def _framed(self, outcome: str) -> None:
        """Tell the frame tap, if any, how the transaction ended (see ``FrameTap.done``)."""
        tap = self.frames
        if tap is not None:
            tap.done(outcome)

    def open(self) -> None:
        """Open the port or connect to the gateway. Raises LinkDown."""
        if self._client is None:
            self._client = self._make_client()
        if not self._client.connected and not self._client.connect():
            raise LinkDown(f"cannot open {self.config.url()}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> ModbusLink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._client is not None and bool(self._client.connected)

    # -- transactions ------------------------------------------------------------------------
    def _keep_connection(self) -> None:
        """Undo pymodbus's count towards closing the connection after failures."""
        ctx = getattr(self._client, "ctx", None) or getattr(self._client, "transaction", None)
        if ctx is not None and hasattr(ctx, "max_until_disconnect"):
            ctx.count_until_disconnect = ctx.max_until_disconnect

    def _discard_stale(self) -> None:
        """Drop bytes already waiting on a TCP link before a new request.

        A reply that came after its timeout stays in the socket; with RTU framing over TCP
        nothing ties it to its request (no transaction id), so the next request to the same
        meter would take it for its own answer and decode another block's registers. The
        serial client flushes its input before sending; this does the same for sockets.
        """
        sock = getattr(self._client, "socket", None)
        if self.config.transport == "rtu" or sock is None:
            return
        stale = 0
        try:
            sock.setblocking(False)
            while chunk := sock.recv(4096):
                stale += len(chunk)
            self._client.close()  # b"": the gateway hung up; reconnect before sending
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._client.close()
        if stale:
            log.debug("%s: dropped %d stale bytes", self.config.url(), stale)

    def _transaction(self, unit: int, what: str, call):
        """Run one request with the link's retries; map every failure to a typed error."""
        from pymodbus.exceptions import ConnectionException, ModbusException

        last: DriverError | None = None
        for _attempt in range(self.config.retries + 1):
            self._discard_stale()
            if self._client is None or not self._client.connected:
                if self._client is not None:
                    self.counters.reconnects += 1
                self.open()
            self._rx_bytes = 0
            started = time.perf_counter()
            self.counters.transactions += 1
            try:
                response = call(self._client)
            except ConnectionException as exc:
                self._framed("link")
                self.close()
                raise LinkDown(f"{self.config.url()}: {exc}") from None
            except ModbusException as exc:
                self._keep_connection()
                self._framed("crc" if self._rx_bytes else "timeout")
                if self._rx_bytes:
                    self.counters.crc_errors += 1
                    last = CrcError(f"meter {unit}: {what}: corrupt reply "
                                    f"({self._rx_bytes} bytes, no valid frame)")
                else:
                    self.counters.timeouts += 1
                    last = NoResponse(f"meter {unit}: {what}: no answer in "
                                      f"{self.config.effective_timeout_s:.3f} s")
                log.debug("%s (%s)", last, exc)
                continue
            except OSError as exc:
                self._framed("link")
                self.close()
                raise LinkDown(f"{self.config.url()}: {exc}") from None
            self._framed("exception" if response.isError() else "")
            self.last_latency_s = time.perf_counter() - started
            if response.isError():
                self.counters.exceptions += 1
                code = int(getattr(response, "exception_code", 0) or 0)
                raise MeterException(f"meter {unit}: {what}: Modbus exception {code}", code)
            return response
        assert last is not None
        raise last

    def read_registers(self, unit: int, function: int, start: int, count: int) -> list[int]:
        """Read ``count`` registers with function 3 (holding) or 4 (input)."""
        if function == 3:
            def call(c):
                return c.read_holding_registers(start, count=count, device_id=unit)
        elif function == 4:
            def call(c):
                return c.read_input_registers(start, count=count, device_id=unit)
        else:
            raise ValueError(f"read function {function}")
        response = self._transaction(unit, f"read {count} at {start}", call)
        regs = list(response.registers)
        if len(regs) != count:
            # A reply of another length answers another request (a late one): never decode it.
            self.counters.crc_errors += 1
            raise CrcError(f"meter {unit}: read at {start}: {len(regs)} registers, wanted {count}")
        return regs[:count]

    def write_registers(self, unit: int, start: int, values: list[int], function: int = 16) -> None:
        if function == 6:
            if len(values) != 1:
                raise ValueError("function 6 writes one register")

            def call(c):
                return c.write_register(start, values[0], device_id=unit)
        else:
            def call(c):
                return c.write_registers(start, values, device_id=unit)
        self._transaction(unit, f"write {len(values)} at {start}", call)

    def read_bits(self, unit: int, function: int, start: int, count: int) -> list[bool]:
        """Read ``count`` coils (function 1) or discrete inputs (function 2)."""
        if function == 1:
            def call(c):
                return c.read_coils(start, count=count, device_id=unit)
        elif function == 2:
            def call(c):
                return c.read_discrete_inputs(start, count=count, device_id=unit)
        else:
            raise ValueError(f"bit read function {function}")
        response = self._transaction(unit, f"read {count} bits at {start}", call)
        bits = [bool(b) for b in response.bits]
        if len(bits) < count:
            self.counters.crc_errors += 1
            raise CrcError(f"meter {unit}: bit read at {start}: {len(bits)} bits, wanted {count}")
        return bits[:count]

    def write_bits(self, unit: int, start: int, values: list[bool], function: int = 15) -> None:
        """Write coils: one with function 5, several with function 15."""
        if function == 5:
            if len(values) != 1:
                raise ValueError("function 5 writes one coil")

            def call(c):
                return c.write_coil(start, bool(values[0]), device_id=unit)
        else:
            def call(c):
                return c.write_coils(start, [bool(v) for v in values], device_id=unit)
        self._transaction(unit, f"write {len(values)} bits at {start}", call)

    # -- meter-level -------------------------------------------------------------------------
    def read_blocks(self, unit: int, blocks: Iterable[ReadBlock],
                    bad: list[BadValue] | None = None) -> dict[str, Value | bool]:
        """Read and decode the blocks. A value that cannot be what the meter measured is left
        out (and named in ``bad``, or logged)."""
        decoded: dict[str, Value | bool] = {}
        refused: list[BadValue] = [] if bad is None else bad
        for block in blocks:
            regs = self.read_registers(unit, block.function, block.start, block.count)
            decoded.update(decode_checked(block, regs, refused))
        if bad is None and refused:
            log.warning("meter %s: values left out: %s", unit,
                        "; ".join(f"{n}: {why}" for n, why in refused))
        return decoded

    def read_meter(self, unit: int, profile: MeterProfile,
                   groups: tuple[str, ...] = ("fast",),
                   capability: MeterCapability | None = None) -> MeterValues:
        """Read the profile's points of ``groups`` into a typed record."""
        return self.read(unit, profile, groups, capability).values

    def read(self, unit: int, profile: MeterProfile, groups: tuple[str, ...] = ("fast",),
             capability: MeterCapability | None = None, *, recheck: bool = False) -> MeterRead:
        """Read the profile's points of ``groups``.

        Without ``capability`` a refused read raises ``MeterException``. With it, the points
        the meter is known to lack are left out, a refused read is split until the refused
        points are found (learned in ``capability``), and with ``recheck`` the missing points
        are tried again one by one. Raises only for the link (``LinkDown``), silence
        (``NoResponse``), corrupt replies (``CrcError``) and other Modbus exceptions."""
        out = MeterRead(MeterValues(read_at=0.0))
        decoded: dict[str, Value | bool] = {}
        if capability is None:
            decoded = self.read_blocks(unit, plan_reads(profile, profile.poll_points(groups)),
                                       out.bad)
        else:
            for block in capability.plan(profile, profile.poll_points(groups)):
                self._read_learning(unit, block, capability, decoded, out)
            if recheck:
                self._recheck(unit, profile, capability, decoded, out)
            if not decoded and capability.missing and not out.bad:
                raise MeterException(f"meter {unit}: refuses every point of {profile.model} "
                                     f"it was asked for ({', '.join(sorted(capability.missing))})"
                                     ": is it that model?", 2)
        out.values = values_from_points(decoded, _units(profile), time.time(), out.bad)
        return out

    def _read_learning(self, unit: int, block: ReadBlock, capability: MeterCapability,
                       decoded: dict[str, Value | bool], out: MeterRead) -> bool:
        """Read one block; on a refusal, its parts. True if some point of it is missing."""
        try:
            regs = self.read_registers(unit, block.function, block.start, block.count)
        except MeterException as exc:
            if exc.code not in MISSING_CODES:
                raise
            if len(block.points) == 1:
                name = block.points[0].name
                log.info("meter %s refuses %s (%s): read without it", unit, name, exc)
                capability.refuse(name, time.time())
                out.refused.append(name)
                return True
            missing = False
            for part in split_block(block):
                missing |= self._read_learning(unit, part, capability, decoded, out)
            if not missing:
                capability.escalate(block)
            return missing
        decoded.update(decode_checked(block, regs, out.bad))
        return False

    def _recheck(self, unit: int, profile: MeterProfile, capability: MeterCapability,
                 decoded: dict[str, Value | bool], out: MeterRead) -> None:
        """Try each missing (readable) point alone: one that answers is missing no more."""
        for name in sorted(capability.missing):
            point = profile.points.get(name)
            if point is None:
                capability.found(name)  # the profile no longer has it
                continue
            if point.poll == "never":
                continue  # write-only: learned from a refused write, kept until replaced
            block = block_of([point])
            try:
                regs = self.read_registers(unit, block.function, block.start, block.count)
            except MeterException as exc:
                if exc.code not in MISSING_CODES:
                    raise
                continue
            except (NoResponse, CrcError):
                continue  # not an answer either way: try again next time
            log.info("meter %s answers for %s again", unit, name)
            capability.found(name)
            out.found.append(name)
            decoded.update(decode_checked(block, regs, out.bad))
        capability.checked(time.time())

    def read_points(self, unit: int, profile: MeterProfile,
                    names: Iterable[str]) -> dict[str, Value | bool]:
        points = []
        for name in names:
            found = profile.find(name)
            if found is None:
                raise NotSupported(f"{profile.model} has no point {name!r}")
            points.append(found[0])
        return self.read_blocks(unit, plan_reads(profile, set(points)))

    def write_point(self, unit: int, profile: MeterProfile, name: str, value: Value) -> None:
        point = profile.points.get(name)
        if point is None or not point.writable:
            raise NotSupported(f"{profile.model} cannot write {name!r}")
        self.write_registers(unit, point.address, encode_point(point, value),
                             point.write_function)

    def control(self, unit: int, profile: MeterProfile, name: str,
                value: Value | None = None) -> None:
        """Carry out a control (trip, close, keep_power_on, power_limit, recharge, ...)."""
        control = profile.controls.get(name)
        if control is None:
            raise NotSupported(f"{profile.model} ({profile.kind}) does not support {name!r}")
        if control.state is not None:
            self.write_point(unit, profile, control.point, control.state)
        else:
            if value is None:
                raise ValueError(f"control {name!r} needs a value")
            self.write_point(unit, profile, control.point, value)

    def with_timeout(self, timeout_s: float, retries: int | None = None) -> LinkConfig:
        return replace(self.config, timeout_s=timeout_s,
                       retries=self.config.retries if retries is None else retries)


def _units(profile: MeterProfile) -> dict[str, str]:
    return {name: p.unit for name, p in profile.points.items()}
