"""``main.py commission``: the commissioning checklist of a bus, and its record as a PDF.

    commission --db PATH --operator NAME --bus NAME [--plan FILE] [--ids 1-27] [--pdf FILE]
               [--json]

``--plan``: first bind the bus's addresses to rooms from the wiring plan (an Excel sheet or CSV
with room, bus, address and serial; ``core/wiring_plan.py``), then check.

Exit code 0 when every meter passed, 4 when some failed (the list says which and why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.cli import EXIT_PARTIAL, add_db
from app.cli.auth import add_operator_flag, signed_in
from app.core import commissioning, wiring_plan
from app.core.progress import Progress
from app.core.scan import parse_ids
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("commission", help=_("run the commissioning checklist of a bus"))
    add_db(p)
    add_operator_flag(p)
    p.add_argument("--bus", required=True, metavar="NAME", help=_("the bus to check"))
    p.add_argument("--ids", metavar="RANGE",
                   help=_("the meters' addresses to check (default: every meter of the bus)"))
    p.add_argument("--plan", type=Path, metavar="FILE",
                   help=_("bind addresses to rooms from this wiring plan first (.xlsx or .csv: "
                          "room, bus, address, serial)"))
    p.add_argument("--pdf", type=Path, metavar="FILE", help=_("write the record here"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return {"commission": commission_command}


def commission_command(args: argparse.Namespace) -> int:
    from app.core.station import open_station

    open_station(args.db, create=False)
    operator = signed_in(args.operator, "commission")
    ids = parse_ids(args.ids) if args.ids else None
    if args.plan is not None:
        rows = wiring_plan.read_plan(args.plan)
        mine = [r for r in rows if r.bus == args.bus]
        bound = wiring_plan.bind(operator, mine)
        print(_("wiring plan: {added} added, {changed} changed, {same} as planned already"
                "{others}").format(added=len(bound.added), changed=len(bound.changed),
                                   same=len(bound.unchanged),
                                   others=_("; {n} rows of other buses left").format(
                                       n=len(rows) - len(mine)) if len(rows) > len(mine)
                                   else ""), file=sys.stderr)
    progress = None
    if sys.stderr.isatty():
        progress = Progress(lambda done, total, text: print(
            f"\r{done}/{total} {text:<40}", end="", file=sys.stderr, flush=True))
    result = commissioning.run_checklist(operator, args.bus, ids, progress=progress)
    if progress is not None:
        print(file=sys.stderr)
    pdf = commissioning.write_record(result, args.pdf) if args.pdf else None
    if args.json:
        out = result.as_json()
        out["pdf"] = str(pdf) if pdf else None
        print(json.dumps(out, ensure_ascii=False))
    else:
        for m in result.meters:
            states = "  ".join(f"{_(commissioning.CHECK_TEXT[name])}: "
                               f"{_(commissioning.STATE_TEXT[m.checks[name][0]])}"
                               for name in commissioning.CHECKS if name in m.checks)
            print(f"{m.address:>3} {m.room or '-':<8} {states}")
            for name in commissioning.CHECKS:
                state, detail = m.checks.get(name, ("", ""))
                if state in (commissioning.FAIL, commissioning.NOTE) and detail:
                    print(f"      {_(commissioning.CHECK_TEXT[name])}: {detail}")
        print(_("{n} meters checked, {failed} failed (run {run})").format(
            n=len(result.meters), failed=result.failed, run=result.run_id))
        if pdf:
            print(pdf)
    return EXIT_PARTIAL if result.failed else 0
