"""SMS-SUBMIT PDUs (GSM 03.40 / 3GPP TS 23.040) for a modem in PDU mode: pure functions.

``encode_submit`` turns a number and a text into one PDU per part, each as the hex string a
modem takes after ``AT+CMGS=<tpdu_length>`` (no SMSC address: the PDU starts with ``00`` so the
modem uses the SIM's), and ``decode_submit`` reads one back (the modem simulator does, to
reassemble what it received).

- The destination: ``+86...`` is an international number (type 0x91), anything else unknown
  (0x81); digits as swapped semi-octets, an odd count padded with ``F``.
- The coding: GSM 7-bit default alphabet (DCS 0x00) when every character is in its basic set,
  packed septets; otherwise UCS-2 big-endian (DCS 0x08). Characters beyond the Basic
  Multilingual Plane are sent as UTF-16 surrogate pairs, never split between two parts.
- The validity period: relative (first octet bit 0x10) with 0xAA (4 days) by default, or none.
- A long text goes as concatenated parts, each with a user data header (UDHI 0x40) holding an
  information element 0x00: an 8-bit reference, the number of parts and the part's number.
  UCS-2: 70 characters single, 67 a part; 7-bit: 160 septets single, 153 a part (the header
  takes 7 septets: 6 octets and one fill bit).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The GSM 03.38 default alphabet's basic character set, by septet value (0x1B, the escape to
#: the extension table, is not a character here: a text needing the extension goes as UCS-2).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(GSM7_BASIC) == 128
_GSM7_INDEX = {c: i for i, c in enumerate(GSM7_BASIC) if i != 0x1B}

DCS_GSM7 = 0x00
DCS_UCS2 = 0x08

#: TP-MTI SMS-SUBMIT; TP-VPF relative; TP-UDHI.
_MTI_SUBMIT = 0x01
_VPF_MASK = 0x18
_VPF_RELATIVE = 0x10
_UDHI = 0x40

#: TP-VP 0xAA: (170 - 166) days = 4 days.
VP_4_DAYS = 0xAA

TYPE_INTERNATIONAL = 0x91
TYPE_UNKNOWN = 0x81

UCS2_SINGLE, UCS2_PART = 70, 67
GSM7_SINGLE, GSM7_PART = 160, 153

#: At most this many parts (the header counts them in one octet).
MAX_PARTS = 255


class PduError(ValueError):
    """A number, a text or a PDU that cannot be made or read."""


@dataclass(frozen=True, slots=True)
class PduPart:
    """One part as the modem takes it: the hex PDU (with the ``00`` SMSC prefix) and the
    TPDU length in octets (without the SMSC part) for ``AT+CMGS=<length>``."""

    pdu: str
    length: int


@dataclass(frozen=True, slots=True)
class Concat:
    """Where a part belongs: the message's reference, the number of parts, this part's number
    (from 1)."""

    ref: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class Submit:
    """What an SMS-SUBMIT PDU carries."""

    number: str
    text: str
    dcs: int
    concat: Concat | None = None
    message_ref: int = 0
    validity: int | None = None


# -- the destination address ---------------------------------------------------------------------
def encode_number(number: str) -> str:
    """The address field: digit count, type of number, swapped semi-octets (hex)."""
    digits = number[1:] if number.startswith("+") else number
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 20:
        raise PduError(f"not a phone number: {number!r}")
    kind = TYPE_INTERNATIONAL if number.startswith("+") else TYPE_UNKNOWN
    padded = digits + ("F" if len(digits) % 2 else "")
    swapped = "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))
    return f"{len(digits):02X}{kind:02X}{swapped}"


def _decode_number(data: bytes, pos: int) -> tuple[str, int]:
    count = data[pos]
    kind = data[pos + 1]
    octets = (count + 1) // 2
    raw = data[pos + 2:pos + 2 + octets]
    if len(raw) != octets:
        raise PduError("the PDU ends inside the address")
    digits = "".join(f"{b & 0x0F:X}{b >> 4:X}" for b in raw)[:count]
    if not digits.isdigit():
        raise PduError(f"the address holds more than digits: {digits!r}")
    prefix = "+" if kind & 0x70 == 0x10 else ""  # type of number: international
    return prefix + digits, pos + 2 + octets


# -- the texts ------------------------------------------------------------------------------------
def fits_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the default alphabet's basic set."""
    return all(c in _GSM7_INDEX for c in text)


def pack_septets(septets: list[int], header: bytes = b"") -> bytes:
    """Pack septets after ``header`` (octets), with the fill bits that bring the first septet
    to a septet boundary."""
    skip = (len(header) * 8 + 6) // 7  # septets the header (and its fill bits) take
    value = int.from_bytes(header, "little")
    for i, s in enumerate(septets):
        value |= (s & 0x7F) << (7 * (skip + i))
    bits = 7 * (skip + len(septets))
    return value.to_bytes((bits + 7) // 8, "little")


def unpack_septets(data: bytes, count: int, skip: int = 0) -> list[int]:
    """``count`` septets of ``data``, leaving out the first ``skip`` (a header and its fill)."""
    if (7 * count + 7) // 8 > len(data):
        raise PduError("the user data is shorter than its length says")
    value = int.from_bytes(data, "little")
    return [(value >> (7 * i)) & 0x7F for i in range(skip, count)]


def _utf16_units(text: str) -> list[bytes]:
    """The text as UCS-2 characters: one 2-octet unit each, a surrogate pair kept together."""
    return [c.encode("utf-16-be") for c in text]


def _chunks(units: list, size: int) -> list[list]:
    """Split ``units`` (each 1 or 2 code units long, by its length // 2 for UCS-2) in parts of
    at most ``size`` code units."""
    parts: list[list] = [[]]
    used = 0
    for u in units:
        n = len(u) // 2 if isinstance(u, bytes) else 1
        if used + n > size:
            parts.append([])
            used = 0
        parts[-1].append(u)
        used += n
    return parts


def split_text(text: str) -> tuple[int, list[str]]:
    """The coding ``text`` goes in and its parts' texts (one when it fits one message)."""
    if fits_gsm7(text):
        if len(text) <= GSM7_SINGLE:
            return DCS_GSM7, [text]
        return DCS_GSM7, ["".join(p) for p in _chunks(list(text), GSM7_PART)]
    units = _utf16_units(text)
    if sum(len(u) for u in units) // 2 <= UCS2_SINGLE:
        return DCS_UCS2, [text]
    return DCS_UCS2, [b"".join(p).decode("utf-16-be") for p in _chunks(units, UCS2_PART)]


# -- SMS-SUBMIT -----------------------------------------------------------------------------------
def encode_submit(number: str, text: str, ref: int = 0, validity: int | None = VP_4_DAYS,
                  message_ref: int = 0) -> list[PduPart]:
    """The PDUs of ``text`` to ``number``: one, or the concatenated parts of a long text
    sharing the 8-bit reference ``ref``. ``validity`` is the relative TP-VP octet, or None
    for no validity period."""
    if not text:
        raise PduError("an empty text")
    if not 0 <= ref <= 0xFF:
        raise PduError(f"a concatenation reference is one octet: {ref}")
    if validity is not None and not 0 <= validity <= 0xFF:
        raise PduError(f"a relative validity period is one octet: {validity}")
    address = encode_number(number)
    dcs, texts = split_text(text)
    if len(texts) > MAX_PARTS:
        raise PduError(f"the text is too long: {len(texts)} parts")
    out = []
    for seq, part in enumerate(texts, start=1):
        header = b"" if len(texts) == 1 else bytes((5, 0x00, 3, ref, len(texts), seq))
        first = _MTI_SUBMIT | (_VPF_RELATIVE if validity is not None else 0)
        first |= _UDHI if header else 0
        if dcs == DCS_GSM7:
            septets = [_GSM7_INDEX[c] for c in part]
            ud = pack_septets(septets, header)
            udl = (len(header) * 8 + 6) // 7 + len(septets)
        else:
            ud = header + part.encode("utf-16-be")
            udl = len(ud)
        vp = f"{validity:02X}" if validity is not None else ""
        tpdu = f"{first:02X}{message_ref & 0xFF:02X}{address}00{dcs:02X}{vp}{udl:02X}{ud.hex()}"
        out.append(PduPart(pdu="00" + tpdu.upper(), length=len(tpdu) // 2))
    return out


def decode_submit(pdu: str, with_smsc: bool = True) -> Submit:
    """Read an SMS-SUBMIT PDU (hex; with its SMSC part first unless ``with_smsc`` is False)."""
    try:
        data = bytes.fromhex(pdu)
    except ValueError as exc:
        raise PduError(f"not a hex PDU: {exc}") from None
    try:
        return _decode(data, with_smsc)
    except IndexError:
        raise PduError("the PDU ends too early") from None


def tpdu_length(pdu: str) -> int:
    """The TPDU length of a hex PDU that starts with its SMSC part: what ``AT+CMGS`` gives."""
    data = bytes.fromhex(pdu)
    if not data:
        raise PduError("an empty PDU")
    return len(data) - 1 - data[0]


def _decode(data: bytes, with_smsc: bool) -> Submit:
    pos = 1 + data[0] if with_smsc else 0
    first = data[pos]
    if first & 0x03 != _MTI_SUBMIT:
        raise PduError(f"not an SMS-SUBMIT (first octet {first:02X})")
    message_ref = data[pos + 1]
    number, pos = _decode_number(data, pos + 2)
    pos += 1  # TP-PID
    dcs = data[pos]
    pos += 1
    vpf = first & _VPF_MASK
    validity = None
    if vpf == _VPF_RELATIVE:
        validity = data[pos]
        pos += 1
    elif vpf:
        pos += 7  # absolute or enhanced
    udl = data[pos]
    ud = data[pos + 1:]
    concat = None
    header_len = 0
    if first & _UDHI:
        header_len = ud[0] + 1
        if header_len > len(ud):
            raise PduError("the user data header is longer than the user data")
        concat = _concat_from(ud[1:header_len])
    alphabet = _alphabet(dcs)
    if alphabet == 0:
        septets = unpack_septets(ud, udl, skip=(header_len * 8 + 6) // 7)
        text = "".join(GSM7_BASIC[s] for s in septets)
    elif alphabet == 2:
        if udl > len(ud):
            raise PduError("the user data is shorter than its length says")
        body = ud[header_len:udl]
        if len(body) % 2:
            raise PduError("UCS-2 user data of an odd length")
        text = body.decode("utf-16-be", errors="replace")
    else:
        raise PduError(f"an 8-bit data message (DCS {dcs:02X}), not a text")
    return Submit(number=number, text=text, dcs=dcs, concat=concat, message_ref=message_ref,
                  validity=validity)


def _alphabet(dcs: int) -> int:
    """The character set a data coding scheme names: 0 GSM 7-bit, 1 8-bit data, 2 UCS-2."""
    if dcs & 0xC0 == 0x00:  # general data coding (compression not supported: read as is)
        return (dcs >> 2) & 0x03
    if dcs & 0xF0 == 0xF0:  # data coding / message class
        return 1 if dcs & 0x04 else 0
    if dcs & 0xF0 == 0xE0:  # message waiting, UCS-2
        return 2
    return 0  # message waiting, 7-bit


def _concat_from(header: bytes) -> Concat | None:
    """The concatenation element of a user data header (8-bit reference 0x00 or 16-bit 0x08),
    if there is one."""
    i = 0
    while i + 1 < len(header):
        iei, size = header[i], header[i + 1]
        value = header[i + 2:i + 2 + size]
        if iei == 0x00 and size == 3 and len(value) == 3:
            return Concat(ref=value[0], total=value[1], seq=value[2])
        if iei == 0x08 and size == 4 and len(value) == 4:
            return Concat(ref=value[0] << 8 | value[1], total=value[2], seq=value[3])
        i += 2 + size
    return None


def reassemble(parts: list[Submit]) -> list[tuple[str, str]]:
    """The whole messages among ``parts`` (in the order their first part came), as (number,
    text); a concatenated message whose parts have not all come is left out."""
    whole: list[tuple[str, str]] = []
    groups: dict[tuple[str, int, int], dict[int, str]] = {}
    order: list[tuple[str, int, int]] = []
    for p in parts:
        if p.concat is None:
            whole.append((p.number, p.text))
            order.append((p.number, -1, len(whole) - 1))
            continue
        key = (p.number, p.concat.ref, p.concat.total)
        if key not in groups:
            groups[key] = {}
            order.append(key)
        groups[key][p.concat.seq] = p.text
    out = []
    for key in order:
        if key[1] == -1:
            out.append(whole[key[2]])
            continue
        got = groups[key]
        if set(got) == set(range(1, key[2] + 1)):
            out.append((key[0], "".join(got[i] for i in range(1, key[2] + 1))))
    return out
