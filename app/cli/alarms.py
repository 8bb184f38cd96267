"""``main.py alarms``: the alarm list (``--active``: not cleared), as text or JSON, and
``alarms ack`` to acknowledge one with a comment.

JSON: a list of ``{"id", "kind", "level", "room", "meter", "raised_at", "cleared_at",
"acknowledged_by", "text"}``, newest first (``meter`` is bus/address, or the bus for a bus's
own alarm). Reading the list needs no sign-in (whoever holds the file can read it);
acknowledging is an act of a signed-in operator, audited.
"""

from __future__ import annotations

import argparse
import json
import time

from app.cli import EXIT_REFUSED, add_db
from app.cli.auth import add_operator_flag, signed_in
from app.core import alarms
from app.core.operators import Operator
from app.core.station import open_station
from app.i18n import _

READER = Operator.system("command line")


def register(sub) -> dict:
    p = sub.add_parser("alarms", help=_("list the alarms, or acknowledge one"))
    add_db(p)
    p.add_argument("--active", action="store_true", help=_("only alarms not cleared"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ack = actions.add_parser("ack", help=_("acknowledge an alarm"))
    ack.add_argument("--id", type=int, required=True, help=_("the alarm's number"))
    ack.add_argument("--comment", required=True, help=_("what was done about it"))
    add_operator_flag(ack)
    return {"alarms": alarms_command}


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def alarms_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if args.action == "ack":
        operator = signed_in(args.operator, "alarms ack")
        if not alarms.acknowledge(operator, args.id, args.comment):
            print(_("alarm {id} was acknowledged already").format(id=args.id))
            return EXIT_REFUSED
        print(_("alarm {id} acknowledged").format(id=args.id))
        return 0
    rows = alarms.alarm_rows(READER, active=args.active)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    for r in rows:
        state = _("cleared {t}").format(t=_when(r["cleared_at"])) if r["cleared_at"] \
            else _("not cleared")
        ack = _(", acknowledged by {name}").format(name=r["acknowledged_by"]) \
            if r["acknowledged_by"] else ""
        print(f"#{r['id']:<5} L{r['level']} {_when(r['raised_at'])}  {r['room'] or '-':<8} "
              f"{r['meter'] or '-':<7} {r['kind']:<15} {state}{ack}  {r['text']}")
    if not rows:
        print(_("no alarms"))
    return 0
