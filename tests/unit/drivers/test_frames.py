"""Frames taken apart and explained: RTU and Modbus-TCP, built byte by byte with their CRC."""

from __future__ import annotations

import struct

from app.drivers.frames import (
    Frame,
    FrameRing,
    FrameTap,
    crc16,
    describe,
    make_frame,
    mbap_frame,
    parse,
    rtu_frame,
)
from app.drivers.profile import load_profile

DDSY = load_profile("acrel-ddsy1352")


def _read_request(slave: int, start: int, count: int, fc: int = 3) -> bytes:
    return rtu_frame(struct.pack(">BBHH", slave, fc, start, count))


def _read_answer(slave: int, regs: list[int], fc: int = 3) -> bytes:
    return rtu_frame(struct.pack(">BBB", slave, fc, 2 * len(regs))
                     + b"".join(r.to_bytes(2, "big") for r in regs))


def test_crc_of_a_known_frame():
    # the textbook example: read 1 holding register at 0 from slave 1 is 01 03 00 00 00 01 84 0A
    assert _read_request(1, 0, 1) == bytes.fromhex("010300000001840A")
    assert crc16(bytes.fromhex("010300000001")) == 0x0A84


def test_rtu_request_and_answer_are_decoded():
    req = _read_request(3, 0x000B, 2)
    p = parse(req)
    assert (p.slave, p.function, p.valid) == (3, 3, True)
    tx = make_frame(1.0, "B01", "tx", req)
    assert (tx.slave, tx.function, tx.error) == (3, 3, "")
    assert describe(tx, DDSY) == "read 0x000B x2: voltage, current"

    rx = make_frame(1.02, "B01", "rx", _read_answer(3, [2298, 120]), request=req)
    assert rx.error == ""
    assert describe(rx, DDSY, "3-214") == "meter 3-214: voltage 229.8 V, current 1.20 A"


def test_a_corrupted_crc_is_flagged():
    good = _read_answer(3, [2298, 120])
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])
    frame = make_frame(1.0, "B01", "rx", bad, request=_read_request(3, 0x000B, 2))
    assert frame.error == "crc"
    assert not parse(bad).valid
    text = describe(frame, DDSY, "3-214")
    assert text.startswith("corrupt frame: CRC")
    assert f"should be {crc16(good[:-2]):04X}" in text
    # a byte flipped in the body is caught the same way
    flipped = good[:4] + bytes([good[4] ^ 0x01]) + good[5:]
    assert make_frame(1.0, "B01", "rx", flipped).error == "crc"


def test_exception_answers_say_what_the_meter_refused():
    answer = rtu_frame(bytes([3, 0x83, 0x02]))
    frame = make_frame(1.0, "B01", "rx", answer, request=_read_request(3, 0x0100, 1))
    assert frame.error == "exception" and frame.exception_code == 2
    assert describe(frame, DDSY, "3-214") == "meter 3-214: exception 2: illegal data address"


def test_writes_are_decoded_by_the_profile():
    # FC16 to 0057H-0058H: control_mode forced_trip = [1, 1]
    body = struct.pack(">BBHHB", 3, 16, 0x0057, 2, 4) + struct.pack(">HH", 1, 1)
    tx = make_frame(1.0, "B01", "tx", rtu_frame(body))
    assert describe(tx, DDSY) == "write 0x0057 x2: control_mode = forced_trip"
    echo = make_frame(1.1, "B01", "rx", rtu_frame(struct.pack(">BBHH", 3, 16, 0x0057, 2)),
                      request=tx.data)
    assert describe(echo, DDSY, "3-214") == "meter 3-214: written 0x0057 x2: control_mode"
    single = make_frame(1.0, "B01", "tx", rtu_frame(struct.pack(">BBHH", 3, 6, 0x0481, 2000)))
    assert describe(single, DDSY) == "write 0x0481 = 0x07D0: power_limit = 2000 W"


def test_without_a_profile_the_frame_is_still_explained():
    tx = make_frame(1.0, "B01", "tx", _read_request(9, 0x0200, 4, fc=4))
    assert describe(tx) == "read 0x0200 x4"
    rx = make_frame(1.0, "B01", "rx", _read_answer(9, [1, 2, 3, 4], fc=4), request=tx.data)
    assert describe(rx, None, "B01/9") == "meter B01/9: 4 registers from 0x0200"


def test_modbus_tcp_frames():
    req = mbap_frame(7, 3, struct.pack(">BHH", 3, 0x000B, 2))
    assert req.hex() == "000700000006" "03" "0300" "0b0002"
    tx = make_frame(1.0, "B02", "tx", req, framing="tcp")
    assert (tx.slave, tx.function, tx.error) == (3, 3, "")
    assert describe(tx, DDSY) == "read 0x000B x2: voltage, current"
    answer = mbap_frame(7, 3, struct.pack(">BBHH", 3, 4, 2298, 120))
    rx = make_frame(1.0, "B02", "rx", answer, framing="tcp", request=req)
    assert describe(rx, DDSY, "3-214") == "meter 3-214: voltage 229.8 V, current 1.20 A"
    # garbled in transit: the protocol id is no longer 0
    garbled = answer[:2] + b"\xa5\xa5" + answer[4:]
    bad = make_frame(1.0, "B02", "rx", garbled, framing="tcp", request=req)
    assert bad.error == "crc" and "protocol id 0xA5A5" in describe(bad, DDSY)
    short = make_frame(1.0, "B02", "rx", answer[:-1], framing="tcp", request=req)
    assert short.error == "crc"


def test_json_round_trip():
    req = _read_request(3, 0x000B, 2)
    frame = make_frame(1234.5678, "B01", "rx", _read_answer(3, [1, 2]), request=req)
    assert Frame.from_json(frame.to_json()) == frame


def test_tap_pairs_requests_with_answers_and_flags_outcomes():
    out: list[Frame] = []
    clock = iter(x / 1000 for x in range(100, 200))
    tap = FrameTap("B01", out.append, clock=lambda: next(clock))
    req = _read_request(3, 0x000B, 2)
    answer = _read_answer(3, [2298, 120])
    tap.packet(True, req)
    tap.packet(False, answer[:3])  # the receive buffer grows: traced each time
    tap.packet(False, answer)
    tap.done("")
    assert [(f.direction, f.data, f.error) for f in out] == [("tx", req, ""), ("rx", answer, "")]
    assert out[1].request == req and out[1].t > out[0].t

    out.clear()  # silence: the request is flagged, no answer is made up
    tap.packet(True, req)
    tap.done("timeout")
    assert [(f.direction, f.error) for f in out] == [("tx", "timeout")]
    assert describe(out[0], DDSY) == "no answer (timeout): read 0x000B x2: voltage, current"

    out.clear()  # a corrupt answer; the framer threw it away, then more bytes came
    bad = answer[:-1] + b"\x00"
    tap.packet(True, req)
    tap.packet(False, bad)
    tap.packet(False, b"\x55")
    tap.done("crc")
    assert [(f.direction, f.data, f.error) for f in out] == [
        ("tx", req, ""), ("rx", bad + b"\x55", "crc")]

    out.clear()  # a tap set in the middle of a transaction says nothing about it
    tap.done("")
    assert out == []


def test_ring_keeps_the_last_frames():
    ring = FrameRing(3)
    for k in range(5):
        ring.add(make_frame(float(k), "B01", "tx", _read_request(1, k, 1)))
    assert [f.t for f in ring.frames()] == [2.0, 3.0, 4.0] and ring.total == 5
