"""A GSM modem on a pseudo-terminal that answers like a real one, for tests and commissioning
practice: ``with run_modem() as sim: GsmModem(sim.path)...``.

It echoes what it is sent until ``ATE0``; answers ``OK`` to ``AT``, ``ATE0/1``, ``AT+CMEE=n``,
``AT+CMGF=n`` (and ``ERROR`` to what it does not know); after ``AT+CMGS=<n>`` it gives the
``> `` prompt, reads the PDU up to Ctrl-Z (Esc cancels), checks that its TPDU length is ``n``,
decodes it and keeps it (``received``, ``messages()``), and answers ``+CMGS: <mr>`` and ``OK``.
On demand it fails the next sends with ``+CMS ERROR: <code>`` (``fail_next``), takes parts
without confirming them (``unanswered_next``), answers ``ERROR`` to everything
(``answer_error``), says nothing (``silent``) or slips unsolicited lines in before its next
answer (``unsolicited``).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from app.drivers.sms_pdu import PduError, Submit, decode_submit, reassemble, tpdu_length

CTRL_Z = 0x1A
ESC = 0x1B


@dataclass(frozen=True, slots=True)
class ReceivedPart:
    """A part the modem took: its message reference, its decoded content and its hex PDU."""

    mr: int
    submit: Submit
    pdu: str


class ModemSimulator:
    """The modem's side of a pty; ``path`` is what the station opens."""

    def __init__(self) -> None:
        import tty  # POSIX only

        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.echo = True
        self.silent = False
        self.answer_error = False
        self._lock = threading.Lock()
        self._received: list[ReceivedPart] = []
        self._failures: list[int] = []
        self._unanswered = 0
        self._unsolicited: list[str] = []
        self._mr = 0
        self._line = bytearray()
        self._pdu: bytearray | None = None
        self._pdu_length = 0
        self.commands: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modem-sim", daemon=True)

    # -- what a test sets and reads ------------------------------------------------------------
    def fail_next(self, count: int, code: int) -> None:
        """Answer the next ``count`` sends with ``+CMS ERROR: <code>``."""
        with self._lock:
            self._failures.extend([code] * count)

    def unanswered_next(self, count: int) -> None:
        """Take the next ``count`` parts (kept as received) without confirming them: the network
        took the message, the confirmation was lost."""
        with self._lock:
            self._unanswered += count

    def unsolicited(self, *lines: str) -> None:
        """Send these lines (``RING``, ``+CMTI: "SM",3`` ...) before the next answer."""
        with self._lock:
            self._unsolicited.extend(lines)

    @property
    def received(self) -> list[ReceivedPart]:
        with self._lock:
            return list(self._received)

    def messages(self) -> list[tuple[str, str]]:
        """The whole messages received, as (number, text), parts reassembled."""
        return reassemble([p.submit for p in self.received])

    # -- running -------------------------------------------------------------------------------
    def start(self) -> ModemSimulator:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> ModemSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _w, _x = select.select([self.master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self.master, 4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            for byte in data:
                self._feed(byte)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                n = os.write(self.master, view)
                view = view[n:]
            except BlockingIOError:
                select.select([], [self.master], [], 0.05)
            except OSError:
                return

    def _answer(self, *lines: str) -> None:
        if self.silent:
            return
        with self._lock:
            extra, self._unsolicited = self._unsolicited, []
        out = "".join(f"\r\n{line}\r\n" for line in (*extra, *lines))
        self._write(out.encode("ascii"))

    # -- the modem -----------------------------------------------------------------------------
    def _feed(self, byte: int) -> None:
        if self._pdu is not None:
            self._feed_pdu(byte)
            return
        if self.echo and not self.silent:
            self._write(bytes((byte,)))
        if byte == 0x0D:
            line = self._line.decode("ascii", errors="replace").strip()
            self._line.clear()
            if line:
                self._command(line)
        elif byte != 0x0A:
            self._line.append(byte)

    def _command(self, line: str) -> None:
        self.commands.append(line)
        cmd = line.upper()
        if self.answer_error or not cmd.startswith("AT"):
            self._answer("ERROR")
            return
        body = cmd[2:]
        if body in ("", "E0", "E1", "+CMEE=0", "+CMEE=1", "+CMEE=2", "+CMGF=0", "+CMGF=1",
                    "Z", "I"):
            if body in ("E0", "E1"):
                self.echo = body == "E1"
            self._answer("OK")
        elif body.startswith("+CMGS=") and body[6:].isdigit() and int(body[6:]) > 0:
            self._pdu_length = int(body[6:])
            self._pdu = bytearray()
            if not self.silent:
                self._write(b"\r\n> ")
        else:
            self._answer("ERROR")

    def _feed_pdu(self, byte: int) -> None:
        assert self._pdu is not None
        if byte == ESC:
            self._pdu = None
            self._answer("OK")
            return
        if byte != CTRL_Z:
            if self.echo and not self.silent:
                self._write(bytes((byte,)))
            if byte not in (0x0D, 0x0A):
                self._pdu.append(byte)
            return
        pdu = self._pdu.decode("ascii", errors="replace").strip()
        self._pdu = None
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            self._answer(f"+CMS ERROR: {failure}")
            return
        try:
            if tpdu_length(pdu) != self._pdu_length:
                raise PduError("length mismatch")
            submit = decode_submit(pdu)
        except (PduError, ValueError):
            self._answer("+CMS ERROR: 304")  # invalid PDU mode parameter
            return
        with self._lock:
            self._mr = (self._mr + 1) & 0xFF
            self._received.append(ReceivedPart(mr=self._mr, submit=submit, pdu=pdu))
            mr = self._mr
            quiet = self._unanswered > 0
            self._unanswered -= quiet
        if not quiet:
            self._answer(f"+CMGS: {mr}", "OK")


@contextlib.contextmanager
def run_modem() -> Iterator[ModemSimulator]:
    """A modem simulator answering on a pty while the block runs; ``.path`` is its port."""
    sim = ModemSimulator().start()
    try:
        yield sim
    finally:
        sim.close()
