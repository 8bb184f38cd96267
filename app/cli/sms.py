"""``main.py sms send``: one message through a GSM modem, to commission the modem.

``sms send --modem PORT [--baud 115200] --to NUMBER --text TEXT`` opens the modem, sends the
text (as several parts when it is long) and prints each part's message reference as the modem
confirms it. Exit code 0 when the modem confirmed every part; 1 with one line saying what went
wrong otherwise (the port, the modem's error and its code, silence). It needs no database and
no operator: it touches nothing of the station.
"""

from __future__ import annotations

import argparse

from app.drivers.modem import GsmModem
from app.drivers.sms_pdu import PduError, encode_number
from app.errors import DriverError, ModemError, UsageError, UserFacingError
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("sms", help=_("send text messages (commissioning a GSM modem)"))
    actions = p.add_subparsers(dest="sms_action", metavar="ACTION", required=True)
    s = actions.add_parser("send", help=_("send one message through a GSM modem"))
    s.add_argument("--modem", required=True, metavar="PORT",
                   help=_("the modem's serial port (e.g. /dev/ttyUSB2 or COM5)"))
    s.add_argument("--baud", type=int, default=115200, help=_("the port's speed (default 115200)"))
    s.add_argument("--to", required=True, metavar="NUMBER",
                   help=_("the phone number (+86... for an international number)"))
    s.add_argument("--text", required=True, help=_("the message's text"))
    s.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help=_("seconds to wait for the network's confirmation of each part "
                          "(default 60)"))
    return {"sms": sms_command}


def sms_command(args: argparse.Namespace) -> int:
    number = "".join(args.to.split())
    try:
        encode_number(number)
    except PduError:
        raise UsageError(_("not a phone number: {number} (digits, with + before an "
                           "international one)").format(number=args.to)) from None
    if not args.text:
        raise UsageError(_("the message's text is empty"))

    def confirmed(seq: int, total: int, reference: int) -> None:
        print(_("part {seq}/{total}: reference {reference}").format(
            seq=seq, total=total, reference=reference), flush=True)

    modem = GsmModem(args.modem, args.baud, send_timeout=args.timeout)
    try:
        with modem:
            refs = modem.send(number, args.text, on_part=confirmed)
    except ModemError as exc:
        raise UserFacingError(_("the modem on {port} did not send the message: {reason}").format(
            port=args.modem, reason=exc)) from exc
    except DriverError as exc:
        raise UserFacingError(str(exc)) from exc
    print(_("sent: the modem confirmed {n} part(s)").format(n=len(refs)))
    return 0
