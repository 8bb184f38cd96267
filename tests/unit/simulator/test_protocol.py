"""The simulator's framing and request handling, against frames written out by hand, and the
--faults grammar."""

from __future__ import annotations

import struct

import pytest

from app.drivers.profile import load_profile
from app.drivers.registers import encode_point
from app.simulator.faults import Effects, FaultPlan, FaultSpecError, parse_faults
from app.simulator.meter import SimMeter
from app.simulator.protocol import (
    corrupt_crc,
    crc16,
    crc_ok,
    exception_pdu,
    garble_mbap,
    handle_pdu,
    mbap_frame,
    rtu_frame,
    rtu_request_length,
)

ACREL = load_profile("acrel-ddsy1352")
SDM = load_profile("eastron-sdm120")


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# ----------------------------------------------------------------------------- CRC and frames

@pytest.mark.parametrize("frame", [
    "01 03 00 00 00 0A C5 CD",  # read 10 holding registers from 0 (the classic example)
    "11 03 00 6B 00 03 76 87",  # the Modbus specification's read example
    "01 06 00 01 00 03 98 0B",  # write 3 to register 1
    "01 10 00 01 00 02 04 00 0A 01 02 92 30",  # write two registers from 1
    "01 83 02 C0 F1",  # exception 2 to a read
])
def test_crc_of_known_frames(frame: str) -> None:
    raw = h(frame)
    assert crc16(raw[:-2]).to_bytes(2, "little") == raw[-2:]
    assert crc_ok(raw)
    assert rtu_frame(raw[0], raw[1:-2]) == raw


def test_corrupt_crc_is_detected() -> None:
    raw = h("01 03 00 00 00 0A C5 CD")
    assert not crc_ok(corrupt_crc(raw))
    assert corrupt_crc(raw)[:-1] == raw[:-1]
    assert not crc_ok(b"\x01\x03")


@pytest.mark.parametrize(("data", "length"), [
    ("", None), ("01", None),
    ("01 03 00 00", 8), ("01 04", 8), ("01 06", 8),
    ("01 10 00 01 00", None),  # byte count not there yet
    ("01 10 00 01 00 02 04", 13),
    ("01 2B 0E 01 00", -1),  # unknown function: wait for the line to go idle
])
def test_rtu_request_length(data: str, length: int | None) -> None:
    assert rtu_request_length(h(data)) == length


def test_mbap_frame_and_garbling() -> None:
    frame = mbap_frame(0x1234, 7, h("03 00 0B 00 01"))
    assert frame == h("12 34 00 00 00 06 07 03 00 0B 00 01")
    garbled = garble_mbap(frame)
    assert garbled[:2] == frame[:2] and garbled[2:4] != b"\x00\x00"
    assert exception_pdu(3, 2) == h("83 02")


# ----------------------------------------------------------------------------- requests

@pytest.fixture
def meter() -> SimMeter:
    return SimMeter(ACREL, 1, 1, seed=1, start=1_780_000_000.0)


def test_read_request_answers_with_the_image(meter: SimMeter) -> None:
    # 01 03 00 0B 00 01: read the voltage register
    response = handle_pdu(meter, h("03 00 0B 00 01"))
    assert response is not None and response[:2] == h("03 02")
    (raw,) = struct.unpack(">H", response[2:])
    assert 1980 <= raw <= 2420
    assert meter.snapshot().voltage_v == raw / 10


def test_read_with_a_hole_returns_zero_there(meter: SimMeter) -> None:
    # 000AH (password) and 000EH are not in the profile; reading across them gives 0.
    response = handle_pdu(meter, h("03 00 0A 00 05"))
    assert response is not None
    regs = struct.unpack(">5H", response[2:])
    assert regs[0] == 0 and regs[4] == 0 and regs[1] > 0


def test_read_of_no_register_is_exception_2(meter: SimMeter) -> None:
    assert handle_pdu(meter, h("03 30 00 00 02")) == h("83 02")
    assert handle_pdu(meter, h("04 00 00 00 02")) == h("84 02")  # no input registers


def test_bad_counts_and_functions(meter: SimMeter) -> None:
    assert handle_pdu(meter, h("03 00 00 00 00")) == h("83 03")
    assert handle_pdu(meter, h("03 00 00 00 7E")) == h("83 03")  # 126 registers
    assert handle_pdu(meter, h("10 00 57 00 02 03 00 00 00")) == h("90 03")  # byte count
    assert handle_pdu(meter, h("2B 0E 01 00")) == h("AB 01")


def test_writes_only_to_writable_points(meter: SimMeter) -> None:
    # Voltage (000BH) is read-only; half of the two-register control_mode is not a point.
    assert handle_pdu(meter, h("06 00 0B 00 01")) == h("86 02")
    assert handle_pdu(meter, h("06 00 57 00 01")) == h("86 02")
    # power_limit (0481H) = 1200 W with FC06: the echo is the reply.
    assert handle_pdu(meter, h("06 04 81 04 B0")) == h("06 04 81 04 B0")
    assert meter.settings.power_limit_w == 1200


def test_out_of_range_value_or_unknown_state_is_exception_3(meter: SimMeter) -> None:
    assert handle_pdu(meter, h("06 04 81 75 31")) == h("86 03")  # 30001 W > max 30000
    assert handle_pdu(meter, h("10 00 57 00 02 04 00 00 00 01")) == h("90 03")  # [0, 1]
    assert meter.settings.power_limit_w == 2500
    assert meter.control_mode == "auto"


def test_fc16_control_mode_trips_and_replies_with_address_and_count(meter: SimMeter) -> None:
    assert handle_pdu(meter, h("10 00 57 00 02 04 00 01 00 01")) == h("10 00 57 00 02")
    assert meter.control_mode == "forced_trip"
    assert not meter.relay_closed


def test_a_bad_token_still_gets_a_normal_reply(meter: SimMeter) -> None:
    token_point = ACREL.points["token"]
    words = encode_point(token_point, bytes(26))
    pdu = struct.pack(">BHHB", 16, token_point.address, 13, 26) + struct.pack(">13H", *words)
    assert handle_pdu(meter, pdu) == pdu[:5]
    assert meter.token_status == 6  # BAD_FORMAT: the magic is missing


def test_broadcast_applies_writes_and_never_answers(meter: SimMeter) -> None:
    assert handle_pdu(meter, h("06 04 81 03 E8"), broadcast=True) is None
    assert meter.settings.power_limit_w == 1000
    assert handle_pdu(meter, h("03 00 0B 00 01"), broadcast=True) is None


def test_metering_profile_serves_input_registers_as_float32() -> None:
    m = SimMeter(SDM, 1, 1, seed=1, start=1_780_000_000.0)
    response = handle_pdu(m, h("04 00 00 00 02"))
    assert response is not None and response[:2] == h("04 04")
    (volts,) = struct.unpack(">f", response[2:])
    assert 198 <= volts <= 242
    assert handle_pdu(m, h("03 00 00 00 02")) == h("83 02")  # no holding registers


# ----------------------------------------------------------------------------- --faults

def test_fault_spec_parsing_and_override() -> None:
    plan = FaultPlan("*:slow=40@0.5; 2:drop=0.1 ,crc=0.2; 2.7:offline; *.3:drop=1; 2.3:drop=0")
    assert plan.effects(1, 1) == Effects(slow_ms=40, slow_p=0.5)
    assert plan.effects(2, 1) == Effects(drop=0.1, crc=0.2, slow_ms=40, slow_p=0.5)
    assert plan.effects(2, 7).offline
    assert plan.effects(1, 3).drop == 1.0
    assert plan.effects(2, 3).drop == 0.0  # the later rule wins
    assert FaultPlan("1.2:offline;1.2:offline=0").effects(1, 2).offline is False
    assert parse_faults("") == () and parse_faults(" ; ") == ()
    assert FaultPlan("1:slow=5").effects(1, 9).slow_p == 1.0


@pytest.mark.parametrize(("spec", "names"), [
    ("1", "'1'"),
    ("x:drop=0.1", "'x'"),
    ("1.x:drop=0.1", "'x'"),
    ("0:drop=0.1", "bus '0'"),
    ("1.300:offline", "meter '300'"),
    ("1:drop=2", "0..1"),
    ("1:drop", "drop needs a value"),
    ("1:flood=1", "unknown effect 'flood'"),
    ("1:slow=fast", "'fast'"),
    ("1:slow=10@x", "'x'"),
    ("1:offline=2", "offline takes 0 or 1"),
    ("1:", "TARGET:EFFECT"),
])
def test_bad_fault_specs_name_the_bad_part(spec: str, names: str) -> None:
    with pytest.raises(FaultSpecError, match=names.replace(".", r"\.")):
        parse_faults(spec)


def test_fault_dice_are_seeded() -> None:
    a, b = FaultPlan("*:drop=0.5", seed=3), FaultPlan("*:drop=0.5", seed=3)
    throws = [a.happens(0.5) for _ in range(50)]
    assert throws == [b.happens(0.5) for _ in range(50)]
    assert 5 < sum(throws) < 45
    assert not a.happens(0.0) and a.happens(1.0)
