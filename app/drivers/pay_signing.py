"""The payment providers' signatures, both sides (the station verifies, the simulator signs).

Alipay (RSA2): the signed text is the notification's parameters except ``sign`` and
``sign_type``, those with a non-empty value, sorted by key and joined ``k=v&k=v`` (the values as
received, URL-decoded); the signature is the base64 of SHA256withRSA (PKCS#1 v1.5) under
Alipay's key, checked with Alipay's public key.

WeChat Pay v3: the signed message is ``timestamp\\nnonce\\nbody\\n`` (the headers
``Wechatpay-Timestamp`` and ``Wechatpay-Nonce``, the body byte for byte), signed SHA256withRSA
by the platform; ``Wechatpay-Signature`` is its base64 and ``Wechatpay-Serial`` names the
platform key. The notification's ``resource`` is encrypted with AES-256-GCM under the
merchant's APIv3 key (32 bytes): ``ciphertext`` is the base64 of the encrypted text with the
16-byte tag at its end, ``nonce`` the 12-character nonce and ``associated_data`` the
authenticated data.

Pure functions (no files, no database): a wrong signature, key or text is ``False`` or
``PayCryptoError``, never a crash.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
from collections.abc import Mapping

from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.Signature import pkcs1_15

GCM_TAG_BYTES = 16
APIV3_KEY_BYTES = 32
NONCE_ALPHABET = string.ascii_letters + string.digits


class PayCryptoError(ValueError):
    """A key, a signature or an encrypted resource that cannot be used."""


# -- keys --------------------------------------------------------------------------------------
def new_key_pair(bits: int = 2048) -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a new RSA key."""
    key = RSA.generate(bits)
    return key.export_key("PEM", pkcs=8), key.public_key().export_key("PEM")


def load_key(pem: bytes | str) -> RSA.RsaKey:
    """An RSA key from PEM (or Alipay's bare base64 DER, as its console shows a key)."""
    data = pem.encode() if isinstance(pem, str) else pem
    text = data.strip()
    try:
        if not text.startswith(b"-----"):
            text = base64.b64decode(b"".join(text.split()), validate=True)
        return RSA.import_key(text)
    except (ValueError, IndexError, TypeError, binascii.Error) as exc:
        raise PayCryptoError(f"not an RSA key: {type(exc).__name__}") from None


def _sign(private_key: RSA.RsaKey, message: bytes) -> str:
    if not private_key.has_private():
        raise PayCryptoError("signing needs a private key")
    return base64.b64encode(pkcs1_15.new(private_key).sign(SHA256.new(message))).decode()


def _verify(public_key: RSA.RsaKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
        pkcs1_15.new(public_key).verify(SHA256.new(message), raw)
    except (ValueError, TypeError, binascii.Error):
        return False
    return True


# -- Alipay ------------------------------------------------------------------------------------
def alipay_sign_content(params: Mapping[str, str]) -> str:
    """The text Alipay signs: every parameter except ``sign`` and ``sign_type`` with a value,
    sorted by key, ``k=v`` joined with ``&``."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params)
                    if k not in ("sign", "sign_type") and params[k] not in (None, ""))


def alipay_sign(params: Mapping[str, str], private_key: RSA.RsaKey) -> str:
    """The ``sign`` of ``params`` (RSA2: SHA256withRSA, base64)."""
    return _sign(private_key, alipay_sign_content(params).encode("utf-8"))


def alipay_verify(params: Mapping[str, str], public_key: RSA.RsaKey) -> bool:
    """True when ``params`` carry ``sign_type`` RSA2 and a ``sign`` Alipay's key made over
    them."""
    sign = params.get("sign") or ""
    if not sign or params.get("sign_type", "RSA2") != "RSA2":
        return False
    return _verify(public_key, alipay_sign_content(params).encode("utf-8"), sign)


# -- WeChat Pay v3 -----------------------------------------------------------------------------
def wechat_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def wechat_sign(timestamp: str, nonce: str, body: bytes, private_key: RSA.RsaKey) -> str:
    """``Wechatpay-Signature`` for a body sent at ``timestamp`` with ``nonce``."""
    return _sign(private_key, wechat_message(timestamp, nonce, body))


def wechat_verify(timestamp: str, nonce: str, body: bytes, signature: str,
                  public_key: RSA.RsaKey) -> bool:
    if not (timestamp and nonce and signature):
        return False
    return _verify(public_key, wechat_message(timestamp, nonce, body), signature)


def new_nonce(length: int = 32) -> str:
    return "".join(secrets.choice(NONCE_ALPHABET) for _ in range(length))


def _aes_key(key: bytes) -> bytes:
    if len(key) != APIV3_KEY_BYTES:
        raise PayCryptoError(f"an APIv3 key has {APIV3_KEY_BYTES} bytes, not {len(key)}")
    return key


def wechat_encrypt(plaintext: bytes, apiv3_key: bytes, associated_data: str = "",
                   nonce: str | None = None) -> dict[str, str]:
    """The ``resource`` of a notification: AES-256-GCM, the tag after the ciphertext."""
    nonce = nonce or new_nonce(12)
    cipher = AES.new(_aes_key(apiv3_key), AES.MODE_GCM, nonce=nonce.encode())
    cipher.update(associated_data.encode())
    encrypted, tag = cipher.encrypt_and_digest(plaintext)
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(
        encrypted + tag).decode(), "associated_data": associated_data, "nonce": nonce}


def wechat_decrypt(resource: Mapping[str, str], apiv3_key: bytes) -> bytes:
    """The plaintext of a notification's ``resource``; PayCryptoError when it was not
    encrypted under this key or was changed."""
    try:
        if resource.get("algorithm", "AEAD_AES_256_GCM") != "AEAD_AES_256_GCM":
            raise PayCryptoError(f"unknown algorithm {resource.get('algorithm')!r}")
        raw = base64.b64decode(str(resource["ciphertext"]), validate=True)
        if len(raw) <= GCM_TAG_BYTES:
            raise PayCryptoError("the ciphertext is shorter than its tag")
        cipher = AES.new(_aes_key(apiv3_key), AES.MODE_GCM,
                         nonce=str(resource["nonce"]).encode())
        cipher.update(str(resource.get("associated_data") or "").encode())
        return cipher.decrypt_and_verify(raw[:-GCM_TAG_BYTES], raw[-GCM_TAG_BYTES:])
    except PayCryptoError:
        raise
    except (KeyError, ValueError, TypeError, binascii.Error) as exc:
        raise PayCryptoError(f"the resource cannot be decrypted: {type(exc).__name__}") \
            from None
