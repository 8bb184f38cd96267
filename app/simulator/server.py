"""The simulator's wire: one asyncio loop serving every bus over Modbus-TCP, RTU over TCP or a pty.

Each bus is half duplex, as RS485 is: one transaction at a time, whatever the number of
connections to it (an ``asyncio.Lock`` per bus). With a wire baud rate, every transaction holds
the bus for the time the real wire would take (request, 3.5-character gap, the meter's
turnaround, response, gap), measured against absolute deadlines so sleeps do not drift; a pty or
loopback TCP then behaves, in time, like a 9600-baud line. A silent meter holds the bus only
for the request, as on a real bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from app.simulator.campus import Reply, SimCampus
from app.simulator.protocol import (
    corrupt_crc,
    crc_ok,
    garble_mbap,
    mbap_frame,
    rtu_frame,
    rtu_request_length,
)

TRANSPORTS = ("tcp", "rtu-tcp", "pty")
#: Silence after which a partial or unknown RTU frame is taken as complete (or dropped).
IDLE_S = 0.05


class SimulatorError(Exception):
    """The simulator cannot start (a port in use, no pty); the message says which."""


@dataclass(frozen=True)
class WireTiming:
    """A serial line's speed: ``baud``, 8 data bits, parity N or E, one stop bit."""

    baud: int
    parity: str = "N"
    turnaround_s: float = 0.020

    @property
    def char_s(self) -> float:
        return (10 + (0 if self.parity == "N" else 1)) / self.baud


class BusLine:
    """One RS485 bus: serialises transactions and paces them at the wire's speed."""

    def __init__(self, campus: SimCampus, bus: int, wire: WireTiming | None) -> None:
        self.campus = campus
        self.bus = bus
        self.wire = wire
        self.lock = asyncio.Lock()
        self.free_at = 0.0  # loop time when the last frame's trailing gap ends

    async def exchange(self, unit: int, pdu: bytes, arrival: float,
                       line_baud: int | None = None) -> Reply | None:
        """Serve a request that started arriving at loop time ``arrival``; return when the
        reply would have finished arriving at the station."""
        loop = asyncio.get_running_loop()
        async with self.lock:
            reply = self.campus.transact(self.bus, unit, pdu, line_baud)
            wire = self.wire
            if wire is None:
                if reply is not None and reply.delay_s:
                    await asyncio.sleep(reply.delay_s)
                return reply
            c = wire.char_s
            start = max(arrival, self.free_at)
            heard = start + (len(pdu) + 3 + 3.5) * c  # address + PDU + CRC, then the gap
            if reply is None:
                self.free_at = heard
                return None
            due = heard + wire.turnaround_s + reply.delay_s + (len(reply.pdu) + 3) * c
            self.free_at = due + 3.5 * c
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            return reply


class RtuSession:
    """The byte stream of one station connection carrying RTU frames (a pty, or a TCP client
    of a serial device server). Frames are cut by their function code's length."""

    def __init__(self, line: BusLine, send: Callable[[bytes], None],
                 line_baud: Callable[[], int | None] | None = None) -> None:
        self.line = line
        self.send = send
        self.line_baud = line_baud  # a pty's speed as the station set it
        self.buffer = bytearray()
        self.first_at = 0.0
        self._data = asyncio.Event()

    def feed(self, data: bytes) -> None:
        if not self.buffer:
            self.first_at = asyncio.get_running_loop().time()
        self.buffer += data
        self._data.set()

    async def run(self) -> None:
        while True:
            await self._data.wait()
            self._data.clear()
            await self._drain()

    async def _more(self) -> bool:
        """Wait for more bytes; False if the line stays idle."""
        self._data.clear()
        try:
            await asyncio.wait_for(self._data.wait(), IDLE_S)
        except TimeoutError:
            return False
        return True

    def _take(self, n: int) -> tuple[bytes, float]:
        """Cut ``n`` bytes off the buffer: a frame, and when it started arriving."""
        frame, arrival = bytes(self.buffer[:n]), self.first_at
        del self.buffer[:n]
        if self.buffer:
            self.first_at = asyncio.get_running_loop().time()
        return frame, arrival

    def _hunt(self) -> bool:
        """Drop noise up to the next whole frame with a good CRC; False if none is there."""
        for i in range(1, len(self.buffer)):
            n = rtu_request_length(self.buffer[i:])
            if n is not None and 0 < n <= len(self.buffer) - i and crc_ok(
                    bytes(self.buffer[i : i + n])):
                self._take(i)
                return True
        return False

    async def _drain(self) -> None:
        while self.buffer:
            n = rtu_request_length(self.buffer)
            if n is not None and 0 < n <= len(self.buffer):
                if crc_ok(bytes(self.buffer[:n])):
                    await self._serve(*self._take(n))
                    continue
                if self._hunt():  # line noise, then a good frame
                    continue
            if await self._more():
                continue
            # The line went idle. A frame of a function whose length is not known is all
            # that came; anything else is noise or a truncated frame, which a meter forgets.
            if n == -1 and crc_ok(bytes(self.buffer)):
                await self._serve(*self._take(len(self.buffer)))
            elif not self._hunt():
                self.buffer.clear()

    async def _serve(self, frame: bytes, arrival: float) -> None:
        baud = self.line_baud() if self.line_baud is not None else None
        reply = await self.line.exchange(frame[0], frame[1:-2], arrival, baud)
        if reply is not None:
            out = rtu_frame(frame[0], reply.pdu)
            self.send(corrupt_crc(out) if reply.corrupt else out)


def _speeds() -> dict[int, int]:
    try:
        import termios
    except ImportError:
        return {}
    return {getattr(termios, f"B{b}"): b for b in (1200, 2400, 4800, 9600, 19200, 38400, 57600,
                                                  115200) if hasattr(termios, f"B{b}")}


_SPEEDS = _speeds()


class PtyPort:
    """A pseudo-terminal pair: the station opens ``path``; the simulator keeps both ends open
    (so a station closing its end does not make the simulator's reads fail with EIO)."""

    def __init__(self) -> None:
        import tty  # POSIX only: imported here so the TCP transports run anywhere

        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.session: RtuSession | None = None

    def attach(self, session: RtuSession) -> None:
        self.session = session
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if data and self.session is not None:
            self.session.feed(data)

    def write(self, data: bytes) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.master, data)

    def baud(self) -> int | None:
        """The speed the station set on its end (None: not one of the known speeds)."""
        import termios

        try:
            speed = termios.tcgetattr(self.slave)[5]  # ospeed
        except (termios.error, OSError):
            return None
        return _SPEEDS.get(speed)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.master)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class SimServer:
    """Every bus of a campus on one transport. ``await start()`` returns a URL per bus."""

    def __init__(self, campus: SimCampus, transport: str = "tcp", host: str = "127.0.0.1",
                 port: int = 0, wire: WireTiming | None = None) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        self.campus = campus
        self.transport = transport
        self.host = host
        self.port = port
        self.wire = wire
        self.endpoints: list[str] = []
        self._servers: list[asyncio.Server] = []
        self._ptys: list[PtyPort] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._clients: set[asyncio.Task[None]] = set()

    def _query(self, pty: bool = False) -> str:
        """The paced wire's settings for the station's link (its timeouts follow them).

        Not the parity on a pty: Linux ptys have none, and once a pty's settings are made a
        request for parity alone is refused (EINVAL), so a station asking for 8E1 could open
        it only once. The pacing still counts 11 bits a character.
        """
        if self.wire is None:
            return ""
        q: dict[str, str | int] = {}
        if self.wire.baud != 9600:
            q["baud"] = self.wire.baud
        if self.wire.parity != "N" and not pty:
            q["parity"] = self.wire.parity
        return f"?{urlencode(q)}" if q else ""

    def _spawn(self, coro) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(self) -> list[str]:
        try:
            for bus in self.campus.bus_numbers:
                line = BusLine(self.campus, bus, self.wire)
                self.endpoints.append(await self._start_bus(bus, line))
        except BaseException:
            await self.close()
            raise
        return self.endpoints

    async def _start_bus(self, bus: int, line: BusLine) -> str:
        if self.transport == "pty":
            try:
                port = PtyPort()
            except (OSError, ImportError, AttributeError) as exc:
                why = getattr(exc, "strerror", None) or "this system has no ptys (use tcp)"
                raise SimulatorError(f"cannot open a pty for bus {bus}: {why}") from None
            self._ptys.append(port)
            session = RtuSession(line, port.write, port.baud)
            port.attach(session)
            self._spawn(session.run())
            return f"rtu://{port.path}{self._query(pty=True)}"

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:  # so that close() can wait for it
                self._clients.add(task)
                task.add_done_callback(self._clients.discard)
            self._writers.add(writer)
            try:
                if self.transport == "tcp":
                    await self._serve_mbap(line, reader, writer)
                else:
                    await self._serve_rtu_tcp(line, reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                self._writers.discard(writer)
                writer.close()

        wanted = self.port + bus if self.port else 0
        try:
            server = await asyncio.start_server(client, self.host, wanted)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                why = "the port is in use (another simulator? choose another --port)"
            else:
                why = exc.strerror or str(exc)
            raise SimulatorError(f"bus {bus}: cannot listen on {self.host}:{wanted}: "
                                 f"{why}") from None
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        if self.transport == "tcp":
            return f"tcp://{self.host}:{port}"
        return f"rtu-tcp://{self.host}:{port}{self._query()}"

    async def _serve_mbap(self, line: BusLine, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            header = await reader.readexactly(7)
            arrival = loop.time()
            tid, pid, length, unit = struct.unpack(">HHHB", header)
            if not 2 <= length <= 254:
                return  # not Modbus: hang up, as a gateway would
            pdu = await reader.readexactly(length - 1)
            if pid != 0:
                continue
            reply = await line.exchange(unit, pdu, arrival)
            if reply is not None and not writer.is_closing():
                frame = mbap_frame(tid, unit, reply.pdu)
                writer.write(garble_mbap(frame) if reply.corrupt else frame)

    async def _serve_rtu_tcp(self, line: BusLine, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        def send(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(data)

        session = RtuSession(line, send)
        task = self._spawn(session.run())
        try:
            while data := await reader.read(4096):
                session.feed(data)
        finally:
            task.cancel()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        if self._clients:
            # Closed connections end their handlers; cancelling them instead trips asyncio's
            # stream callback (Python 3.11 logs a CancelledError for each).
            _, stuck = await asyncio.wait(set(self._clients), timeout=2.0)
            for task in stuck:
                task.cancel()
        for task in list(self._tasks):
            task.cancel()
        for port in self._ptys:
            port.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._servers.clear()
        self._ptys.clear()
