"""The simulated meter's own comm settings (the profile's [comm], 0360H): an address written
moves it on its bus (the old address goes silent), a speed written makes it answer only at that
speed on a serial line, the ``baud=`` fault still wins; and the profile's [comm] checks."""

from __future__ import annotations

import struct
import tomllib

import pytest

from app.drivers.profile import PROFILE_DIR, ProfileError, parse_profile
from app.drivers.registers import decode_comm, encode_comm
from app.simulator.campus import SimCampus

READ_COMM = bytes([3]) + struct.pack(">HH", 0x0360, 5)


def _write(data: bytes) -> bytes:
    return bytes([16]) + struct.pack(">HHB", 0x0360, 5, 10) + data


def _comm(campus: SimCampus, bus: int, unit: int, line_baud: int | None = None):
    reply = campus.transact(bus, unit, READ_COMM, line_baud)
    return None if reply is None else reply.pdu[2:]


def test_an_address_written_moves_the_meter():
    campus = SimCampus(1, 3, "acrel-ddsy1352", random_heaters=False)
    comm = campus.profile.comm
    meter = campus.meter(1, 2)
    data = _comm(campus, 1, 2)
    assert decode_comm(comm, data).address == 2 and data[4:].hex() == meter.serial
    reply = campus.transact(1, 2, _write(encode_comm(comm, data, address=40)))
    assert reply is not None and reply.pdu == bytes([16]) + struct.pack(">HH", 0x0360, 5)
    assert _comm(campus, 1, 2) is None  # silent at the old address
    assert decode_comm(comm, _comm(campus, 1, 40)).address == 40
    assert campus.meter(1, 40) is meter and meter.unit == 40
    # an address another meter has: refused (exception 3), nothing moves
    refused = campus.transact(1, 40, _write(encode_comm(comm, data, address=3)))
    assert refused is not None and refused.pdu == bytes([0x90, 3])
    assert campus.meter(1, 40) is meter and campus.meter(1, 3) is not meter
    bad = bytearray(data)
    bad[1] = 9  # no such baud code
    assert campus.transact(1, 40, _write(bytes(bad))).pdu == bytes([0x90, 3])


def test_a_speed_written_is_the_only_one_it_answers_at():
    campus = SimCampus(1, 2, "acrel-ddsy1352", random_heaters=False)
    comm = campus.profile.comm
    data = _comm(campus, 1, 1, 9600)
    assert decode_comm(comm, data).baud == 9600  # the factory's: answers at any speed
    assert _comm(campus, 1, 1, 19200) is not None
    campus.transact(1, 1, _write(encode_comm(comm, data, baud=19200)), 9600)  # answered at 9600
    assert _comm(campus, 1, 1, 9600) is None
    assert decode_comm(comm, _comm(campus, 1, 1, 19200)).baud == 19200
    assert _comm(campus, 1, 1) is not None  # TCP: no speed
    campus.set_faults("1.1:baud=4800")  # the fault wins over the meter's own setting
    assert _comm(campus, 1, 1, 19200) is None and _comm(campus, 1, 1, 4800) is not None


def test_the_profiles_comm_table_is_checked():
    base = tomllib.loads((PROFILE_DIR / "acrel-ddsy1352.toml").read_text(encoding="utf-8"))
    assert parse_profile(base, "x.toml", "x").comm is not None

    def refused(change: dict, key: str) -> None:
        data = tomllib.loads((PROFILE_DIR / "acrel-ddsy1352.toml").read_text(encoding="utf-8"))
        data["comm"].update(change)
        with pytest.raises(ProfileError) as err:
            parse_profile(data, "x.toml", "x")
        assert err.value.key.startswith(key)

    refused({"point": "price"}, "comm.point")
    refused({"baud_byte": 0}, "comm")
    refused({"stop_byte": 10}, "comm.stop_byte")
    refused({"baud_codes": []}, "comm.baud_codes")
    refused({"parity_codes": ["X"]}, "comm.parity_codes")
    refused({"colour": 1}, "comm.colour")
