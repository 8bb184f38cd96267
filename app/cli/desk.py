"""``main.py recharge``, ``import-payments``, ``account`` and ``tariff``: the desk's and
finance's work from a script.

Same core operations as the window, with the operator signed in (``cli/auth.py``). Each prints
what it did; a refusal exits non-zero with one message (3 when the role does not allow it).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from app.cli import add_db
from app.cli.auth import add_operator_flag, signed_in
from app.core import accounts, billing, payments_import, queries
from app.core.money import format_cents, parse_amount
from app.core.operators import Operator, Permission, operator_text, require
from app.core.queries import AccountRecord
from app.core.queries import booking_kind_text as kind_text
from app.core.recharge import METHODS, delivery_state, find_account, recharge
from app.core.station import open_station
from app.core.tariffs import TariffVersion, parse_price, parse_tiers
from app.errors import UsageError, UserFacingError
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("recharge", help=_("sell electricity to a room (book and send)"))
    add_db(p)
    p.add_argument("--room", required=True,
                   help=_("room number, account number, occupant name or student number"))
    p.add_argument("--amount", required=True, help=_("yuan, e.g. 12.34"))
    p.add_argument("--method", required=True, choices=tuple(METHODS))
    add_operator_flag(p)
    p.add_argument("--reference", default=None, help=_("external payment id (applied once)"))
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help=_("wait this long for the meter to confirm"))

    p = sub.add_parser("import-payments", help=_("import a payment statement (.xlsx or .csv)"))
    add_db(p)
    p.add_argument("file", type=Path)
    add_operator_flag(p, required=False)
    p.add_argument("--method", default="campus_card", choices=tuple(METHODS),
                   help=_("payment method for rows that do not name one (a WeChat Pay or "
                          "Alipay statement names its own)"))
    p.add_argument("--memo-pattern", default=None, metavar="REGEX",
                   help=_("how a memo names the room: a regular expression with the named "
                          "groups room and/or person_no"))
    p.add_argument("--skip-bad", action="store_true",
                   help=_("book the valid rows even if some rows are wrong"))
    p.add_argument("--dry-run", action="store_true", help=_("only check the file"))
    p.add_argument("--yes", action="store_true",
                   help=_("book without asking (needed when standard input is not a terminal)"))

    p = sub.add_parser("account", help=_("open or close a room's account; occupants in and "
                                         "out; refunds and corrections"))
    add_db(p)
    p.add_argument("action", choices=("open", "close", "move-in", "move-out", "show", "refund",
                                      "correct"))
    p.add_argument("--room", default=None, help=_("room or shop number"))
    add_operator_flag(p, required=False)
    p.add_argument("--mode", choices=("meter", "station"), default=None,
                   help=_("who keeps the money (default: the meter, if the room has one)"))
    p.add_argument("--group", default=None, help=_("tariff group (default: dorm or shop)"))
    p.add_argument("--carry", action="store_true",
                   help=_("on closing, carry the balance to the resident's next term"))
    p.add_argument("--method", default=None, choices=tuple(METHODS),
                   help=_("how money is paid back (close: cash unless named)"))
    p.add_argument("--amount", default=None, help=_("refund: yuan, e.g. 12.34"))
    p.add_argument("--txn", type=int, default=None, help=_("correct: the booking's number"))
    p.add_argument("--reason", default="", help=_("refund or correct: why"))
    p.add_argument("--name", default="")
    p.add_argument("--person-no", default="")
    p.add_argument("--phone", default="")

    p = sub.add_parser("tariff", help=_("list tariffs or add a tariff version"))
    add_db(p)
    p.add_argument("action", choices=("list", "set"))
    p.add_argument("--group", default="dorm")
    p.add_argument("--from", dest="starts_on", default=None, help=_("first day, YYYY-MM-DD"))
    p.add_argument("--price", default=None, help=_("yuan per kWh, e.g. 0.588"))
    p.add_argument("--tiers", default="",
                   help=_("monthly tiers, e.g. 50:0.588,200:0.638,*:0.888 (kWh:price)"))
    p.add_argument("--allowance", default="0", help=_("free kWh per account and month"))
    p.add_argument("--new-group", action="store_true",
                   help=_("the group is new (a group no tariff or account names yet)"))
    add_operator_flag(p, required=False)
    return {"recharge": _opened(_recharge), "import-payments": _opened(_import),
            "account": _opened(_account), "tariff": _opened(_tariff)}


def _opened(handler):
    def run(args: argparse.Namespace) -> int:
        open_station(args.db, create=False)
        return handler(args)
    return run


def _operator(args: argparse.Namespace):
    command = f"{args.command} {getattr(args, 'action', '')}".strip()
    if not args.operator:
        raise UsageError(_("{command} needs --operator NAME").format(command=command))
    return signed_in(args.operator, command)


#: Reading the database file needs nothing more than the file: who holds it can read it.
READER = Operator.system("command line")


def _room(room: str | None) -> tuple[int, AccountRecord | None]:
    if not room:
        raise UsageError(_("name the room with --room"))
    return queries.room_by_number(READER, room)


def _account(args: argparse.Namespace) -> int:
    node_id, acct = _room(args.room)
    if args.action == "show":
        if acct is None:
            raise UserFacingError(_("{room} has no open account").format(room=args.room))
        _print_balance(acct)
        _print_bookings(acct)
        return 0
    if args.action == "correct":
        if args.txn is None:
            raise UsageError(_("name the booking to correct with --txn (its number: account "
                               "show --room {room})").format(room=args.room))
        if acct is None:
            raise UserFacingError(_("{room} has no open account").format(room=args.room))
        change = accounts.correct(_operator(args), args.txn, args.reason, account_id=acct.id)
        print(_("booking {txn} reversed by booking {new}").format(txn=args.txn,
                                                                   new=change.txn_id))
        _print_balance(acct)
        return 0
    operator = _operator(args)
    if args.action == "open":
        opened = accounts.open_account(operator, node_id, mode=args.mode,
                                       tariff_group=args.group).account
        assert opened is not None
        print(_("opened account {number} for {room} (money kept by the {mode})").format(
            number=opened.number, room=opened.room, mode=opened.mode))
        return 0
    if args.action == "move-in":
        accounts.move_in(operator, node_id, args.name, args.person_no, args.phone)
        print(_("{name} moved into {room}").format(name=args.name, room=args.room))
        return 0
    if args.action == "move-out":
        gone = accounts.move_out_by_name(operator, node_id, args.name)
        print(_("{name} moved out of {room}").format(name=gone, room=args.room))
        return 0
    if acct is None:
        raise UserFacingError(_("{room} has no open account").format(room=args.room))
    if args.action == "close":
        s = accounts.close_account(operator, acct.id, "carry" if args.carry else "refund",
                                   args.method or "cash")
        verb = _("carried to the next term") if s.disposition == "carry" else _("refunded")
        print(_("closed account {number}: {amount} {verb}; the meter is tripped").format(
            number=acct.number, amount=format_cents(s.balance_cents), verb=verb))
    elif args.action == "refund":
        require(operator, Permission.REFUND)  # a role that may not refund hears that first
        if args.amount is None or args.method is None:
            raise UsageError(_("a refund names its --amount and how it is paid back, --method"))
        accounts.refund(operator, acct.id, parse_amount(args.amount), args.method, args.reason)
        print(_("refunded {amount} from {room} by {method}").format(
            amount=format_cents(parse_amount(args.amount)), room=acct.room, method=args.method))
    _print_balance(acct)
    return 0


def _print_bookings(acct: AccountRecord, limit: int = 20) -> None:
    """The account's latest bookings with their numbers (what `correct --txn` takes)."""
    for t in queries.bookings(READER, acct.id, limit=limit):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.t))
        print(f"{t.id:>8}  {when}  {kind_text(t.kind):<12} {t.method or '-':<12} "
              f"{format_cents(t.amount_cents):>10}  {operator_text(t.operator):<10} {t.memo}")


def _print_balance(acct: AccountRecord) -> None:
    print(_("{room}: account {number}, balance {balance}").format(
        room=acct.room, number=acct.number,
        balance=format_cents(queries.balance(READER, acct.id))))


def _tariff(args: argparse.Namespace) -> int:
    if args.action == "set":
        if not args.starts_on or not args.price:
            raise UserFacingError(_("a tariff needs --from and --price"))
        version = TariffVersion(args.group, args.starts_on, parse_price(args.price),
                                parse_tiers(args.tiers), parse_price(args.allowance))
        billing.set_tariff(_operator(args), version, new_group=args.new_group)
        print(_("tariff for {group} from {day}: {price} yuan/kWh").format(
            group=args.group, day=args.starts_on, price=version.price))
    for row in queries.tariffs(READER):
        print(f"{row['group']:<8} {row['starts_on']}  {row['price']:>8}  "
              f"tiers={row['tiers'] or '-'}  allowance={row['allowance_kwh']} kWh")
    return 0


def _recharge(args: argparse.Namespace) -> int:
    operator = _operator(args)
    account = find_account(args.room)
    cents = parse_amount(args.amount)
    result = recharge(operator, account.id, cents, args.method, reference=args.reference)
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
    operator = None if args.dry_run else _operator(args)
    try:
        pattern = re.compile(args.memo_pattern) if args.memo_pattern else None
    except re.error as exc:
        raise UserFacingError(_("--memo-pattern is not a regular expression: {why}").format(
            why=exc)) from None
    result = payments_import.preview(args.file, default_method=args.method,
                                     memo_pattern=pattern)
    if result.channel:
        print(_("{file}: {method} statement, header on line {line}").format(
            file=args.file.name, method=_(METHODS[result.channel]), line=result.header_line))
    for r in result.errors:
        print(_("row {line}: {problem}").format(line=r.line, problem=r.problem))
    for r in result.duplicates:
        print(_("row {line}: {ref} already imported, skipped").format(line=r.line,
                                                                       ref=r.reference))
    for r in result.skipped:
        print(_("row {line}: {ref} not a payment, skipped: {why}").format(
            line=r.line, ref=r.reference, why=r.problem))
    print(_("{file}: {ok} payments to book ({total}), {bad} wrong rows, {dup} already imported, "
            "{skipped} not payments").format(
        file=args.file.name, ok=len(result.valid), total=format_cents(result.total_cents),
        bad=len(result.errors), dup=len(result.duplicates), skipped=len(result.skipped)))
    if result.errors and not args.skip_bad:
        raise UserFacingError(_("nothing booked: fix the wrong rows, or use --skip-bad to book "
                                "the valid ones"))
    if operator is None:
        return 0
    if not result.valid:
        print(_("nothing to book"))
        return 0
    if not args.yes:
        question = _("Book {n} payments totalling {total} from {file}?").format(
            n=len(result.valid), total=format_cents(result.total_cents, symbol=True),
            file=args.file.name)
        if not sys.stdin.isatty():
            raise UserFacingError(_("nothing booked: confirm with --yes (standard input is not "
                                    "a terminal to ask: {question})").format(question=question))
        answer = input(question + " " + _("[y/N] ")).strip().lower()
        if answer not in ("y", "yes", "是"):
            print(_("Nothing booked."))
            return 1
    booked = payments_import.apply(operator, result)
    print(_("booked {n} payments totalling {total}").format(
        n=booked.booked, total=format_cents(booked.total_cents)))
    return 0
