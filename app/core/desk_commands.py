"""``main.py recharge`` and ``main.py import-payments``: the front desk's work from a script.

Same core as the window. Each prints what it did; a refusal exits non-zero with one message.
"""

from __future__ import annotations

import argparse
import time

from app.core import payments_import
from app.core.money import format_cents, parse_amount
from app.core.recharge import delivery_state, find_account, recharge
from app.errors import UserFacingError
from app.i18n import _
from app.storage.db import open_database


def run(args: argparse.Namespace) -> int:
    open_database(args.db, create=False)
    if args.command == "recharge":
        return _recharge(args)
    return _import(args)


def _recharge(args: argparse.Namespace) -> int:
    account = find_account(args.room)
    cents = parse_amount(args.amount)
    result = recharge(account.id, cents, args.method, args.operator, reference=args.reference)
    state = delivery_state(result)
    deadline = time.monotonic() + max(args.wait, 0.0)
    while state == "pending" and time.monotonic() < deadline:
        time.sleep(0.2)
        state = delivery_state(result)
    print(_("recharged {room} ({number}) with {amount} by {method}; receipt {receipt:06d}; "
            "balance {balance}").format(room=account.room, number=account.number,
                                        amount=format_cents(cents), method=args.method,
                                        receipt=result.receipt_no,
                                        balance=format_cents(result.balance_cents)))
    texts = {"pending": _("meter: pending (the polling process sends it to the meter)"),
             "applied": _("meter: applied"), "failed": _("meter: FAILED, see the alarm list"),
             "booked": _("meter: nothing to send (the station keeps this account's money)")}
    print(texts.get(state, state))
    return 1 if state == "failed" else 0


def _import(args: argparse.Namespace) -> int:
    result = payments_import.preview(args.file, default_method=args.method)
    for r in result.errors:
        print(_("row {line}: {problem}").format(line=r.line, problem=r.problem))
    for r in result.duplicates:
        print(_("row {line}: {ref} already imported, skipped").format(line=r.line,
                                                                       ref=r.reference))
    print(_("{file}: {ok} payments to book ({total}), {bad} wrong rows, {dup} already imported")
          .format(file=args.file.name, ok=len(result.valid),
                  total=format_cents(result.total_cents), bad=len(result.errors),
                  dup=len(result.duplicates)))
    if result.errors and not args.skip_bad:
        raise UserFacingError(_("nothing booked: fix the wrong rows, or use --skip-bad to book "
                                "the valid ones"))
    if args.dry_run:
        return 0
    booked = payments_import.apply(result, args.operator)
    print(_("booked {n} payments").format(n=booked))
    return 0
