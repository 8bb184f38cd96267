"""``main.py recharge``, ``import-payments``, ``account`` and ``tariff``: the desk's and
finance's work from a script.

Same core as the window. Each prints what it did; a refusal exits non-zero with one message.
"""

from __future__ import annotations

import argparse
import time

from app.core import accounts, billing, payments_import
from app.core.money import format_cents, parse_amount
from app.core.recharge import delivery_state, find_account, recharge
from app.core.tariffs import TariffVersion, parse_price, parse_tiers
from app.errors import UserFacingError
from app.i18n import _
from app.storage import accounts as store
from app.storage import ledger
from app.storage.db import open_database
from app.storage.models import Node


def run(args: argparse.Namespace) -> int:
    open_database(args.db, create=False)
    handler = {"recharge": _recharge, "import-payments": _import, "account": _account,
               "tariff": _tariff}[args.command]
    return handler(args)


def _node_for(room: str) -> int:
    node = Node.get_or_none((Node.code == room) & Node.kind.in_(("room", "shop")))
    if node is None:
        raise UserFacingError(_("no room or shop {room!r}").format(room=room))
    return node.id


def _account(args: argparse.Namespace) -> int:
    node_id = _node_for(args.room)
    acct = store.open_account_for_node(node_id)
    if args.action == "open":
        acct_id = accounts.open_account(node_id, args.operator, mode=args.mode,
                                        tariff_group=args.group)
        opened = store.get_account(acct_id)
        print(_("opened account {number} for {room} (money kept by the {mode})").format(
            number=opened.number, room=opened.room, mode=opened.mode))
        return 0
    if acct is None:
        raise UserFacingError(_("{room} has no open account").format(room=args.room))
    if args.action == "close":
        s = accounts.close_account(acct.id, args.operator, "carry" if args.carry else "refund",
                                   args.method)
        verb = _("carried to the next term") if s.disposition == "carry" else _("refunded")
        print(_("closed account {number}: {amount} {verb}; the meter is tripped").format(
            number=acct.number, amount=format_cents(s.balance_cents), verb=verb))
    elif args.action == "move-in":
        accounts.move_in(node_id, args.name, args.person_no, args.phone)
        print(_("{name} moved into {room}").format(name=args.name, room=acct.room))
    elif args.action == "move-out":
        gone = accounts.move_out_by_name(node_id, args.name)
        print(_("{name} moved out of {room}").format(name=gone, room=acct.room))
    print(_("{room}: account {number}, balance {balance}").format(
        room=acct.room, number=acct.number, balance=format_cents(ledger.balance(acct.id))))
    return 0


def _tariff(args: argparse.Namespace) -> int:
    if args.action == "set":
        if not args.starts_on or not args.price:
            raise UserFacingError(_("a tariff needs --from and --price"))
        version = TariffVersion(args.group, args.starts_on, parse_price(args.price),
                                parse_tiers(args.tiers), parse_price(args.allowance))
        billing.set_tariff(version, args.operator)
        print(_("tariff for {group} from {day}: {price} yuan/kWh").format(
            group=args.group, day=args.starts_on, price=version.price))
    for row in store.tariff_rows():
        print(f"{row['group']:<8} {row['starts_on']}  {row['price']:>8}  "
              f"tiers={row['tiers'] or '-'}  allowance={row['allowance_kwh']} kWh")
    return 0


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
