"""What the SMS outbox hands its messages to: a sender behind one small interface, and the GSM
modem's (``ModemSender``; the HTTP gateway's is in ``sms_http``).

A sender is opened (``open``: the port, the key; a failure there sends nothing and the outbox
keeps its messages), then ``send(phone, text)`` returns how many parts went, or raises:

- ``SmsNotSent``: the other side refused it and nothing went out (a ``+CMS ERROR`` before any
  part was confirmed, an HTTP 500): sending it again later cannot make a duplicate.
  ``permanent``: it never will go (a number that is no number).
- ``SmsMaybeSent``: it may have gone (no confirmation came, the link broke while sending, a
  part was confirmed and a later one refused): it is never sent again.

Neither the text nor the whole number is ever logged.
"""

from __future__ import annotations

import logging
from typing import Protocol

from app.drivers.modem import GsmModem, mask_number
from app.drivers.sms_pdu import PduError, encode_number
from app.errors import DriverError, ModemError, ModemTimeout
from app.i18n import _

log = logging.getLogger("voltkeeper.drivers.sms")


class SmsNotSent(DriverError):
    """The message did not go; it may be sent again (unless ``permanent``)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class SmsMaybeSent(DriverError):
    """The message may have gone: it must not be sent again."""


class SmsSender(Protocol):
    name: str  # "modem", "http": what the log shows

    def open(self) -> None: ...
    def send(self, phone: str, text: str) -> int: ...
    def close(self) -> None: ...


class ModemSender:
    """A GSM modem on a serial port. The modem's own retries are off (``retries=0``): the
    outbox retries a refused message with its own, durable back-off."""

    name = "modem"

    def __init__(self, port: str, baud: int = 115200, **modem_options) -> None:
        modem_options.setdefault("retries", 0)
        self.port = port
        self._modem = GsmModem(port, baud, **modem_options)
        self._open = False

    def open(self) -> None:
        """Open the port and set the modem up (``LinkDown``, ``ModemError`` when it cannot)."""
        if not self._open:
            self._modem.open()
            self._open = True

    def close(self) -> None:
        self._modem.close()
        self._open = False

    def send(self, phone: str, text: str) -> int:
        try:
            encode_number(phone)
        except PduError:
            raise SmsNotSent(_("not a phone number: {number}").format(
                number=mask_number(phone)), permanent=True) from None
        self.open()
        confirmed: list[int] = []
        try:
            refs = self._modem.send(phone, text,
                                    on_part=lambda seq, total, ref: confirmed.append(ref))
        except ModemTimeout as exc:
            self.close()  # a late answer must not be read as the next one's
            raise SmsMaybeSent(_("no confirmation came: {error}").format(error=exc)) from exc
        except ModemError as exc:
            if confirmed:
                raise SmsMaybeSent(_("{n} part(s) went, then: {error}").format(
                    n=len(confirmed), error=exc)) from exc
            raise SmsNotSent(str(exc)) from exc
        except DriverError as exc:  # the port failed while sending
            self.close()
            raise SmsMaybeSent(str(exc)) from exc
        return len(refs)
