"""Modbus framing for the simulator, as pure functions: CRC, RTU and MBAP frames, request PDUs.

Nothing here does I/O or knows a meter's physics: a request PDU goes to an object with
``read_registers``/``write_registers`` (a simulated meter) and the answer PDU comes back, or
``None`` when a real meter would stay silent (a broadcast). The tests check these functions
against frames written out by hand, so the simulator is not only pymodbus agreeing with itself.
"""

from __future__ import annotations

import struct
from typing import Protocol

ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3
DEVICE_FAILURE = 4

READ_FUNCTIONS = (3, 4)
#: Function codes whose request length is fixed (8 bytes with address and CRC).
_FIXED_REQUESTS = (1, 2, 3, 4, 5, 6)
#: Function codes whose request carries a byte count at offset 6.
_COUNTED_REQUESTS = (15, 16)
BROADCAST = 0
MAX_READ = 125
MAX_WRITE = 123


class ModbusReplyError(Exception):
    """The meter answers with a Modbus exception ``code`` instead of data."""

    def __init__(self, code: int, why: str = "") -> None:
        super().__init__(why or f"exception {code}")
        self.code = code


class RegisterTarget(Protocol):
    """What a request is served from: one meter's register map."""

    def read_registers(self, function: int, start: int, count: int) -> list[int]: ...

    def write_registers(self, start: int, values: list[int]) -> None: ...


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (polynomial 0xA001, initial 0xFFFF). Sent low byte first."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    """An RTU frame: address, PDU, CRC low byte, CRC high byte."""
    body = bytes([unit]) + pdu
    return body + crc16(body).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def corrupt_crc(frame: bytes) -> bytes:
    """The frame with its CRC spoiled: what line noise does to a reply."""
    return frame[:-1] + bytes([frame[-1] ^ 0xFF])


def rtu_request_length(buffer: bytes) -> int | None:
    """Length of the RTU request at the start of ``buffer``.

    ``None``: not enough bytes yet to tell. ``-1``: a function code whose length the simulator
    does not know; the caller takes what arrived before the line went idle.
    """
    if len(buffer) < 2:
        return None
    function = buffer[1]
    if function in _FIXED_REQUESTS:
        return 8
    if function in _COUNTED_REQUESTS:
        return 9 + buffer[6] if len(buffer) >= 7 else None
    return -1


def mbap_frame(transaction: int, unit: int, pdu: bytes, protocol: int = 0) -> bytes:
    """A Modbus-TCP frame: transaction id, protocol id (0), length, unit, PDU."""
    return struct.pack(">HHHB", transaction, protocol, len(pdu) + 1, unit) + pdu


def garble_mbap(frame: bytes) -> bytes:
    """A Modbus-TCP reply spoiled in transit: the protocol id is no longer Modbus (0)."""
    return frame[:2] + b"\xa5\xa5" + frame[4:]


def exception_pdu(function: int, code: int) -> bytes:
    return bytes([(function | 0x80) & 0xFF, code])


def handle_pdu(target: RegisterTarget, pdu: bytes, broadcast: bool = False) -> bytes | None:
    """Serve one request PDU. Returns the response PDU, or ``None`` for a broadcast.

    A broadcast (unit 0) carries out writes and never answers; reads make no sense broadcast
    and are ignored.
    """
    if not pdu:
        return None
    function = pdu[0]
    try:
        response = _serve(target, function, pdu, broadcast)
    except ModbusReplyError as exc:
        response = exception_pdu(function, exc.code)
    return None if broadcast else response


def _serve(target: RegisterTarget, function: int, pdu: bytes, broadcast: bool) -> bytes | None:
    if function in READ_FUNCTIONS:
        if broadcast:
            return None
        if len(pdu) != 5:
            raise ModbusReplyError(ILLEGAL_VALUE, "read request of the wrong length")
        start, count = struct.unpack(">HH", pdu[1:5])
        if not 1 <= count <= MAX_READ:
            raise ModbusReplyError(ILLEGAL_VALUE, f"cannot read {count} registers")
        regs = target.read_registers(function, start, count)
        return bytes([function, 2 * count]) + struct.pack(f">{count}H", *regs)
    if function == 6:
        if len(pdu) != 5:
            raise ModbusReplyError(ILLEGAL_VALUE, "write request of the wrong length")
        start, value = struct.unpack(">HH", pdu[1:5])
        target.write_registers(start, [value])
        return pdu
    if function == 16:
        if len(pdu) < 6:
            raise ModbusReplyError(ILLEGAL_VALUE, "write request too short")
        start, count, nbytes = struct.unpack(">HHB", pdu[1:6])
        if not 1 <= count <= MAX_WRITE or nbytes != 2 * count or len(pdu) != 6 + nbytes:
            raise ModbusReplyError(ILLEGAL_VALUE, "write count and byte count disagree")
        values = list(struct.unpack(f">{count}H", pdu[6:]))
        target.write_registers(start, values)
        return pdu[:5]
    raise ModbusReplyError(ILLEGAL_FUNCTION, f"function {function} is not served")
