"""``main.py sms``: send one message through a GSM modem, read the SMS log, edit the templates,
store the HTTP gateway's key.

``sms send --modem PORT [--baud 115200] --to NUMBER --text TEXT`` opens the modem, sends the
text (as several parts when it is long) and prints each part's message reference as the modem
confirms it. Exit code 0 when the modem confirmed every part; 1 with one line saying what went
wrong otherwise (the port, the modem's error and its code, silence). It needs no database and
no operator: it touches nothing of the station.

``sms log --db PATH [--state S] [--limit N] [--json]``: the texts to residents, newest first
(numbers masked in the middle; ``--json`` gives them whole, for a script). ``sms template --db
PATH [--kind K --lang L [--text TEXT --operator NAME]]`` shows the templates, or edits one (an
audited act; an empty text sets it back to the default). ``sms key --db PATH`` reads the HTTP
gateway's key from standard input (never a flag) into ``sms-gateway.key`` beside the database.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time

from app.cli import add_db
from app.cli.auth import add_operator_flag, signed_in
from app.core import sms_outbox, sms_templates
from app.core.operators import Operator
from app.core.station import open_station
from app.drivers.modem import GsmModem, mask_number
from app.drivers.sms_http import write_key
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
    lg = actions.add_parser("log", help=_("the texts to residents, newest first"))
    add_db(lg)
    lg.add_argument("--state", choices=list(sms_outbox.STATE_TEXT),
                    help=_("only texts in this state"))
    lg.add_argument("--limit", type=int, default=50, metavar="N",
                    help=_("at most N texts (default 50)"))
    lg.add_argument("--json", action="store_true", help=_("machine-readable output"))
    t = actions.add_parser("template", help=_("show the texts' templates, or edit one"))
    add_db(t)
    t.add_argument("--kind", choices=list(sms_templates.KINDS), help=_("which text"))
    t.add_argument("--lang", choices=list(sms_templates.LANGS), help=_("its language"))
    t.add_argument("--text", help=_("the new template ({room}, {balance}, {days}; empty: back "
                                    "to the default)"))
    add_operator_flag(t, required=False)
    k = actions.add_parser("key", help=_("store the HTTP SMS gateway's key (read from standard "
                                         "input)"))
    add_db(k)
    return {"sms": sms_command}


READER = Operator.system("command line")


def sms_command(args: argparse.Namespace) -> int:
    action = {"log": _log, "template": _template, "key": _key}.get(args.sms_action)
    return action(args) if action is not None else _send(args)


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _log(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError(_("--limit must be 1 or more"))
    open_station(args.db, create=False)
    rows = sms_outbox.sms_log(READER, state=args.state, limit=args.limit)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    for r in rows:
        error = f"  ({r['error']})" if r["error"] else ""
        print(f"#{r['id']:<5} {_when(r['created_at'])}  {r['room'] or '-':<8} "
              f"{mask_number(r['phone']):<15} {sms_outbox.state_text(r['state']):<8} "
              f"{r['attempts']}  {r['text']}{error}")
    if not rows:
        print(_("no texts"))
    return 0


def _template(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if args.text is not None:
        if not (args.kind and args.lang and args.operator):
            raise UsageError(_("editing a template needs --kind, --lang and --operator"))
        operator = signed_in(args.operator, "sms template")
        change = sms_templates.set_template(operator, args.kind, args.lang, args.text)
        if change.edited:
            print(_("template {kind} ({lang}) changed").format(kind=args.kind, lang=args.lang))
        else:
            print(_("template {kind} ({lang}) is the default").format(kind=args.kind,
                                                                      lang=args.lang))
        return 0
    for v in sms_templates.templates(READER):
        if (args.kind and v.kind != args.kind) or (args.lang and v.lang != args.lang):
            continue
        mark = _(" (edited by {name})").format(name=v.updated_by) if v.edited else ""
        print(f"{v.kind} {v.lang}{mark}:\n  {v.text}")
    return 0


def _key(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if sys.stdin.isatty():
        key = getpass.getpass(_("The SMS gateway's key: "))
    else:
        key = sys.stdin.readline()
    path = sms_outbox.gateway_key_file()
    write_key(path, key)
    print(_("the SMS gateway's key is in {path} (readable by its owner only)").format(path=path))
    return 0


def _send(args: argparse.Namespace) -> int:
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
