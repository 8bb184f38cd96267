"""Pure register encode/decode and read planning, checked against values worked out by hand."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest

from app.drivers.meter_values import values_from_points
from app.drivers.profile import load_profile
from app.drivers.registers import (
    decode_block,
    decode_point,
    encode_point,
    plan_reads,
    read_frame_sizes,
    wire_time,
)

DDSY = load_profile("acrel-ddsy1352")
SDM = load_profile("eastron-sdm120")


def test_scaled_integers_decode_exactly():
    # 0000H-0001H = 0x0001 0x86A0 -> 100000 x 0.01 kWh = 1000.00 kWh
    assert decode_point(DDSY.points["energy"], [0x0001, 0x86A0]) == Decimal("1000.00")
    assert decode_point(DDSY.points["voltage"], [2205]) == Decimal("220.5")
    # i16 active power: 0xFF38 = -200 -> -0.200 kW
    assert decode_point(DDSY.points["active_power"], [0xFF38]) == Decimal("-0.200")


def test_float32_high_word_first():
    hi, lo = struct.unpack(">HH", struct.pack(">f", 229.5))
    assert decode_point(SDM.points["voltage"], [hi, lo]) == pytest.approx(229.5)


def test_states_and_bits():
    mode = DDSY.points["control_mode"]
    assert decode_point(mode, [1, 0]) == "keep_power"
    assert decode_point(mode, [1, 1]) == "forced_trip"
    assert decode_point(mode, [0, 0]) == "auto"
    assert decode_point(mode, [0, 1]) == "unknown"
    assert encode_point(mode, "forced_trip") == [1, 1]
    status = DDSY.points["status"]
    block = plan_reads(DDSY, [status])[0]
    values = decode_block(block, [(1 << 13) | (1 << 5)])
    assert values["relay_closed"] is True and values["arrears"] is True
    assert values["fault"] is False
    cfg = DDSY.points["restore_config"]
    assert decode_block(plan_reads(DDSY, [cfg])[0], [0x0503])["restore_delay_min"] == 5


def test_encode_round_trip_and_refusals():
    price = DDSY.points["price"]
    assert encode_point(price, Decimal("0.5880")) == [0, 5880]
    assert decode_point(price, [0, 5880]) == Decimal("0.5880")
    with pytest.raises(ValueError, match="multiple"):
        encode_point(price, Decimal("0.58805"))
    with pytest.raises(ValueError, match="maximum"):
        encode_point(DDSY.points["power_limit"], 40000)
    serial = DDSY.points["serial"]
    assert encode_point(serial, "310000001002") == [0x3100, 0x0000, 0x1002]
    assert decode_point(serial, [0x3100, 0x0000, 0x1002]) == "310000001002"
    token = DDSY.points["token"]
    data = bytes(range(26))
    assert decode_point(token, encode_point(token, data)) == data


def test_plan_merges_within_gap_and_size():
    blocks = plan_reads(DDSY, DDSY.poll_points())
    starts = [(b.start, b.count) for b in blocks]
    assert starts[0] == (0x0000, 18)  # energies, U, I, P, S, PF, f in one transaction
    assert (0x021F, 6) in starts
    assert len(blocks) == 4
    sdm_blocks = plan_reads(SDM, SDM.poll_points())
    assert [(b.function, b.start, b.count) for b in sdm_blocks] == [(4, 0, 74)]


def test_values_record_normalises_units():
    decoded = {"active_power": Decimal("1.250"), "energy": Decimal("12.34"),
               "remaining_money": Decimal("56.78"), "relay_closed": True,
               "control_mode": "keep_power", "over_limit": True, "arrears": False}
    units = {"active_power": "kW", "energy": "kWh", "remaining_money": "yuan"}
    v = values_from_points(decoded, units, 0.0)
    assert v.active_power_w == 1250.0
    assert v.energy_kwh == Decimal("12.34")
    assert v.remaining_money_cents == 5678 and isinstance(v.remaining_money_cents, int)
    assert v.keep_power is True and v.flags == frozenset({"over_limit"})


def test_wire_time_matches_reference_table():
    # shared reference: 20 registers at 9600 8N1 = 62.50 ms; at 8E1 68.75 ms
    req, resp = read_frame_sizes(20)
    assert wire_time(req, resp, 9600) == pytest.approx(0.0625)
    assert wire_time(req, resp, 9600, "E") == pytest.approx(0.06875)
