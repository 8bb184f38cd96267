"""``main.py audit verify|list``: is the audit log whole, and what is in it.

``verify`` exits 0 when the hash chain is whole and 1 naming the first broken entry. Reading
the log needs the database file and nothing more: whoever holds the file can read it anyway.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime

from app.cli import add_db
from app.core import audit
from app.core.operators import Operator
from app.core.station import open_station
from app.errors import UserFacingError
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("audit", help=_("check the audit log's chain, or list its entries"))
    add_db(p)
    p.add_argument("action", choices=("verify", "list"))
    p.add_argument("--since", default=None, metavar="DATE",
                   help=_("list: from this day (YYYY-MM-DD) or time (YYYY-MM-DD HH:MM)"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return {"audit": run}


def _since(text: str | None) -> float | None:
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text.strip(), fmt).timestamp()
        except ValueError:
            continue
    raise UserFacingError(_("{text!r} is not a date (YYYY-MM-DD)").format(text=text))


def run(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if args.action == "verify":
        check = audit.verify()
        if args.json:
            print(json.dumps({"ok": check.ok, "entries": check.entries,
                              "broken_at": check.broken_at, "problem": check.problem},
                             ensure_ascii=False))
        else:
            print(check.message())
        return 0 if check.ok else 1
    rows = audit.entries(Operator.system("audit list"),
                         audit.AuditFilter(since=_since(args.since), limit=1_000_000))
    rows.reverse()  # oldest first, as a log reads
    if args.json:
        print(json.dumps([{"number": r.id, "t": r.t, "operator": r.operator,
                           "kind": r.kind, "target": r.target, "node": r.node_id,
                           "before": json.loads(r.before) if r.before else None,
                           "after": json.loads(r.after) if r.after else None,
                           "detail": r.detail} for r in rows], ensure_ascii=False, indent=1))
        return 0
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.t))
        change = f" {r.before} -> {r.after}" if r.before or r.after else ""
        detail = f" ({r.detail})" if r.detail else ""
        print(f"{r.id:>6} {when} {r.operator:<12} {r.kind:<20} {r.target}{change}{detail}")
    return 0
