"""Recharge tokens: how money reaches a prepaid meter, encrypted and authenticated.

A token says "meter *serial* may add *amount_cents* as its purchase number *purchase_count*".
The station makes it with :func:`make_token` under a master key; the meter (and the simulator,
which plays the meter) checks it with :func:`verify_token` under its own per-meter keys and
applies it only if it is for this meter, authentic and exactly the next purchase.

The layout (26 bytes, 13 Modbus registers, high byte first)::

    offset size  field                      protection
    0      2     magic b"VK"                clear, authenticated
    2      1     format version (1)         clear, authenticated
    3      1     key version (1..255)       clear, authenticated
    4      6     meter serial, packed BCD   clear, authenticated
    10     8     3DES-CBC(IV=0) of          encrypted, authenticated
                   purchase count u16 BE
                   amount in cents u32 BE
                   reserved u16 = 0
    18     8     3DES-CMAC over bytes 0..17 (full 64-bit tag)

Each meter has its own pair of 2-key 3DES keys, derived from the master key and the serial
(EMV option A diversification: the key is E(Y) || E(~Y) under the master key), one for
encryption and one for the MAC. ``docs/meter-protocol.md`` ("Recharge token") explains the
choices, the order of the meter's checks and why IV=0 is sound here.

Key material is never logged, printed or put in an exception message.
"""

from __future__ import annotations

import enum
import hmac
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from Crypto.Cipher import DES3
from Crypto.Hash import CMAC
from Crypto.Random import get_random_bytes

from app.errors import ConfigError

#: Length of a token: 13 Modbus registers. Fixed by the meter's register map.
TOKEN_BYTES = 26
#: The largest amount one token may carry: 10,000 yuan.
MAX_AMOUNT_CENTS = 10_000_00
#: The largest purchase count (a u16); a meter at this count takes no more tokens.
MAX_PURCHASE_COUNT = 0xFFFF
#: The first two bytes of every token.
TOKEN_MAGIC = b"VK"
#: The token format this module writes and reads.
FORMAT_VERSION = 1
#: Digits in a meter serial.
SERIAL_DIGITS = 12

#: Diversification constants: the first two bytes of the block encrypted under the master key,
#: so the encryption and MAC keys of a meter are unrelated.
ENC_KEY_CONSTANT = b"EK"
MAC_KEY_CONSTANT = b"MK"

_HEADER = struct.Struct(">2sBB6s")  # magic, format version, key version, serial BCD
_PLAIN = struct.Struct(">HIH")  # purchase count, amount cents, reserved
_BLOCK = DES3.block_size  # 8
_MAC_BYTES = 8  # the full 3DES-CMAC tag
_HEADER_BYTES = _HEADER.size  # 10
_CIPHER_BYTES = _PLAIN.size  # 8, one 3DES block
assert _HEADER_BYTES + _CIPHER_BYTES + _MAC_BYTES == TOKEN_BYTES
assert _CIPHER_BYTES == _BLOCK


class TokenStatus(enum.IntEnum):
    """What a meter did with the last token, as its ``token_status`` register reports it.

    The meter checks in this order and reports the first failure: length and format
    (``BAD_FORMAT``), serial (``FOREIGN``), key version (``UNKNOWN_KEY``), MAC (``BAD_MAC``),
    reserved field (``BAD_FORMAT``), amount (``BAD_AMOUNT``), purchase count (``REPLAYED``,
    ``OUT_OF_SEQUENCE``). The first three are decided on clear, unauthenticated bytes.
    """

    NONE = 0  # no token received yet
    APPLIED = 1
    BAD_MAC = 2  # forged or tampered (authentication failed)
    FOREIGN = 3  # for another meter's serial
    REPLAYED = 4  # purchase count <= meter's current count
    OUT_OF_SEQUENCE = 5  # purchase count > current + 1
    BAD_FORMAT = 6  # wrong length / magic / format version / serial digits / reserved field
    UNKNOWN_KEY = 7  # key version the meter does not hold
    BAD_AMOUNT = 8  # zero or above MAX_AMOUNT_CENTS


@dataclass(frozen=True)
class MasterKey:
    """A versioned 3DES master key (16 bytes: 2-key, 24 bytes: 3-key).

    The version travels in every token so meters can hold the keys of several versions while
    the master key is rotated. ``repr`` never shows the key.
    """

    version: int
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise TypeError("master key version must be an int")
        if not 1 <= self.version <= 255:
            raise ValueError(f"master key version must be 1..255, not {self.version}")
        if not isinstance(self.key, bytes):
            raise TypeError("master key must be bytes")
        if len(self.key) not in (16, 24):
            raise ValueError(f"master key must be 16 or 24 bytes, not {len(self.key)}")
        try:
            DES3.adjust_key_parity(self.key)
        except ValueError:
            # Do not chain: the original message may quote the key.
            raise ValueError("master key degenerates to single DES (repeated halves)") from None

    def __repr__(self) -> str:
        return f"MasterKey(version={self.version}, key=<{len(self.key)} bytes hidden>)"

    @classmethod
    def generate(cls, version: int = 1) -> MasterKey:
        """A new random 2-key 3DES master key with odd parity."""
        while True:
            try:
                key = DES3.adjust_key_parity(get_random_bytes(16))
            except ValueError:  # both halves equal: probability 2**-56, draw again
                continue
            return cls(version, key)

    @classmethod
    def from_hex(cls, text: str, version: int = 1) -> MasterKey:
        """The key written as 32 or 48 hex digits (spaces and case ignored)."""
        digits = "".join(text.split())
        if len(digits) not in (32, 48):
            raise ValueError(f"master key must be 32 or 48 hex digits, not {len(digits)}")
        try:
            key = bytes.fromhex(digits)
        except ValueError:
            raise ValueError("master key is not hexadecimal") from None
        return cls(version, key)

    def to_hex(self) -> str:
        """The key as lowercase hex digits (what :meth:`from_hex` reads)."""
        return self.key.hex()


# ----------------------------------------------------------------------------- key file


def load_master_key(path: str | os.PathLike[str]) -> MasterKey:
    """Read a master key file: one line ``version:hex``.

    Raises :class:`ConfigError` naming the file if it is missing, unreadable, malformed, or (on
    POSIX) group or others have any permission on it. The message never quotes the file's text.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise ConfigError(f"master key file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"master key file {path} cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if os.name == "posix" and st.st_mode & 0o077:
            raise ConfigError(
                f"master key file {path} is accessible to group or others "
                f"(mode {st.st_mode & 0o777:03o}); make it private: chmod 600 {path}"
            )
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(4096)
    except OSError as exc:
        raise ConfigError(f"master key file {path} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"master key file {path} is not ASCII text") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ConfigError(
            f"master key file {path} must hold exactly one line 'version:hex', "
            f"found {len(lines)} non-empty lines"
        )
    version_text, sep, hex_text = lines[0].partition(":")
    if not sep:
        raise ConfigError(f"master key file {path} must hold one line 'version:hex' (no ':')")
    version_text = version_text.strip()
    if not (version_text.isascii() and version_text.isdigit()):
        raise ConfigError(f"master key file {path}: version must be a number 1..255")
    try:
        return MasterKey.from_hex(hex_text, int(version_text))
    except (ValueError, TypeError) as exc:
        # MasterKey's messages are about lengths and ranges, never the key itself.
        raise ConfigError(f"master key file {path}: {exc}") from None


def save_master_key(path: str | os.PathLike[str], key: MasterKey) -> None:
    """Write ``key`` to a new file readable by its owner only (mode 0o600).

    Parent directories are created. The file appears complete or not at all (written to a
    temporary file in the same directory, flushed, then hard-linked into place, which also
    refuses to replace a file that appeared meanwhile). An existing file is never overwritten:
    :class:`ConfigError`.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise ConfigError(f"master key file {path} already exists; refusing to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the directory of {path}: {exc.strerror}") from None
    data = f"{key.version}:{key.to_hex()}\n".encode("ascii")
    try:
        # mkstemp creates the file with mode 0o600 and O_EXCL.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write master key file {path}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)  # atomic, and fails if the name exists
    except FileExistsError:
        raise ConfigError(
            f"master key file {path} already exists; refusing to overwrite it"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot write master key file {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    if hasattr(os, "O_DIRECTORY"):
        try:
            dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)


# ----------------------------------------------------------------------------- keys


def _check_serial(serial: object) -> str:
    if not (
        isinstance(serial, str)
        and len(serial) == SERIAL_DIGITS
        and serial.isascii()
        and serial.isdigit()
    ):
        raise ValueError(f"meter serial must be {SERIAL_DIGITS} decimal digits, not {serial!r}")
    return serial


def _serial_bcd(serial: str) -> bytes:
    """Twelve digits as six bytes of packed BCD, first digit in the high nibble of byte 0."""
    return bytes.fromhex(_check_serial(serial))


def _bcd_serial(data: bytes) -> str | None:
    """The inverse of :func:`_serial_bcd`, or None if a nibble is not a decimal digit."""
    text = data.hex()
    return text if text.isdigit() else None


def _diversify(master: MasterKey, constant: bytes, serial_bcd: bytes) -> bytes:
    """EMV option A: ``E_MK(Y) || E_MK(~Y)`` with odd parity, Y = constant || serial BCD."""
    y = constant + serial_bcd
    not_y = bytes(b ^ 0xFF for b in y)
    cipher = DES3.new(master.key, DES3.MODE_ECB)
    # A 2**-56 chance of equal halves makes adjust_key_parity raise ValueError; let it.
    return DES3.adjust_key_parity(cipher.encrypt(y) + cipher.encrypt(not_y))


def meter_keys(master: MasterKey, serial: str) -> tuple[bytes, bytes]:
    """The meter's ``(enc_key, mac_key)``: two 16-byte 3DES keys derived from the master key.

    This is what is loaded into meter ``serial`` for key version ``master.version``; the
    station never needs to store it.
    """
    bcd = _serial_bcd(serial)
    return _diversify(master, ENC_KEY_CONSTANT, bcd), _diversify(master, MAC_KEY_CONSTANT, bcd)


def _cmac(mac_key: bytes, data: bytes) -> bytes:
    return CMAC.new(mac_key, data, ciphermod=DES3).digest()[:_MAC_BYTES]


# ----------------------------------------------------------------------------- tokens


def make_token(master: MasterKey, serial: str, amount_cents: int, purchase_count: int) -> bytes:
    """The 26-byte token that credits ``amount_cents`` to meter ``serial``.

    ``purchase_count`` must be the meter's current count plus one. Raises ValueError for an
    amount outside 1..``MAX_AMOUNT_CENTS``, a count outside 1..65535 or a bad serial.
    """
    if not isinstance(master, MasterKey):
        raise TypeError("master must be a MasterKey")
    bcd = _serial_bcd(serial)
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise ValueError("amount must be an int number of cents")
    if not 1 <= amount_cents <= MAX_AMOUNT_CENTS:
        raise ValueError(f"amount must be 1..{MAX_AMOUNT_CENTS} cents, not {amount_cents}")
    if isinstance(purchase_count, bool) or not isinstance(purchase_count, int):
        raise ValueError("purchase count must be an int")
    if not 1 <= purchase_count <= MAX_PURCHASE_COUNT:
        raise ValueError(f"purchase count must be 1..{MAX_PURCHASE_COUNT}, not {purchase_count}")
    enc_key, mac_key = meter_keys(master, serial)
    header = _HEADER.pack(TOKEN_MAGIC, FORMAT_VERSION, master.version, bcd)
    plain = _PLAIN.pack(purchase_count, amount_cents, 0)
    cipher = DES3.new(enc_key, DES3.MODE_CBC, iv=bytes(_BLOCK)).encrypt(plain)
    body = header + cipher
    token = body + _cmac(mac_key, body)
    assert len(token) == TOKEN_BYTES
    return token


@dataclass(frozen=True)
class TokenVerdict:
    """What the meter decided about a token.

    ``amount_cents`` and ``purchase_count`` are filled only when the token was authentic
    (``APPLIED``, ``REPLAYED``, ``OUT_OF_SEQUENCE``, ``BAD_AMOUNT``) and are 0 otherwise. Only
    ``APPLIED`` may change the meter: credit the amount and set the count to ``purchase_count``.
    """

    status: TokenStatus
    amount_cents: int = 0
    purchase_count: int = 0

    @property
    def applied(self) -> bool:
        return self.status == TokenStatus.APPLIED


def verify_token(
    keys_by_version: Mapping[int, tuple[bytes, bytes]],
    serial: str,
    current_count: int,
    token: bytes,
) -> TokenVerdict:
    """The meter's check of ``token``: apply it only if for ``serial``, authentic and next.

    ``keys_by_version`` maps a key version to this meter's ``(enc_key, mac_key)`` for that
    version; ``current_count`` is the meter's purchase count (0 before the first token).
    Whatever ``token`` is (wrong type, length, random bytes), this returns a verdict and never
    raises; a key entry that is not a usable key pair counts as a key the meter does not hold.
    The MAC is compared in constant time.
    """
    if not isinstance(token, (bytes, bytearray, memoryview)):
        return TokenVerdict(TokenStatus.BAD_FORMAT)
    token = bytes(token)
    if len(token) != TOKEN_BYTES:
        return TokenVerdict(TokenStatus.BAD_FORMAT)
    body, tag = token[:-_MAC_BYTES], token[-_MAC_BYTES:]
    magic, fmt, key_version, serial_bcd = _HEADER.unpack_from(body)
    if magic != TOKEN_MAGIC or fmt != FORMAT_VERSION:
        return TokenVerdict(TokenStatus.BAD_FORMAT)
    token_serial = _bcd_serial(serial_bcd)
    if token_serial is None:
        return TokenVerdict(TokenStatus.BAD_FORMAT)
    # Decided on clear bytes before the MAC: a foreign token fails the MAC under this meter's
    # keys anyway, and saying FOREIGN tells the operator which mistake was made.
    if token_serial != serial:
        return TokenVerdict(TokenStatus.FOREIGN)
    try:
        enc_key, mac_key = keys_by_version[key_version]
        expected = _cmac(mac_key, body)
        decryptor = DES3.new(enc_key, DES3.MODE_CBC, iv=bytes(_BLOCK))
    except (KeyError, ValueError, TypeError):
        return TokenVerdict(TokenStatus.UNKNOWN_KEY)
    if not hmac.compare_digest(expected, tag):
        return TokenVerdict(TokenStatus.BAD_MAC)
    # Authentic from here on: the fields were written by the holder of the master key.
    count, amount, reserved = _PLAIN.unpack(decryptor.decrypt(body[_HEADER_BYTES:]))
    if reserved != 0:
        return TokenVerdict(TokenStatus.BAD_FORMAT)
    if not 1 <= amount <= MAX_AMOUNT_CENTS:
        return TokenVerdict(TokenStatus.BAD_AMOUNT, amount, count)
    if count <= current_count:
        return TokenVerdict(TokenStatus.REPLAYED, amount, count)
    if count != current_count + 1:
        return TokenVerdict(TokenStatus.OUT_OF_SEQUENCE, amount, count)
    return TokenVerdict(TokenStatus.APPLIED, amount, count)
