"""``main.py report monthly|journal|shift|arrears``: the reports finance signs, as files.

``report KIND --db PATH --operator NAME [--month YYYY-MM | --from DATE --to DATE]
[--building NAME] [--cashier NAME] [--pdf FILE] [--xlsx FILE]``. The acting operator needs the
reports permission (finance or administrator; otherwise exit code 3); the report is audited.
The period defaults to the past month (the arrears list: balances now); ``--to`` is the last
day included. Prints each file written, and the report's totals.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import add_db
from app.cli.auth import add_operator_flag, signed_in
from app.core import finance_reports as fr
from app.core import report_files
from app.core.money import format_cents
from app.core.station import open_station
from app.errors import UsageError
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("report", help=_("financial reports as PDF and Excel: the monthly "
                                        "report, the recharge journal, a cashier's shift, "
                                        "the arrears list"))
    p.add_argument("kind", choices=report_files.KINDS)
    add_db(p)
    add_operator_flag(p)
    p.add_argument("--month", default=None, metavar="YYYY-MM",
                   help=_("the month (default: the past month)"))
    p.add_argument("--from", dest="first", default=None, metavar="DATE",
                   help=_("the first day (YYYY-MM-DD), with --to"))
    p.add_argument("--to", dest="last", default=None, metavar="DATE",
                   help=_("the last day included (YYYY-MM-DD), with --from"))
    p.add_argument("--building", default=None, metavar="NAME",
                   help=_("one building only (its name or code)"))
    p.add_argument("--cashier", default=None, metavar="NAME",
                   help=_("shift: whose takings (an operator's name)"))
    p.add_argument("--pdf", type=Path, default=None, metavar="FILE", help=_("write a PDF"))
    p.add_argument("--xlsx", type=Path, default=None, metavar="FILE",
                   help=_("write an Excel workbook"))
    return {"report": run}


def period_of(args: argparse.Namespace) -> fr.Period | None:
    if args.month and (args.first or args.last):
        raise UsageError(_("give --month or --from and --to, not both"))
    if bool(args.first) != bool(args.last):
        raise UsageError(_("--from and --to go together"))
    if args.month:
        return fr.month_period(args.month)
    if args.first:
        return fr.range_period(args.first, args.last)
    return None if args.kind == "arrears" else fr.previous_month()


def run(args: argparse.Namespace) -> int:
    if args.kind == "shift" and not args.cashier:
        raise UsageError(_("a shift settlement needs --cashier NAME"))
    if args.cashier and args.kind != "shift":
        raise UsageError(_("--cashier goes with the shift report"))
    period = period_of(args)
    open_station(args.db, create=False)
    operator = signed_in(args.operator, "report")
    made = report_files.make(operator, args.kind, period, building=args.building,
                             cashier=args.cashier, pdf=args.pdf, xlsx=args.xlsx)
    print(_("{title}, {period}").format(title=made.document.title,
                                        period=made.document.period))
    _print_totals(args.kind, made.totals)
    for path in made.paths:
        print(_("wrote {path}").format(path=path))
    return 0


def _print_totals(kind: str, totals: dict) -> None:
    if kind == "monthly":
        t = totals["totals"]
        print(_("opening {opening}, recharges {recharges}, allowance {allowance}, consumption "
                "{consumption}, refunds {refunds}, closing {closing} ({n} accounts)").format(
            opening=format_cents(t["opening"]),
            recharges=format_cents(sum(t["recharges"].values())),
            allowance=format_cents(t["allowance"]), consumption=format_cents(t["consumption"]),
            refunds=format_cents(t["refunds"] + t["carried"]),
            closing=format_cents(t["closing"]), n=totals["accounts"]))
    elif kind in ("journal", "shift"):
        by_method = totals.get("by_method") or totals.get("recharges") or {}
        print(", ".join(f"{fr.method_text(m)} {format_cents(c)}" for m, c in by_method.items())
              or _("nothing booked"))
    else:
        print(_("rooms at or below zero: {n}, {total} in all").format(
            n=totals["rooms"], total=format_cents(totals["total"])))
