"""A GSM modem on a serial port, sending SMS in PDU mode with AT commands.

``GsmModem(port).open()`` wakes the modem and sets it up (``AT``, ``ATE0`` echo off,
``AT+CMEE=1`` numeric errors, ``AT+CMGF=0`` PDU mode); ``send(number, text)`` sends each part
(``AT+CMGS=<length>``, the ``> `` prompt, the PDU and Ctrl-Z) and returns the message
references the modem confirmed (``+CMGS: <mr>`` then ``OK``).

- ``+CMS ERROR: <n>``, ``+CME ERROR: <n>`` and ``ERROR`` raise a ``ModemError`` with the kind and
  code; a temporary network error (``TRANSIENT_CMS``) is retried with back-off a few times:
  the modem refused the part, so sending it again cannot make a duplicate.
- Silence raises ``ModemTimeout``. A part whose confirmation never came is not sent again (the
  network may have taken it): the caller decides.
- Unsolicited lines (``RING``, ``+CMTI:``, ``^BOOT``, ``+CREG:`` ...) and echoes are ignored.
- The log never carries a message's text, and numbers only masked (``+86138****8000``).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable

import serial

from app.drivers.sms_pdu import VP_4_DAYS, PduError, PduPart, encode_submit, fits_gsm7
from app.errors import LinkDown, ModemError, ModemTimeout
from app.i18n import _

log = logging.getLogger("voltkeeper.drivers.modem")

CTRL_Z = b"\x1a"
ESC = b"\x1b"

#: +CMS ERROR codes that say "not now" (network or modem temporarily unable): retried.
#: 38 network out of order, 41 temporary failure, 42 congestion, 47 resources unavailable,
#: 331 no network service, 332 network timeout, 500 unknown error.
TRANSIENT_CMS = frozenset({38, 41, 42, 47, 331, 332, 500})

_FINAL_ERROR = re.compile(r"^\+(CMS|CME) ERROR:\s*(.*)$")

#: Lines a modem sends unasked (calls, new messages, registration, vendor reports): never an
#: answer, unless a command asks for that very prefix.
_UNSOLICITED = re.compile(
    r"^(RING|NO CARRIER|\+CRING:|\+CLIP:|\+CMTI:|\+CMT:|\+CDSI:|\+CDS:|\+CBM:|\+CREG:|"
    r"\+CGREG:|\+CEREG:|\+CUSD:|\+CIEV:|\+PBREADY|\+CPIN:|\+QIND:|\^[A-Z]+)")


def unsolicited(line: str) -> bool:
    """True for a line a modem sends unasked (``RING``, ``+CMTI: "SM",3``, ``^BOOT:...``)."""
    return _UNSOLICITED.match(line) is not None


def cms_meaning(code: int) -> str | None:
    """What a ``+CMS ERROR`` code means, for the ones met in commissioning."""
    return {
        38: _("network out of order"),
        41: _("temporary network failure"),
        42: _("network congestion"),
        47: _("network resources unavailable"),
        50: _("SMS not subscribed on this SIM"),
        300: _("modem failure"),
        302: _("operation not allowed"),
        304: _("invalid PDU"),
        310: _("no SIM card"),
        311: _("the SIM card needs its PIN"),
        313: _("SIM card failure"),
        330: _("the SIM card has no SMS centre number"),
        331: _("no network service"),
        332: _("network timeout"),
        500: _("unknown error"),
    }.get(code)


def mask_number(number: str) -> str:
    """A phone number for a log: the country code and operator prefix and the last four digits
    kept, the rest starred (``+8613800138000`` -> ``+86138****8000``)."""
    head = 6 if number.startswith("+") else 3
    tail = 4
    if len(number) < head + tail + 2:
        head, tail = min(2, len(number) // 3), min(2, len(number) // 3)
    return number[:head] + "*" * (len(number) - head - tail) + number[len(number) - tail:]


def parse_error(line: str) -> ModemError | None:
    """The error a final result line reports, or None when it is no error."""
    if line == "ERROR":
        return ModemError(_("the modem answered ERROR"))
    m = _FINAL_ERROR.match(line)
    if m is None:
        return None
    kind, detail = m.group(1), m.group(2).strip()
    code = int(detail) if detail.isdigit() else None
    meaning = cms_meaning(code) if kind == "CMS" and code is not None else None
    text = detail if meaning is None else f"{detail} ({meaning})"
    return ModemError(_("the modem answered +{kind} ERROR: {detail}").format(
        kind=kind, detail=text), code=code, kind=kind)


class GsmModem:
    """One modem on one serial port; not thread-safe (one sender owns it)."""

    def __init__(self, port: str, baud: int = 115200, *, timeout: float = 5.0,
                 send_timeout: float = 60.0, retries: int = 3, backoff_s: float = 2.0,
                 validity: int | None = VP_4_DAYS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.port = port
        self.baud = baud
        self.timeout = timeout
        self.send_timeout = send_timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self.validity = validity
        self._sleep = sleep
        self._serial: serial.Serial | None = None
        self._buf = bytearray()
        self._ref = random.randrange(256)

    # -- the port ------------------------------------------------------------------------------
    def open(self) -> GsmModem:
        try:
            self._serial = serial.Serial(self.port, self.baud, timeout=0.05,
                                         write_timeout=self.timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkDown(_("cannot open the modem's port {port}: {error}").format(
                port=self.port, error=exc)) from exc
        try:
            self._buf.clear()
            self._serial.reset_input_buffer()
            self._wake()
            self.command("ATE0")
            self.command("AT+CMEE=1")
            self.command("AT+CMGF=0")
        except BaseException:
            self.close()
            raise
        log.info("modem on %s ready (PDU mode)", self.port)
        return self

    def _wake(self) -> None:
        """``AT`` until the modem answers (it may miss the first while it settles)."""
        for attempt in range(3):
            try:
                self.command("AT", timeout=min(self.timeout, 2.0))
                return
            except ModemTimeout:
                if attempt == 2:
                    raise

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except (serial.SerialException, OSError):
                pass
            self._serial = None

    def __enter__(self) -> GsmModem:
        return self.open() if self._serial is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- sending -------------------------------------------------------------------------------
    def send(self, number: str, text: str,
             on_part: Callable[[int, int, int], None] | None = None) -> list[int]:
        """Send ``text`` to ``number``; the modem's message reference of each part, in order.
        ``on_part(seq, total, reference)`` is called as each part is confirmed."""
        try:
            parts = encode_submit(number, text, ref=self._next_ref(), validity=self.validity)
        except PduError as exc:
            raise ModemError(_("the message cannot be encoded: {error}").format(
                error=exc)) from exc
        coding = "GSM 7-bit" if fits_gsm7(text) else "UCS-2"
        log.info("SMS to %s: %d characters, %s, %d part(s)", mask_number(number), len(text),
                 coding, len(parts))
        refs: list[int] = []
        for seq, part in enumerate(parts, start=1):
            mr = self._send_part(part)
            refs.append(mr)
            log.info("SMS to %s: part %d/%d confirmed, reference %d", mask_number(number),
                     seq, len(parts), mr)
            if on_part is not None:
                on_part(seq, len(parts), mr)
        return refs

    def _next_ref(self) -> int:
        self._ref = (self._ref + 1) & 0xFF
        return self._ref

    def _send_part(self, part: PduPart) -> int:
        attempt = 0
        while True:
            try:
                return self._submit(part)
            except ModemError as exc:
                if (exc.kind != "CMS" or exc.code not in TRANSIENT_CMS
                        or attempt >= self.retries):
                    raise
                delay = self.backoff_s * 2 ** attempt
                attempt += 1
                log.warning("%s; trying again in %.1f s (%d/%d)", exc, delay, attempt,
                            self.retries)
                self._sleep(delay)

    def _submit(self, part: PduPart) -> int:
        self._discard_input()
        self._write(f"AT+CMGS={part.length}\r".encode("ascii"))
        self._wait_prompt(time.monotonic() + self.timeout)
        self._write(part.pdu.encode("ascii") + CTRL_Z)
        deadline = time.monotonic() + self.send_timeout
        mr: int | None = None
        while True:
            line = self._next_line(deadline, _("a confirmation of the message"))
            if line.startswith("+CMGS:"):
                value = line[6:].split(",")[0].strip()
                mr = int(value) if value.isdigit() else None
            elif line == "OK":
                if mr is None:
                    raise ModemError(_("the modem answered OK without a message reference"))
                return mr
            elif (error := parse_error(line)) is not None:
                raise error
            else:
                log.debug("modem: ignored %r", line)

    def _wait_prompt(self, deadline: float) -> None:
        """Wait for ``> `` (which ends no line); an error instead raises."""
        while True:
            while self._buf[:1] in (b"\r", b"\n"):
                del self._buf[0]
            if self._buf[:1] == b">":
                del self._buf[:2 if self._buf[1:2] == b" " else 1]
                return
            line = self._take_line()
            if line is not None:
                if (error := parse_error(line)) is not None:
                    raise error
                log.debug("modem: ignored %r", line)
                continue
            if not self._read_more(deadline):
                self._write(ESC)  # leave the prompt, should it come late
                raise ModemTimeout(_("the modem gave no prompt for the message within "
                                     "{s:g} s").format(s=self.timeout))

    # -- commands ------------------------------------------------------------------------------
    def command(self, cmd: str, timeout: float | None = None,
                expect: str | None = None) -> list[str]:
        """Send ``cmd`` and wait for its final result: the information lines starting with
        ``expect`` (all lines other than echoes and unsolicited ones when None is given);
        an error raises."""
        self._discard_input()
        self._write(cmd.encode("ascii") + b"\r")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        info: list[str] = []
        while True:
            line = self._next_line(deadline, _("an answer to {command}").format(command=cmd))
            if line == "OK":
                return info
            if (error := parse_error(line)) is not None:
                raise error
            if expect is not None and line.startswith(expect):
                info.append(line)
                continue
            if line == cmd or expect is not None or unsolicited(line):
                log.debug("modem: ignored %r", line)
                continue
            info.append(line)

    def _next_line(self, deadline: float, waiting_for: str) -> str:
        while True:
            line = self._take_line()
            if line is not None:
                return line
            if not self._read_more(deadline):
                raise ModemTimeout(_("the modem did not answer in time (waiting for "
                                     "{what})").format(what=waiting_for))

    def _take_line(self) -> str | None:
        while self._buf[:1] in (b"\r", b"\n"):
            del self._buf[0]
        m = re.search(rb"[\r\n]", self._buf)
        if m is None:
            return None
        line = bytes(self._buf[:m.start()])
        del self._buf[:m.end()]
        return line.decode("ascii", errors="replace").strip()

    def _read_more(self, deadline: float) -> bool:
        """Read what has come (waiting a little); False when the deadline has passed."""
        port = self._port()
        while time.monotonic() < deadline:
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise LinkDown(_("the modem's port {port} failed: {error}").format(
                    port=self.port, error=exc)) from exc
            if data:
                self._buf += data
                return True
        return False

    def _discard_input(self) -> None:
        """Forget what came unasked before a command (unsolicited lines, a late answer)."""
        port = self._port()
        try:
            stale = port.read(port.in_waiting) if port.in_waiting else b""
        except (serial.SerialException, OSError) as exc:
            raise LinkDown(_("the modem's port {port} failed: {error}").format(
                port=self.port, error=exc)) from exc
        stale = bytes(self._buf) + stale
        if stale.strip():
            log.debug("modem: discarded %r", stale)
        self._buf.clear()

    def _write(self, data: bytes) -> None:
        port = self._port()
        try:
            port.write(data)
            port.flush()
        except serial.SerialTimeoutException as exc:
            raise ModemTimeout(_("the modem's port {port} took nothing within {s:g} s").format(
                port=self.port, s=self.timeout)) from exc
        except (serial.SerialException, OSError) as exc:
            raise LinkDown(_("the modem's port {port} failed: {error}").format(
                port=self.port, error=exc)) from exc

    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise LinkDown(_("the modem's port {port} is not open").format(port=self.port))
        return self._serial
