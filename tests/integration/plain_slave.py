"""Plain pymodbus slaves for the tests: meters as they come, not VoltKeeper's simulator.

Each slave is pymodbus 3.16's own ``ModbusTcpServer`` with a small custom datastore (a
``ModbusServerContext`` that answers from a dict per unit): it refuses with exception 2 what a
meter does not have (listed addresses, or with ``strict`` every register not in its table),
answers everything else from its table, and records every request. The register values are
written by hand in the tests (raw words, ``struct`` for floats), never with the project's codec.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.server import ModbusTcpServer

from tests.helpers import free_port_base


@dataclass
class Unit:
    """One meter behind the slave: holding (FC03) and input (FC04) registers, coils and
    discrete inputs."""

    holding: dict[int, int] = field(default_factory=dict)
    inputs: dict[int, int] = field(default_factory=dict)
    coils: dict[int, int] = field(default_factory=dict)  # FC01 read, FC05/0F write (0 or 1)
    discretes: dict[int, int] = field(default_factory=dict)  # FC02
    refuse: set[int] = field(default_factory=set)  # reads or writes touching these: exception 2
    strict: bool = False  # refuse any register not in the table (no reads across holes)
    requests: list[tuple[int, int, int]] = field(default_factory=list)  # (fc, start, count)
    writes: list[tuple[int, list[int]]] = field(default_factory=list)  # (start, values)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_float(self, address: int, value: float) -> None:
        """A float32 input register pair, high word first (as the SDM120)."""
        hi, lo = struct.unpack(">HH", struct.pack(">f", value))
        with self.lock:
            self.inputs[address], self.inputs[address + 1] = hi, lo

    def set_u32(self, address: int, value: int) -> None:
        with self.lock:
            self.holding[address], self.holding[address + 1] = value >> 16, value & 0xFFFF

    def reads_touching(self, addresses: Iterable[int]) -> int:
        wanted = set(addresses)
        with self.lock:
            return sum(1 for _fc, start, count in self.requests
                       if wanted & set(range(start, start + count)))


class PlainContext(ModbusServerContext):
    """A datastore of ``Unit``s by device id (pymodbus calls ``async_getValues`` with the
    request's function code, start and count, and sends an exception for an ``ExcCodes``)."""

    def __init__(self, units: dict[int, Unit]) -> None:  # no super(): no simulator devices
        self.units = units
        self.old_simulator = True  # pymodbus then calls this context's methods directly
        self.simdevices = []

    def device_ids(self) -> list[int]:
        return list(self.units)

    async def async_getValues(self, device_id, func_code, address, count=1):
        unit = self.units.get(device_id)
        if unit is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        with unit.lock:
            unit.requests.append((func_code, address, count))
            table = {3: unit.holding, 4: unit.inputs, 1: unit.coils, 5: unit.coils,
                     15: unit.coils, 2: unit.discretes}.get(func_code)
            if table is None:
                return ExcCodes.ILLEGAL_FUNCTION
            addresses = range(address, address + count)
            if any(a in unit.refuse for a in addresses):
                return ExcCodes.ILLEGAL_ADDRESS
            if unit.strict and any(a not in table for a in addresses):
                return ExcCodes.ILLEGAL_ADDRESS
            if not any(a in table for a in addresses):
                return ExcCodes.ILLEGAL_ADDRESS
            return [table.get(a, 0) for a in addresses]

    async def async_setValues(self, device_id, func_code, address, values):
        unit = self.units.get(device_id)
        if unit is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        with unit.lock:
            table = unit.coils if func_code in (5, 15) else unit.holding
            addresses = range(address, address + len(values))
            if any(a in unit.refuse or a not in table for a in addresses):
                return ExcCodes.ILLEGAL_ADDRESS
            unit.writes.append((address, [int(v) for v in values]))
            for a, v in zip(addresses, values, strict=True):
                table[a] = int(v)
        return None


@dataclass
class SlaveHandle:
    port: int
    units: dict[int, Unit]

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}?timeout=0.5"


@contextmanager
def plain_slave(units: dict[int, Unit], port: int | None = None) -> Iterator[SlaveHandle]:
    """A pymodbus Modbus-TCP server for ``units`` in a thread of its own, while the block runs
    (on ``port``, or a free one); its port closes when the block ends, as a gateway's does when
    it loses power."""
    port = port if port is not None else free_port_base(1) + 1
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, ModbusTcpServer] = {}

    async def serve() -> None:
        server = ModbusTcpServer(PlainContext(units), address=("127.0.0.1", port))
        holder["server"] = server
        await server.serve_forever(background=True)
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        loop.run_forever()

    thread = threading.Thread(target=run, name="plain-slave", daemon=True)
    thread.start()
    assert ready.wait(10), "the pymodbus slave did not start"
    try:
        yield SlaveHandle(port, units)
    finally:
        asyncio.run_coroutine_threadsafe(holder["server"].shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# -- meters as they come ------------------------------------------------------------------------
def ddsy1352(*, frequency: bool = True, token_registers: bool = True, energy_cents: int = 12345,
             money_cents: int = 5000, purchase_count: int = 3,
             serial: str = "310000001001") -> Unit:
    """An Acrel DDSY1352 by hand: the manual's 0000H-0010H, the vendor tool's registers, and
    optionally frequency (0011H) and VoltKeeper's 1000H block (a meter from the factory has
    neither: it refuses them with exception 2)."""
    u = Unit()
    h = u.holding
    h[0x00], h[0x01] = energy_cents >> 16, energy_cents & 0xFFFF  # energy x0.01 kWh
    for tariff in (0x02, 0x04, 0x06, 0x08):
        h[tariff], h[tariff + 1] = 0, energy_cents // 4
    h[0x0A] = 0  # password
    h[0x0B] = 2201  # 220.1 V
    h[0x0C] = 150  # 1.50 A
    h[0x0D] = 330  # 0.330 kW
    h[0x0E] = 10  # reactive (undocumented use)
    h[0x0F] = 340  # 0.340 kVA
    h[0x10] = 970  # PF 0.970
    if frequency:
        h[0x11] = 5002  # 50.02 Hz
    else:
        u.refuse.add(0x11)
    h[0x43], h[0x44], h[0x45] = (int(serial[i:i + 4], 16) for i in (0, 4, 8))  # BCD
    h[0x57], h[0x58] = 0, 0  # control: auto
    h[0x5D], h[0x5E] = 0, 5880  # price 0.5880
    h[0x21F], h[0x220] = money_cents >> 16, money_cents & 0xFFFF
    h[0x221] = purchase_count
    h[0x222], h[0x223] = 0, 3
    h[0x224] = 1 << 13  # relay closed
    for a, v in zip(range(0x480, 0x487), (1, 8000, 1500, 900, 0, 3, 5 << 8), strict=True):
        h[a] = v
    token_block = set(range(0x1000, 0x100D)) | set(range(0x1010, 0x1016))
    if token_registers:
        for a in token_block:
            h[a] = 0
        h[0x1011], h[0x1012] = 0, 8503  # remaining energy 85.03 kWh
        h[0x1014] = 1  # key version
    else:
        u.refuse |= token_block
    return u


#: The SDM120's documented input registers (float32 pairs), the only ones a strict one has.
SDM120_POINTS = {"voltage": 0, "current": 6, "active_power": 12, "apparent_power": 18,
                 "reactive_power": 24, "power_factor": 30, "frequency": 70, "energy": 72}


def sdm120(*, strict: bool = False, energy_kwh: float = 1234.5) -> Unit:
    """An Eastron SDM120 by hand: float32 input registers at the documented addresses only.
    ``strict``: it refuses any read that touches a register between them."""
    u = Unit(strict=strict)
    values = {"voltage": 229.5, "current": 2.25, "active_power": 480.0, "apparent_power": 500.0,
              "reactive_power": 40.0, "power_factor": 0.96, "frequency": 49.98,
              "energy": energy_kwh}
    for name, address in SDM120_POINTS.items():
        u.set_float(address, values[name])
    return u
