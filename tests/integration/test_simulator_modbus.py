"""The simulator over real Modbus: the station's driver (ModbusLink) and plain pymodbus against
simulated meters on Modbus-TCP, RTU over TCP and a pty. No mocks: what crosses is real frames.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from statistics import median

import pytest

from app.drivers.modbus_link import LinkConfig, ModbusLink
from app.drivers.profile import load_profile
from app.drivers.token import TokenStatus, make_token
from app.errors import CrcError, MeterException, NoResponse, NotSupported
from app.simulator import STATION_FIELDS, SimulatorHandle, serial_for, start_simulator
from app.simulator.clock import parse_start
from app.simulator.protocol import rtu_frame
from tests.helpers import assert_plausible_over_plain_pymodbus

ACREL = load_profile("acrel-ddsy1352")
SDM = load_profile("eastron-sdm120")
EVENING = parse_start("2026-03-02T20:00:00")
ALL = ("fast", "slow")


def url_of(sim: SimulatorHandle, bus: int = 1, query: str = "") -> str:
    """The bus's address; on Modbus-TCP with a 9600-baud-like timeout, as on the serial links."""
    url = sim.endpoints[bus - 1]
    parts = [query] if query else []
    if url.startswith("tcp:"):
        parts.append("timeout=0.3")
    return url + ("?" + "&".join(parts) if parts else "")


@pytest.fixture(params=["tcp", "pty"])
def sim(request: pytest.FixtureRequest) -> Iterator[SimulatorHandle]:
    with start_simulator(buses=2, meters=4, transport=request.param, speed=0, start=EVENING,
                         random_heaters=False) as handle:
        yield handle


@pytest.fixture
def link(sim: SimulatorHandle) -> Iterator[ModbusLink]:
    with ModbusLink(LinkConfig.from_url(url_of(sim))) as lk:
        yield lk


def assert_same(read, snap) -> None:
    """Every value the read has equals the simulator's (a fast read lacks the slow points)."""
    for name in STATION_FIELDS:
        if getattr(read, name) is not None:
            assert getattr(read, name) == getattr(snap, name), name
    for name, value in read.extra.items():
        assert snap.extra[name] == value, name


# ----------------------------------------------------------------------------- values

def test_every_value_read_equals_the_simulators_state(sim: SimulatorHandle,
                                                      link: ModbusLink) -> None:
    for unit in range(1, 5):
        read = link.read_meter(unit, ACREL, ALL)
        assert [name for name in STATION_FIELDS if getattr(read, name) is None] == []
        assert_same(read, sim.meter(1, unit).snapshot())
        assert 198 <= read.voltage_v <= 242 and 49.5 <= read.frequency_hz <= 50.5
        assert read.serial == serial_for(1, unit)
    with ModbusLink(LinkConfig.from_url(url_of(sim, 2))) as bus2:
        shop = bus2.read_meter(4, ACREL, ALL)
    assert_same(shop, sim.meter(2, 4).snapshot())
    assert sim.meter(2, 4).shop and shop.power_limit_w == 8000


def test_values_follow_meter_time(sim: SimulatorHandle, link: ModbusLink) -> None:
    before = link.read_meter(1, ACREL, ALL)
    sim.advance(3600)
    after = link.read_meter(1, ACREL, ALL)
    assert after.energy_kwh > before.energy_kwh
    spent_fen = before.remaining_money_cents - after.remaining_money_cents
    used_kwh = after.energy_kwh - before.energy_kwh
    assert abs(spent_fen - used_kwh * before.price_per_kwh * 100) < 1  # registers round down
    assert_same(after, sim.meter(1, 1).snapshot())


# ----------------------------------------------------------------------------- control

def test_trip_close_and_keep_power_move_the_relay(sim: SimulatorHandle, link: ModbusLink) -> None:
    link.control(2, ACREL, "trip")
    read = link.read_meter(2, ACREL)
    assert not read.relay_closed and read.control_mode == "forced_trip"
    assert read.trip_reason == 4 and read.active_power_w == 0
    link.control(2, ACREL, "close")
    read = link.read_meter(2, ACREL)
    assert read.relay_closed and read.control_mode == "auto" and read.active_power_w > 0

    link.control(2, ACREL, "keep_power_on")
    sim.meter(1, 2).set_money(0)
    read = link.read_meter(2, ACREL)
    assert read.relay_closed and read.keep_power and "arrears" in read.flags
    link.control(2, ACREL, "keep_power_off")
    read = link.read_meter(2, ACREL)
    assert not read.relay_closed and read.trip_reason == 1


def test_power_limit_breach_trips_restores_and_locks_out(sim: SimulatorHandle,
                                                         link: ModbusLink) -> None:
    def state() -> tuple[bool, int, int]:
        r = link.read_meter(3, ACREL)
        return bool(r.relay_closed), int(r.trip_reason), int(r.extra["overlimit_trips"])

    for trips in (1, 2):
        link.control(3, ACREL, "power_limit", 100)  # the evening load is above 100 W
        assert state() == (False, 2, trips)
        assert "over_limit" in link.read_meter(3, ACREL).flags
        link.control(3, ACREL, "power_limit", 2500)
        sim.advance(59)
        assert state() == (False, 2, trips)
        sim.advance(1)  # restore after one minute
        assert state() == (True, 0, trips)
    link.control(3, ACREL, "power_limit", 100)
    assert state() == (False, 5, 3)  # the third trip: locked out
    link.control(3, ACREL, "power_limit", 2500)
    sim.advance(3600)
    assert state() == (False, 5, 3)
    link.control(3, ACREL, "close")
    assert state() == (True, 0, 0)


def test_recharge_arrives_exactly_once(sim: SimulatorHandle, link: ModbusLink) -> None:
    master, serial = sim.master_key, serial_for(1, 1)
    before = link.read_meter(1, ACREL)
    token = make_token(master, serial, 1234, before.purchase_count + 1)
    link.control(1, ACREL, "recharge", token)
    after = link.read_meter(1, ACREL)
    assert after.remaining_money_cents == before.remaining_money_cents + 1234
    assert after.purchase_count == before.purchase_count + 1
    assert after.token_status == TokenStatus.APPLIED

    def refused(bad: bytes, status: TokenStatus) -> None:
        link.control(1, ACREL, "recharge", bad)  # a normal reply: the verdict is in the status
        read = link.read_meter(1, ACREL)
        assert read.token_status == status
        assert (read.remaining_money_cents, read.purchase_count) == (
            after.remaining_money_cents, after.purchase_count)

    refused(token, TokenStatus.REPLAYED)
    refused(make_token(master, serial_for(1, 2), 500, after.purchase_count + 1),
            TokenStatus.FOREIGN)
    good = make_token(master, serial, 700, after.purchase_count + 1)
    flipped = bytearray(good)
    flipped[12] ^= 0x04  # one bit of the encrypted count and amount
    refused(bytes(flipped), TokenStatus.BAD_MAC)
    link.control(1, ACREL, "recharge", good)  # the refusals used nothing up
    assert link.read_meter(1, ACREL).remaining_money_cents == after.remaining_money_cents + 700


def test_a_recharge_whose_reply_is_lost_is_not_applied_twice(sim: SimulatorHandle,
                                                             link: ModbusLink) -> None:
    before = link.read_meter(1, ACREL)
    token = make_token(sim.master_key, serial_for(1, 1), 5000, before.purchase_count + 1)
    sim.set_faults("1.1:crc=1")
    with pytest.raises(CrcError):
        link.control(1, ACREL, "recharge", token)  # applied; the link retried; both replies lost
    sim.set_faults("")
    link.control(1, ACREL, "recharge", token)  # the station tries again
    read = link.read_meter(1, ACREL)
    assert read.remaining_money_cents == before.remaining_money_cents + 5000
    assert read.purchase_count == before.purchase_count + 1
    assert read.token_status == TokenStatus.REPLAYED


def test_metering_profile_reads_and_refuses_control() -> None:
    with start_simulator(meters=2, profile="eastron-sdm120", speed=0, start=EVENING) as sim, \
            ModbusLink(LinkConfig.from_url(sim.endpoints[0])) as link:
        read = link.read_meter(1, SDM)
        assert_same(read, sim.meter(1, 1).snapshot())
        assert 198 <= read.voltage_v <= 242 and read.relay_closed is None
        with pytest.raises(NotSupported):
            link.control(1, SDM, "trip")


# ----------------------------------------------------------------------------- faults

@pytest.fixture(params=["tcp", "rtu-tcp", "pty"])
def faulty(request: pytest.FixtureRequest) -> Iterator[tuple[SimulatorHandle, ModbusLink]]:
    with start_simulator(meters=4, transport=request.param, speed=0, start=EVENING) as handle, \
            ModbusLink(LinkConfig.from_url(url_of(handle))) as lk:
        yield handle, lk


def test_faults_surface_as_typed_errors(faulty: tuple[SimulatorHandle, ModbusLink]) -> None:
    sim, link = faulty
    sim.set_faults("1.1:offline;1.2:crc=1;1.3:drop=1")
    started = time.perf_counter()
    with pytest.raises(NoResponse):
        link.read_meter(1, ACREL)
    assert time.perf_counter() - started < 0.8  # two tries of the link's ~0.3 s timeout
    with pytest.raises(CrcError):
        link.read_meter(2, ACREL)
    with pytest.raises(NoResponse):
        link.read_meter(3, ACREL)
    with pytest.raises(MeterException) as exc:
        link.read_registers(4, 3, 0x3000, 2)
    assert exc.value.code == 2
    assert link.read_meter(4, ACREL).relay_closed
    sim.set_faults("")  # back online
    for unit in (1, 2, 3):
        assert_same(link.read_meter(unit, ACREL), sim.meter(1, unit).snapshot())


def test_slow_replies(faulty: tuple[SimulatorHandle, ModbusLink]) -> None:
    sim, link = faulty
    sim.set_faults("1.1:slow=100")
    link.read_registers(1, 3, 0x0B, 1)
    assert link.last_latency_s >= 0.1
    sim.set_faults("1.1:slow=450")  # beyond the timeout
    link.close()  # a serial port is opened exclusively: one link at a time
    with ModbusLink(LinkConfig.from_url(url_of(sim, query="retries=0"))) as once:
        with pytest.raises(NoResponse):
            once.read_registers(1, 3, 0, 18)
        sim.set_faults("")
        time.sleep(0.4)  # the late reply is on its way; nothing to poll for it
        # ...and must not pass for the answer to the next, different request.
        assert once.read_registers(1, 3, 0x21F, 6) == sim.meter(1, 1).read_registers(3, 0x21F, 6)


@pytest.mark.parametrize("transport", ["rtu-tcp", "pty"])
def test_a_silent_meter_does_not_slow_the_others(transport: str) -> None:
    with start_simulator(meters=4, transport=transport, speed=0, start=EVENING,
                         wire_baud=9600) as sim, \
            ModbusLink(LinkConfig.from_url(sim.endpoints[0])) as link:

        def healthy_times() -> list[float]:
            times = []
            for unit in (1, 2, 3, 4):
                started = time.perf_counter()
                try:
                    link.read_meter(unit, ACREL)
                except NoResponse:
                    assert unit == 3
                    continue
                times.append(time.perf_counter() - started)
            return times

        healthy_times()  # warm up
        alone = median(healthy_times())
        assert alone > 0.2  # the wire is paced: four transactions at 9600 baud
        sim.set_faults("1.3:offline")
        with_silent = healthy_times()
        assert len(with_silent) == 3
        assert max(with_silent) < alone * 1.15


def test_dead_meters_behind_a_gateway_do_not_cut_off_the_healthy_ones() -> None:
    dead = "1.1:offline;1.2:offline;1.3:offline;1.4:offline;1.5:offline"
    with start_simulator(meters=8, transport="rtu-tcp", speed=0, faults=dead) as sim:
        with ModbusLink(LinkConfig.from_url(sim.endpoints[0])) as link:
            for unit in range(1, 6):
                with pytest.raises(NoResponse):
                    link.read_meter(unit, ACREL)
            for unit in range(6, 9):
                assert_same(link.read_meter(unit, ACREL), sim.meter(1, unit).snapshot())
            assert link.counters.timeouts == 10  # five meters, two tries: nothing else failed
            assert link.counters.reconnects == 0

        # Plain pymodbus (the async client) without that handling: the healthy meters after
        # the dead run find the connection closed (pymodbus issue 3012).
        port = int(sim.endpoints[0].rsplit(":", 1)[1])
        outcomes = asyncio.run(_plain_pymodbus_reads(port, range(1, 9)))
    assert outcomes[:5] == ["no answer"] * 5
    assert "closed" in outcomes[5:], outcomes


async def _plain_pymodbus_reads(port: int, units: range) -> list[str]:
    from pymodbus import FramerType
    from pymodbus.client import AsyncModbusTcpClient
    from pymodbus.exceptions import ConnectionException, ModbusIOException

    client = AsyncModbusTcpClient("127.0.0.1", port=port, framer=FramerType.RTU, timeout=0.3,
                                  retries=0, reconnect_delay=0)
    await client.connect()
    outcomes = []
    try:
        for unit in units:
            try:
                await client.read_holding_registers(0x0B, count=1, device_id=unit)
                outcomes.append("ok")
            except ConnectionException:
                outcomes.append("closed")
            except ModbusIOException:
                outcomes.append("no answer")
    finally:
        client.close()
    return outcomes


def test_plain_pymodbus_reads_plausible_values_at_the_profiles_addresses() -> None:

    with start_simulator(buses=1, meters=3, seed=5) as sim:
        port = int(sim.endpoints[0].rsplit(":", 1)[1])
        assert_plausible_over_plain_pymodbus(port, (1, 2, 3))


# ----------------------------------------------------------------------------- the wire itself

def _exchange(sock: socket.socket, frame: bytes, expect: int) -> bytes:
    sock.sendall(frame)
    data = b""
    while len(data) < expect:
        chunk = sock.recv(256)
        assert chunk, "connection closed"
        data += chunk
    return data


def test_hand_written_rtu_frames_over_a_serial_device_server() -> None:
    with start_simulator(meters=3, transport="rtu-tcp", speed=0, start=EVENING) as sim:
        port = int(sim.endpoints[0].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            # line noise (bad CRC) is ignored; the frame after it is answered
            sock.sendall(bytes.fromhex("01 03 00 0B 00 01 00 00"))
            reply = _exchange(sock, bytes.fromhex("01 03 00 0B 00 01 F5 C8"), 7)
            volts = sim.meter(1, 1).snapshot().voltage_v
            assert reply == rtu_frame(1, bytes([3, 2]) + round(volts * 10).to_bytes(2, "big"))
            # an unknown function: exception 1 once the line is idle
            assert _exchange(sock, rtu_frame(2, bytes.fromhex("2B 0E 01 00")), 5) == \
                rtu_frame(2, bytes.fromhex("AB 01"))
            # a broadcast write: every meter takes it, none answers
            sock.sendall(rtu_frame(0, bytes.fromhex("06 04 81 05 DC")))  # power limit 1500 W
            reply = _exchange(sock, rtu_frame(3, bytes.fromhex("03 04 81 00 01")), 7)
            assert reply == rtu_frame(3, bytes.fromhex("03 02 05 DC"))  # no broadcast echo
        assert all(sim.meter(1, u).settings.power_limit_w == 1500 for u in (1, 2, 3))


def test_a_bus_is_half_duplex_whatever_the_connections() -> None:
    with start_simulator(meters=4, transport="tcp", speed=0, wire_baud=9600) as sim:
        url = sim.endpoints[0]
        per_meter = 0.230  # four transactions at 9600 baud with a 20 ms turnaround

        def poll(units: tuple[int, ...]) -> None:
            with ModbusLink(LinkConfig.from_url(url)) as link:
                for unit in units:
                    link.read_meter(unit, ACREL)

        threads = [threading.Thread(target=poll, args=(units,)) for units in ((1, 2), (3, 4))]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert time.perf_counter() - started >= 4 * per_meter * 0.95
