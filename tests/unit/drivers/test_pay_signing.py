"""The providers' signatures with real RSA keys made here: both sides agree, and any change,
another key or another APIv3 key is refused."""

from __future__ import annotations

import base64
import json

import pytest
from Crypto.Hash import SHA256
from Crypto.Signature import pkcs1_15

from app.drivers import pay_signing as ps


@pytest.fixture(scope="module")
def keys():
    priv, pub = ps.new_key_pair()
    other, _pub = ps.new_key_pair()
    return ps.load_key(priv), ps.load_key(pub), ps.load_key(other)


def test_alipay_signed_text_leaves_out_sign_sign_type_and_empty_values():
    params = {"trade_no": "2026", "sign": "x", "sign_type": "RSA2", "b": "", "a": "1",
              "out_trade_no": "VK1", "total_amount": "10.00"}
    assert ps.alipay_sign_content(params) == \
        "a=1&out_trade_no=VK1&total_amount=10.00&trade_no=2026"


def test_alipay_round_trip_and_refusals(keys):
    private, public, other = keys
    params = {"out_trade_no": "VK1", "trade_no": "20262200", "total_amount": "12.34",
              "trade_status": "TRADE_SUCCESS", "sign_type": "RSA2", "subject": "电费"}
    params["sign"] = ps.alipay_sign(params, private)
    # the signature is SHA256withRSA over the sorted text, base64
    pkcs1_15.new(public).verify(SHA256.new(ps.alipay_sign_content(params).encode()),
                                base64.b64decode(params["sign"]))
    assert ps.alipay_verify(params, public)
    assert not ps.alipay_verify({**params, "total_amount": "99.00"}, public)
    assert not ps.alipay_verify({**params, "sign": ps.alipay_sign(params, other)}, public)
    assert not ps.alipay_verify({**params, "sign": "not base64!"}, public)
    assert not ps.alipay_verify({**params, "sign_type": "RSA"}, public)
    assert not ps.alipay_verify({k: v for k, v in params.items() if k != "sign"}, public)
    with pytest.raises(ps.PayCryptoError):
        ps.alipay_sign(params, public)


def test_alipay_bare_base64_public_key_as_its_console_shows_it(keys):
    _private, public, _other = keys
    der = base64.b64encode(public.export_key("DER")).decode()
    assert ps.load_key(der) == public
    with pytest.raises(ps.PayCryptoError):
        ps.load_key("no key")


def test_wechat_signature_round_trip(keys):
    private, public, other = keys
    body = json.dumps({"id": "1", "resource": {}}).encode()
    sig = ps.wechat_sign("1700000000", "abc", body, private)
    assert ps.wechat_message("1700000000", "abc", body) == b"1700000000\nabc\n" + body + b"\n"
    assert ps.wechat_verify("1700000000", "abc", body, sig, public)
    assert not ps.wechat_verify("1700000001", "abc", body, sig, public)
    assert not ps.wechat_verify("1700000000", "abd", body, sig, public)
    assert not ps.wechat_verify("1700000000", "abc", body + b" ", sig, public)
    assert not ps.wechat_verify("1700000000", "abc", body,
                                ps.wechat_sign("1700000000", "abc", body, other), public)
    assert not ps.wechat_verify("", "abc", body, sig, public)


def test_wechat_resource_aes_256_gcm():
    key = b"0123456789abcdef0123456789abcdef"
    plain = json.dumps({"out_trade_no": "VK1", "amount": {"total": 1234}}).encode()
    res = ps.wechat_encrypt(plain, key, "transaction", nonce="fedcba987654")
    raw = base64.b64decode(res["ciphertext"])
    assert len(raw) == len(plain) + ps.GCM_TAG_BYTES  # the tag at its end
    assert ps.wechat_decrypt(res, key) == plain
    with pytest.raises(ps.PayCryptoError):
        ps.wechat_decrypt(res, b"1" * 32)  # another APIv3 key
    with pytest.raises(ps.PayCryptoError):
        ps.wechat_decrypt({**res, "associated_data": "other"}, key)
    flipped = bytes([raw[0] ^ 1]) + raw[1:]
    with pytest.raises(ps.PayCryptoError):
        ps.wechat_decrypt({**res, "ciphertext": base64.b64encode(flipped).decode()}, key)
    with pytest.raises(ps.PayCryptoError):
        ps.wechat_decrypt({"nonce": "x"}, key)
    with pytest.raises(ps.PayCryptoError):
        ps.wechat_encrypt(plain, b"short")
