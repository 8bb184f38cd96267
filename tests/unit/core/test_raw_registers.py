"""The raw register tool's encode/decode, each type in both word orders, against registers
written out by hand; the request checks; and the comm block codec of the meter setup."""

from __future__ import annotations

import math

import pytest

from app.core.raw_registers import RawRequest, RawResult, decode, encode, parse_bits, show
from app.drivers.profile import load_profile
from app.drivers.registers import decode_comm, encode_comm
from app.errors import UserFacingError

# (type, typed value, registers high word first)
CASES = [
    ("u16", "4660", [0x1234]),
    ("u16", "0xFFFF", [0xFFFF]),
    ("s16", "-2", [0xFFFE]),
    ("u32", "305419896", [0x1234, 0x5678]),
    ("s32", "-2", [0xFFFF, 0xFFFE]),
    ("float32", "12.5", [0x4148, 0x0000]),
    ("float32", "-1", [0xBF80, 0x0000]),
    ("u64", "0x0102030405060708", [0x0102, 0x0304, 0x0506, 0x0708]),
    ("s64", "-1", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]),
    ("float64", "1.5", [0x3FF8, 0x0000, 0x0000, 0x0000]),
    ("bits", "0b1010", [0x000A]),
]


@pytest.mark.parametrize(("dtype", "text", "big"), CASES)
def test_each_type_both_word_orders(dtype, text, big):
    assert encode([text], dtype, "big") == big
    assert encode([text], dtype, "little") == big[::-1]
    expected = decode(big, dtype, "big")
    assert decode(big[::-1], dtype, "little") == expected
    if dtype == "bits":
        assert expected == ["0000000000001010"]
    elif dtype.startswith("float"):
        assert expected == [float(text)]
    else:
        assert expected == [int(text, 0)]


def test_several_values_and_leftovers():
    assert encode(["1", "2", "-1"], "s16") == [1, 2, 0xFFFF]
    assert decode([0, 1, 0, 2, 9], "u32") == [1, 2]  # the odd register makes no value
    assert decode([0x4142, 0x4300], "string") == ["ABC"]
    assert decode([0x4300, 0x4142], "string", "little") == ["ABC"]
    assert encode(["ABC"], "string") == [0x4142, 0x4300]
    assert math.isnan(decode([0x7FC0, 0], "float32")[0])


@pytest.mark.parametrize(("dtype", "text"), [
    ("u16", "65536"), ("u16", "-1"), ("s16", "32768"), ("u32", "4294967296"),
    ("s32", "-2147483649"), ("u64", "-1"), ("float32", "nan"), ("float32", "abc"),
    ("u16", "1.5"), ("float32", "1e40"),
])
def test_values_that_do_not_fit_are_refused(dtype, text):
    with pytest.raises(UserFacingError):
        encode([text], dtype)


def test_coils_and_display():
    assert parse_bits(["1", "off", "ON", "0"]) == [True, False, True, False]
    with pytest.raises(UserFacingError):
        parse_bits(["2"])
    assert show(-2) == "-2 (0xFFFE)"
    assert show(255, 32) == "255 (0x000000FF)"
    result = RawResult(RawRequest("B01", 1, 3, 0x10, 4, "u32"), registers=[0, 5, 0xFFFF, 0xFFFF])
    assert result.rows() == [(0x10, "0000 0005", "5 (0x00000005)"),
                             (0x12, "FFFF FFFF", "4294967295 (0xFFFFFFFF)")]


@pytest.mark.parametrize(("request_", "why"), [
    (RawRequest("B01", 0, 3, 0, 1), "slave id"),
    (RawRequest("B01", 1, 7, 0, 1), "function"),
    (RawRequest("B01", 1, 3, 0, 126), "125"),
    (RawRequest("B01", 1, 1, 0, 2001), "2000"),
    (RawRequest("B01", 1, 3, 0xFFFF, 2), "65535"),
    (RawRequest("B01", 1, 6, 0, dtype="u32", values=("1",)), "function 10"),
    (RawRequest("B01", 1, 5, 0, values=("1", "0")), "0F"),
    (RawRequest("B01", 1, 16, 0), "value"),
])
def test_requests_that_cannot_be_sent(request_, why):
    with pytest.raises(UserFacingError, match=why):
        request_.check()


def test_the_ddsy1352_comm_block():
    """0360H as the vendor tool packs it: address, baud code, parity code, stop code, then the
    BCD meter number (kept as read when a setting is written)."""
    comm = load_profile("acrel-ddsy1352").comm
    assert comm is not None
    data = bytes([0x03, 0x03, 0x00, 0x00, 0x31, 0x00, 0x00, 0x00, 0x10, 0x02])
    s = decode_comm(comm, data)
    assert (s.address, s.baud, s.parity, s.stop_bits) == (3, 9600, "N", 1)
    moved = encode_comm(comm, data, address=20, baud=19200, parity="E")
    assert moved == bytes([20, 4, 2, 0, 0x31, 0x00, 0x00, 0x00, 0x10, 0x02])
    with pytest.raises(ValueError):
        encode_comm(comm, data, baud=57600)
    with pytest.raises(ValueError):
        encode_comm(comm, data, address=248)
    assert decode_comm(comm, bytes([1, 9, 0, 0]) + bytes(6)).baud is None  # unknown code
