"""``main.py control``: trip, close, keep power on or off, for a room, a building or a tariff group.

One line per meter as each is confirmed or fails (``--json``: a list of ``{"room", "meter",
"outcome", "reason"}`` at the end); exit code 0 when every meter confirmed, 4 when some failed
(they are listed). The commands go through the process that polls the buses (``serve`` or the
window): without one, nothing is confirmed and every meter fails with that reason. A batch of
more than one room asks once for confirmation when run on a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys

from app.cli import EXIT_PARTIAL, EXIT_REFUSED, add_db
from app.cli.auth import add_operator_flag, signed_in
from app.core import control
from app.core.station import open_station
from app.errors import UsageError
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("control", help=_("trip, close or keep power on meters, confirmed on "
                                         "each meter"))
    add_db(p)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--room", help=_("one room or shop, by its number"))
    where.add_argument("--building", metavar="NAME",
                       help=_("every room of a building (or floor) by its name in the tree"))
    where.add_argument("--group", metavar="NAME", help=_("every room of a tariff group"))
    p.add_argument("--action", required=True, choices=list(control.ACTIONS))
    add_operator_flag(p)
    p.add_argument("--reason", required=True, help=_("why (kept in the audit log)"))
    p.add_argument("--wait", type=float, default=control.DEFAULT_WAIT_S, metavar="S",
                   help=_("seconds to wait for the meters' confirmation (default 60)"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return {"control": control_command}


def _line(o: control.ControlOutcome) -> str:
    words = {"queued": _("queued"), "sent": _("sent"), "confirmed": _("confirmed"),
             "failed": _("failed")}
    text = f"{o.room:<10} {o.meter:<8} {words.get(o.outcome, o.outcome)}"
    return f"{text}: {o.reason}" if o.reason else text


def control_command(args: argparse.Namespace) -> int:
    if args.wait <= 0:
        raise UsageError(_("--wait must be more than 0 seconds"))
    open_station(args.db, create=False)
    operator = signed_in(args.operator, "control")
    selection = args.room or args.building or args.group
    chosen = control.targets(room=args.room, building=args.building, group=args.group)
    rooms = len({t.node_id for t in chosen})
    if rooms > 1 and sys.stdin.isatty() and not args.json:
        answer = input(_("{action} {n} meters in {rooms} rooms of {what}? [y/N] ").format(
            action=_(control.ACTION_TEXT[control.ACTIONS[args.action]]), n=len(chosen),
            rooms=rooms, what=selection))
        if answer.strip().lower() not in ("y", "yes", "是"):
            print(_("nothing was sent"))
            return EXIT_REFUSED

    def show(o: control.ControlOutcome) -> None:
        if not args.json and o.outcome in ("confirmed", "failed"):
            print(_line(o), flush=True)

    outcomes = control.control(operator, chosen, args.action, args.reason,
                               selection=selection, wait_s=args.wait, on_outcome=show)
    failed = [o for o in outcomes if o.outcome != "confirmed"]
    if args.json:
        print(json.dumps([o.as_json() for o in outcomes], ensure_ascii=False, indent=1))
    elif failed:
        print(_("{n} of {total} meters failed:").format(n=len(failed), total=len(outcomes)))
        for o in failed:
            print("  " + _line(o))
    return EXIT_PARTIAL if failed else 0
