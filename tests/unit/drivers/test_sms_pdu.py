"""SMS-SUBMIT PDUs: known vectors, both codings, concatenation and round trips."""

from __future__ import annotations

import pytest

from app.drivers.sms_pdu import (
    DCS_GSM7,
    DCS_UCS2,
    Concat,
    PduError,
    decode_submit,
    encode_number,
    encode_submit,
    fits_gsm7,
    pack_septets,
    reassemble,
    split_text,
    tpdu_length,
    unpack_septets,
)

# The classic example: "hellohello" to 46708251358, 7-bit, validity 4 days.
HELLO_PDU = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"


def test_the_classic_hellohello_pdu():
    (part,) = encode_submit("+46708251358", "hellohello")
    assert part.pdu == HELLO_PDU
    assert part.length == 23 == tpdu_length(part.pdu)
    got = decode_submit(HELLO_PDU)
    assert (got.number, got.text, got.dcs, got.concat, got.validity) == (
        "+46708251358", "hellohello", DCS_GSM7, None, 0xAA)


def test_septet_packing():
    assert pack_septets([ord(c) for c in "hellohello"]).hex().upper() == "E8329BFD4697D9EC37"
    assert unpack_septets(bytes.fromhex("E8329BFD4697D9EC37"), 10) == [ord(c) for c in
                                                                       "hellohello"]
    # after a 6-octet header: 1 fill bit, the first septet shifted up by one
    assert pack_septets([0x61], bytes(6))[6] == 0xC2


def test_numbers():
    assert encode_number("+8613800138000") == "0D91683108108300F0"
    assert encode_number("10086") == "05810180F6"
    for bad in ("", "+", "12a4", "+86 138", "１２３"):
        with pytest.raises(PduError):
            encode_number(bad)


def test_chinese_in_ucs2():
    (part,) = encode_submit("10086", "你好")
    assert part.pdu == "00110005810180F60008AA044F60597D"
    assert part.length == 15
    got = decode_submit(part.pdu)
    assert (got.number, got.text, got.dcs) == ("10086", "你好", DCS_UCS2)


def test_no_validity_period():
    (part,) = encode_submit("+46708251358", "hellohello", validity=None)
    assert part.pdu == "0001000B916407281553F800000AE8329BFD4697D9EC37"
    assert decode_submit(part.pdu).validity is None


def test_coding_choice():
    assert fits_gsm7("Balance: 5.00 yuan @ room 1-101 £$¥ÄÖÑÜ§¿äöñüà\r\n")
    assert not fits_gsm7("a{b}")  # the extension table is not used: UCS-2
    assert not fits_gsm7("余额")
    assert split_text("a{b}")[0] == DCS_UCS2
    assert split_text("x" * 160) == (DCS_GSM7, ["x" * 160])
    assert split_text("中" * 70) == (DCS_UCS2, ["中" * 70])


def test_200_chinese_characters_go_as_67_67_66_and_reassemble():
    text = "".join(chr(0x4E00 + i) for i in range(200))
    parts = encode_submit("+8613800138000", text, ref=0x42)
    assert len(parts) == 3
    decoded = [decode_submit(p.pdu) for p in parts]
    assert [len(d.text) for d in decoded] == [67, 67, 66]
    assert [d.concat for d in decoded] == [Concat(0x42, 3, 1), Concat(0x42, 3, 2),
                                           Concat(0x42, 3, 3)]
    assert all(p.length == tpdu_length(p.pdu) for p in parts)
    assert all(int(p.pdu[2:4], 16) & 0x40 for p in parts)  # UDHI
    assert reassemble(list(reversed(decoded))) == [("+8613800138000", text)]


def test_long_7bit_text_goes_in_153_septet_parts():
    text = "".join(chr(ord("a") + i % 26) for i in range(400))
    parts = encode_submit("10086", text, ref=9)
    decoded = [decode_submit(p.pdu) for p in parts]
    assert [len(d.text) for d in decoded] == [153, 153, 94]
    assert all(d.dcs == DCS_GSM7 for d in decoded)
    # the user data length counts the header's 7 septets: 160 in a full part
    assert [int(p.pdu[22:24], 16) for p in parts] == [160, 160, 7 + 94]
    assert [p.length for p in parts] == [11 + 140] * 2 + [11 + (7 * 101 + 7) // 8]
    assert reassemble(decoded) == [("10086", text)]


def test_a_161_character_text_is_two_parts_and_160_one():
    assert len(encode_submit("10086", "x" * 160)) == 1
    assert len(encode_submit("10086", "x" * 161)) == 2
    assert len(encode_submit("10086", "中" * 70)) == 1
    assert len(encode_submit("10086", "中" * 71)) == 2


def test_a_surrogate_pair_is_never_split():
    text = "中" * 66 + "😀" + "中" * 10
    parts = [decode_submit(p.pdu) for p in encode_submit("10086", text)]
    assert parts[0].text == "中" * 66 and parts[1].text.startswith("😀")
    assert reassemble(parts) == [("10086", text)]


@pytest.mark.parametrize("text", ["x", "@", "Hello\r\nworld", "¡Hola! ¿Qué tal?", "€uro",
                                  "房间 1-101 余额 5.00 元", "a" * 159, "a" * 320, "é" * 500])
@pytest.mark.parametrize("number", ["+8613800138000", "13800138000", "10086"])
def test_round_trips(number, text):
    parts = [decode_submit(p.pdu) for p in encode_submit(number, text, ref=200)]
    assert all(p.number == number for p in parts)
    assert reassemble(parts) == [(number, text)]


def test_an_incomplete_message_is_not_reassembled():
    parts = [decode_submit(p.pdu) for p in encode_submit("10086", "中" * 200, ref=1)]
    assert reassemble(parts[:2]) == []


def test_bad_input_is_refused():
    with pytest.raises(PduError):
        encode_submit("10086", "")
    with pytest.raises(PduError):
        encode_submit("10086", "x", ref=256)
    with pytest.raises(PduError):
        decode_submit("zz")
    with pytest.raises(PduError):
        decode_submit(HELLO_PDU[:20])
    with pytest.raises(PduError):
        decode_submit("0001000B916407281553F80004AA00")  # 8-bit data, not a text
