"""Recharge tokens: real 3DES and CMAC, no mocks.

The known-answer test checks the exact bytes against an independent reading of the format
written here with plain DES3-ECB (own key diversification, own parity, own CMAC, itself
checked against NIST SP 800-38B vectors), so it is not only the module agreeing with itself.
"""

from __future__ import annotations

import os
import stat
import struct

import pytest
from Crypto.Cipher import DES3
from hypothesis import given, settings
from hypothesis import strategies as st

from app.drivers.token import (
    MAX_AMOUNT_CENTS,
    TOKEN_BYTES,
    MasterKey,
    TokenStatus,
    TokenVerdict,
    load_master_key,
    make_token,
    meter_keys,
    save_master_key,
    verify_token,
)
from app.errors import ConfigError

SERIAL = "202401000123"
OTHER_SERIAL = "202401000124"
KAT_MASTER_HEX = "0123456789abcdeffedcba9876543210"
KAT_TOKEN_HEX = "564b01012024010001236a679d3d531509cf6d15fa2957138e7b"

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture(scope="module")
def master() -> MasterKey:
    return MasterKey.generate(version=1)


def keys_of(master: MasterKey, serial: str = SERIAL) -> dict[int, tuple[bytes, bytes]]:
    return {master.version: meter_keys(master, serial)}


# ----------------------------------------------------------------------------- independent


def _odd_parity(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        high = b & 0xFE
        out.append(high | (0 if bin(high).count("1") % 2 else 1))
    return bytes(out)


def _ref_diversify(master_key: bytes, constant: bytes, serial: str) -> bytes:
    """EMV option A written out: E(Y) || E(~Y) under the master key, odd parity."""
    y = constant + bytes.fromhex(serial)
    ecb = DES3.new(master_key, DES3.MODE_ECB)
    return _odd_parity(ecb.encrypt(y) + ecb.encrypt(bytes(b ^ 0xFF for b in y)))


def _shift_left(block: bytes) -> bytes:
    return ((int.from_bytes(block, "big") << 1) & (2**64 - 1)).to_bytes(8, "big")


def _ref_cmac(key: bytes, msg: bytes) -> bytes:
    """CMAC (NIST SP 800-38B) for a 64-bit block cipher, from the ECB primitive only."""
    ecb = DES3.new(key, DES3.MODE_ECB)
    rb = 0x1B
    l_block = ecb.encrypt(bytes(8))
    k1 = _shift_left(l_block)
    if l_block[0] & 0x80:
        k1 = k1[:-1] + bytes([k1[-1] ^ rb])
    k2 = _shift_left(k1)
    if k1[0] & 0x80:
        k2 = k2[:-1] + bytes([k2[-1] ^ rb])
    blocks = [msg[i : i + 8] for i in range(0, len(msg), 8)] or [b""]
    last = blocks[-1]
    if len(last) == 8:
        last = bytes(a ^ b for a, b in zip(last, k1, strict=True))
    else:
        padded = last + b"\x80" + bytes(7 - len(last))
        last = bytes(a ^ b for a, b in zip(padded, k2, strict=True))
    state = bytes(8)
    for block in [*blocks[:-1], last]:
        state = ecb.encrypt(bytes(a ^ b for a, b in zip(state, block, strict=True)))
    return state


def _ref_token(master_key: bytes, version: int, serial: str, count: int, amount: int,
               reserved: int = 0) -> bytes:
    """A token built from the documented layout, without the module under test."""
    enc_key = _ref_diversify(master_key, b"EK", serial)
    mac_key = _ref_diversify(master_key, b"MK", serial)
    header = b"VK" + bytes([1, version]) + bytes.fromhex(serial)
    cipher = DES3.new(enc_key, DES3.MODE_ECB).encrypt(struct.pack(">HIH", count, amount, reserved))
    body = header + cipher
    return body + _ref_cmac(mac_key, body)


@pytest.mark.parametrize(
    ("msg", "tag"),
    [
        ("", "bd2ebf9a3ba00361"),  # SP 800-38B D.7 example 17
        ("6bc1bee22e409f96", "4ff2ab813c53ce83"),  # example 18
        ("6bc1bee22e409f96e93d7e117393172aae2d8a57", "62dd1b471902bd4e"),  # example 19
    ],
)
def test_reference_cmac_matches_nist(msg: str, tag: str) -> None:
    key = bytes.fromhex("4cf15134a2850dd58a3d10ba80570d38")
    assert _ref_cmac(key, bytes.fromhex(msg)).hex() == tag


# ----------------------------------------------------------------------------- known answer


def test_known_answer() -> None:
    master = MasterKey.from_hex(KAT_MASTER_HEX, version=1)
    token = make_token(master, SERIAL, 123456, 7)
    assert token.hex() == KAT_TOKEN_HEX

    # Independently: the same bytes from the documented layout...
    assert _ref_token(master.key, 1, SERIAL, 7, 123456) == token
    # ...and the fields read back by hand.
    assert len(token) == TOKEN_BYTES == 26
    assert token[0:2] == b"VK"
    assert token[2] == 1  # format version
    assert token[3] == 1  # key version
    assert token[4:10] == bytes.fromhex(SERIAL)  # BCD, readable in a hex dump
    enc_key = _ref_diversify(master.key, b"EK", SERIAL)
    mac_key = _ref_diversify(master.key, b"MK", SERIAL)
    assert meter_keys(master, SERIAL) == (enc_key, mac_key)
    plain = DES3.new(enc_key, DES3.MODE_ECB).decrypt(token[10:18])
    assert struct.unpack(">HIH", plain) == (7, 123456, 0)
    assert _ref_cmac(mac_key, token[:18]) == token[18:]

    verdict = verify_token(keys_of(master), SERIAL, 6, token)
    assert verdict == TokenVerdict(TokenStatus.APPLIED, 123456, 7)


# ----------------------------------------------------------------------------- applying


def test_round_trip_applies(master: MasterKey) -> None:
    token = make_token(master, SERIAL, 5000, 1)
    assert len(token) == TOKEN_BYTES
    verdict = verify_token(keys_of(master), SERIAL, 0, token)
    assert verdict.status is TokenStatus.APPLIED
    assert verdict.applied
    assert (verdict.amount_cents, verdict.purchase_count) == (5000, 1)


@settings(max_examples=50, deadline=None)
@given(
    serial=st.from_regex(r"\A[0-9]{12}\Z"),
    amount=st.integers(1, MAX_AMOUNT_CENTS),
    count=st.integers(1, 0xFFFF),
)
def test_round_trip_any_fields(serial: str, amount: int, count: int) -> None:
    master = MasterKey.from_hex(KAT_MASTER_HEX, version=3)
    token = make_token(master, serial, amount, count)
    assert verify_token(keys_of(master, serial), serial, count - 1, token) == TokenVerdict(
        TokenStatus.APPLIED, amount, count
    )


def test_sequence_of_purchases(master: MasterKey) -> None:
    keys = keys_of(master)
    count = 0
    for n in range(1, 6):
        verdict = verify_token(keys, SERIAL, count, make_token(master, SERIAL, 100 * n, n))
        assert verdict.status is TokenStatus.APPLIED
        count = verdict.purchase_count
    assert count == 5


def test_bytearray_and_memoryview_accepted(master: MasterKey) -> None:
    token = make_token(master, SERIAL, 100, 1)
    assert verify_token(keys_of(master), SERIAL, 0, bytearray(token)).applied
    assert verify_token(keys_of(master), SERIAL, 0, memoryview(token)).applied


def test_meter_holding_several_key_versions() -> None:
    old, new = MasterKey.generate(1), MasterKey.generate(2)
    keys = {1: meter_keys(old, SERIAL), 2: meter_keys(new, SERIAL)}
    assert verify_token(keys, SERIAL, 0, make_token(old, SERIAL, 100, 1)).applied
    assert verify_token(keys, SERIAL, 1, make_token(new, SERIAL, 100, 2)).applied


# ----------------------------------------------------------------------------- refusals


def test_every_single_bit_flip_is_refused(master: MasterKey) -> None:
    token = make_token(master, SERIAL, 12345, 1)
    keys = keys_of(master)
    for bit in range(8 * TOKEN_BYTES):
        bad = bytearray(token)
        bad[bit // 8] ^= 1 << (bit % 8)
        status = verify_token(keys, SERIAL, 0, bytes(bad)).status
        assert status is not TokenStatus.APPLIED, bit
        byte = bit // 8
        if byte < 3:  # magic, format version
            assert status is TokenStatus.BAD_FORMAT, bit
        elif byte == 3:  # key version: this meter holds version 1 only
            assert status is TokenStatus.UNKNOWN_KEY, bit
        elif byte < 10:  # serial: another serial, or not decimal
            assert status in (TokenStatus.FOREIGN, TokenStatus.BAD_FORMAT), bit
        else:  # ciphertext, MAC
            assert status is TokenStatus.BAD_MAC, bit


def test_header_is_authenticated(master: MasterKey) -> None:
    """A meter holding every key version still refuses a token whose version was changed."""
    token = make_token(master, SERIAL, 12345, 1)
    keys = {v: meter_keys(master, SERIAL) for v in range(256)}
    for bit in range(8):
        bad = bytearray(token)
        bad[3] ^= 1 << bit
        assert verify_token(keys, SERIAL, 0, bytes(bad)).status is TokenStatus.BAD_MAC


def test_serial_rewritten_to_another_meter_fails_mac(master: MasterKey) -> None:
    token = make_token(master, SERIAL, 12345, 1)
    bad = token[:4] + bytes.fromhex(OTHER_SERIAL) + token[10:]
    verdict = verify_token(keys_of(master, OTHER_SERIAL), OTHER_SERIAL, 0, bad)
    assert verdict.status is TokenStatus.BAD_MAC


def test_forged_mac(master: MasterKey) -> None:
    token = make_token(master, SERIAL, 100, 1)
    forged = token[:18] + bytes(8)
    assert verify_token(keys_of(master), SERIAL, 0, forged) == TokenVerdict(TokenStatus.BAD_MAC)


def test_token_under_another_master_key_with_same_version(master: MasterKey) -> None:
    rogue = MasterKey.generate(version=master.version)
    token = make_token(rogue, SERIAL, 100, 1)
    assert verify_token(keys_of(master), SERIAL, 0, token).status is TokenStatus.BAD_MAC


def test_replay_is_refused(master: MasterKey) -> None:
    token = make_token(master, SERIAL, 100, 3)
    assert verify_token(keys_of(master), SERIAL, 2, token).applied
    again = verify_token(keys_of(master), SERIAL, 3, token)
    assert again == TokenVerdict(TokenStatus.REPLAYED, 100, 3)
    older = verify_token(keys_of(master), SERIAL, 10, token)
    assert older.status is TokenStatus.REPLAYED


def test_count_gap_is_out_of_sequence(master: MasterKey) -> None:
    token = make_token(master, SERIAL, 100, 5)
    verdict = verify_token(keys_of(master), SERIAL, 3, token)
    assert verdict == TokenVerdict(TokenStatus.OUT_OF_SEQUENCE, 100, 5)


def test_meter_at_last_count_takes_no_more(master: MasterKey) -> None:
    token = make_token(master, SERIAL, 100, 0xFFFF)
    assert verify_token(keys_of(master), SERIAL, 0xFFFE, token).applied
    assert verify_token(keys_of(master), SERIAL, 0xFFFF, token).status is TokenStatus.REPLAYED


def test_foreign_token(master: MasterKey) -> None:
    token = make_token(master, OTHER_SERIAL, 100, 1)
    verdict = verify_token(keys_of(master), SERIAL, 0, token)
    assert verdict == TokenVerdict(TokenStatus.FOREIGN)


def test_unknown_key_version(master: MasterKey) -> None:
    newer = MasterKey.generate(version=2)
    token = make_token(newer, SERIAL, 100, 1)
    assert verify_token(keys_of(master), SERIAL, 0, token) == TokenVerdict(TokenStatus.UNKNOWN_KEY)
    assert verify_token({}, SERIAL, 0, token).status is TokenStatus.UNKNOWN_KEY


def test_unusable_key_entry_is_unknown_key(master: MasterKey) -> None:
    token = make_token(master, SERIAL, 100, 1)
    for entry in [(b"short", b"short"), (bytes(16), bytes(16)), None, (b"x" * 16,)]:
        keys = {master.version: entry}
        assert verify_token(keys, SERIAL, 0, token).status is TokenStatus.UNKNOWN_KEY  # type: ignore[arg-type]


@pytest.mark.parametrize("cut", [0, 1, 10, 18, 25])
def test_truncated_token_is_bad_format(master: MasterKey, cut: int) -> None:
    token = make_token(master, SERIAL, 100, 1)
    assert verify_token(keys_of(master), SERIAL, 0, token[:cut]).status is TokenStatus.BAD_FORMAT


def test_bad_format_inputs_never_raise(master: MasterKey) -> None:
    token = make_token(master, SERIAL, 100, 1)
    keys = keys_of(master)
    for bad in [
        token + b"\0",
        b"\0" * TOKEN_BYTES,
        b"\xff" * TOKEN_BYTES,
        b"XX" + token[2:],
        token[:2] + b"\x02" + token[3:],  # a future format version
        token[:4] + b"\x20\x24\x01\x00\x01\x2a" + token[10:],  # "2a" is not BCD
    ]:
        assert verify_token(keys, SERIAL, 0, bad).status is TokenStatus.BAD_FORMAT
    for not_bytes in [None, "564b", 12, [1, 2, 3], token.hex()]:
        verdict = verify_token(keys, SERIAL, 0, not_bytes)  # type: ignore[arg-type]
        assert verdict.status is TokenStatus.BAD_FORMAT


def test_random_bytes_never_applied(master: MasterKey) -> None:
    keys = {v: meter_keys(master, SERIAL) for v in range(256)}
    for _ in range(200):
        junk = b"VK\x01" + os.urandom(TOKEN_BYTES - 3)
        junk = junk[:4] + bytes.fromhex(SERIAL) + junk[10:]
        assert verify_token(keys, SERIAL, 0, junk).status is TokenStatus.BAD_MAC


@pytest.mark.parametrize("amount", [0, MAX_AMOUNT_CENTS + 1, 2**32 - 1])
def test_authentic_bad_amount_refused_by_meter(master: MasterKey, amount: int) -> None:
    """A token carrying a bad amount under the right keys (only a broken vendor makes one)."""
    token = _ref_token(master.key, master.version, SERIAL, 1, amount)
    verdict = verify_token(keys_of(master), SERIAL, 0, token)
    assert verdict == TokenVerdict(TokenStatus.BAD_AMOUNT, amount, 1)


def test_authentic_nonzero_reserved_is_bad_format(master: MasterKey) -> None:
    token = _ref_token(master.key, master.version, SERIAL, 1, 100, reserved=1)
    assert verify_token(keys_of(master), SERIAL, 0, token).status is TokenStatus.BAD_FORMAT


@pytest.mark.parametrize("amount", [0, -1, MAX_AMOUNT_CENTS + 1, 1.5, True, "100"])
def test_make_token_rejects_bad_amounts(master: MasterKey, amount: object) -> None:
    with pytest.raises(ValueError, match="amount"):
        make_token(master, SERIAL, amount, 1)  # type: ignore[arg-type]


def test_make_token_accepts_limits(master: MasterKey) -> None:
    for amount in (1, MAX_AMOUNT_CENTS):
        assert len(make_token(master, SERIAL, amount, 1)) == TOKEN_BYTES


@pytest.mark.parametrize("count", [0, -1, 0x10000, True, 2.0])
def test_make_token_rejects_bad_counts(master: MasterKey, count: object) -> None:
    with pytest.raises(ValueError, match="purchase count"):
        make_token(master, SERIAL, 100, count)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "serial", ["", "12345678901", "1234567890123", "12345678901a", " 12345678901", "١٢٣٤٥٦٧٨٩٠١٢"]
)
def test_make_token_rejects_bad_serials(master: MasterKey, serial: str) -> None:
    with pytest.raises(ValueError, match="serial"):
        make_token(master, serial, 100, 1)


# ----------------------------------------------------------------------------- keys


def test_two_meters_get_different_keys(master: MasterKey) -> None:
    enc_a, mac_a = meter_keys(master, SERIAL)
    enc_b, mac_b = meter_keys(master, OTHER_SERIAL)
    assert len({enc_a, mac_a, enc_b, mac_b}) == 4
    assert all(len(k) == 16 for k in (enc_a, mac_a, enc_b, mac_b))
    assert master.key not in (enc_a, mac_a, enc_b, mac_b)


def test_meter_keys_usable_and_odd_parity(master: MasterKey) -> None:
    for key in meter_keys(master, SERIAL):
        assert key == _odd_parity(key)
        DES3.new(key, DES3.MODE_ECB)  # not degenerate


def test_three_key_master(master: MasterKey) -> None:
    key = DES3.adjust_key_parity(bytes(range(1, 25)))
    big = MasterKey(4, key)
    token = make_token(big, SERIAL, 100, 1)
    assert verify_token(keys_of(big), SERIAL, 0, token).applied
    assert _ref_token(key, 4, SERIAL, 1, 100) == token


def test_master_key_validation() -> None:
    with pytest.raises(ValueError):
        MasterKey(0, bytes(range(16)))
    with pytest.raises(ValueError):
        MasterKey(256, bytes(range(16)))
    with pytest.raises(ValueError):
        MasterKey(1, bytes(8))
    with pytest.raises(ValueError, match="degenerates"):
        MasterKey(1, b"\x01\x23\x45\x67\x89\xab\xcd\xef" * 2)
    with pytest.raises(ValueError):
        MasterKey.from_hex("00" * 15)
    with pytest.raises(ValueError):
        MasterKey.from_hex("zz" * 16)


def test_generate_and_hex_round_trip() -> None:
    a, b = MasterKey.generate(7), MasterKey.generate(7)
    assert a != b
    assert a.version == 7 and len(a.key) == 16
    assert MasterKey.from_hex(a.to_hex(), 7) == a


def test_repr_hides_the_key() -> None:
    key = MasterKey.from_hex(KAT_MASTER_HEX, version=9)
    for text in (repr(key), str(key), f"{key}", repr([key])):
        assert KAT_MASTER_HEX not in text.lower()
        assert repr(key.key) not in text
        assert "version=9" in text
        assert "hidden" in text


# ----------------------------------------------------------------------------- key file


def test_key_file_round_trip(tmp_path) -> None:
    key = MasterKey.generate(5)
    path = tmp_path / "deep" / "keys" / "master.key"
    save_master_key(path, key)
    assert load_master_key(path) == key
    assert path.read_text() == f"5:{key.to_hex()}\n"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_file_never_overwritten(tmp_path) -> None:
    first, second = MasterKey.generate(1), MasterKey.generate(2)
    path = tmp_path / "master.key"
    save_master_key(path, first)
    with pytest.raises(ConfigError, match="already exists"):
        save_master_key(path, second)
    assert load_master_key(path) == first


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o620, 0o660])
def test_key_file_readable_by_others_refused(tmp_path, mode: int) -> None:
    key = MasterKey.generate(1)
    path = tmp_path / "master.key"
    save_master_key(path, key)
    path.chmod(mode)
    with pytest.raises(ConfigError, match="group or others") as info:
        load_master_key(path)
    assert str(path) in str(info.value)
    assert key.to_hex() not in str(info.value)


def test_missing_key_file(tmp_path) -> None:
    path = tmp_path / "nowhere.key"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_master_key(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        KAT_MASTER_HEX + "\n",  # no version
        "1-" + KAT_MASTER_HEX,
        "x:" + KAT_MASTER_HEX,
        "0:" + KAT_MASTER_HEX,
        "256:" + KAT_MASTER_HEX,
        "1:" + KAT_MASTER_HEX[:-2],
        "1:" + KAT_MASTER_HEX[:-1] + "g",
        f"1:{KAT_MASTER_HEX}\n2:{KAT_MASTER_HEX}\n",
        "1:" + "01" * 16,  # degenerate: both halves equal
    ],
)
def test_malformed_key_file(tmp_path, text: str) -> None:
    path = tmp_path / "master.key"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        load_master_key(path)
    message = str(info.value)
    assert str(path) in message
    assert KAT_MASTER_HEX[:8] not in message  # never quote key material


def test_key_file_with_blank_lines_and_spaces(tmp_path) -> None:
    path = tmp_path / "master.key"
    path.write_text(f"\n  3 : {KAT_MASTER_HEX.upper()}  \n\n")
    path.chmod(0o600)
    assert load_master_key(path) == MasterKey.from_hex(KAT_MASTER_HEX, 3)


def test_key_file_is_a_directory(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        load_master_key(tmp_path)
    assert str(tmp_path) in str(info.value)
