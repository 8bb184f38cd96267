"""Selling electricity (recharge, 售电): booked, queued for the meter, applied exactly once.

The booking, its gapless receipt number and the command for the meter are written in one
database transaction (a durable outbox). Whichever process polls the meter's bus delivers the
command (``core/outbox.py``) and confirms it by reading the meter back; a meter that is offline
gets it when it answers again, and the purchase count in the token makes a retry harmless.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass

from app.core import balances as live
from app.core.audit import act
from app.core.billing import _queue_recharge_token, enforce_station_balance
from app.core.changes import Changes
from app.core.money import format_cents
from app.core.operators import Operator, Permission
from app.core.payment_key import payment_key, refuse_if_booked
from app.errors import UserFacingError
from app.i18n import N_, _
from app.storage import accounts as store
from app.storage import ledger
from app.storage.accounts import AccountRecord
from app.storage.db import write_transaction
from app.storage.ledger import METHOD_BOOKS

METHODS = {"cash": N_("cash"), "campus_card": N_("campus card"), "wechat": N_("WeChat"),
           "alipay": N_("Alipay"), "unionpay": N_("UnionPay"), "bank": N_("bank transfer")}
assert set(METHODS) == set(METHOD_BOOKS), "every payment method needs its book account"
def receipt_number(receipt_no: int) -> str:
    """A receipt number as receipts and reports print it: six digits."""
    return f"{receipt_no:06d}"


#: Defaults for the desk; the settings may lower or raise them.
MAX_RECHARGE_CENTS = 2_000_00
CONFIRM_ABOVE_CENTS = 500_00


@dataclass(frozen=True)
class RechargeResult:
    txn_id: int
    receipt_no: int
    account_id: int
    room: str
    amount_cents: int
    method: str
    operator: str
    t: float
    outbox_id: int | None
    balance_cents: int
    node_id: int = 0
    account_number: str = ""

    @property
    def changes(self) -> Changes:
        return Changes.of_nodes(self.node_id)


def validate_amount(cents: int | None, maximum: int = MAX_RECHARGE_CENTS) -> int:
    """The desk's rules for an amount: present, positive, at most ``maximum``."""
    if cents is None:
        raise UserFacingError(_("enter an amount"))
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise UserFacingError(_("an amount is a whole number of fen"))
    if cents <= 0:
        raise UserFacingError(_("the amount must be more than zero"))
    if cents > maximum:
        raise UserFacingError(_("at most {max} per recharge").format(
            max=format_cents(maximum, symbol=True)))
    return cents


def find_account(text: str) -> AccountRecord:
    """The one open account a room number, account number, occupant name or student number
    names exactly (``2-1_5`` is no pattern, ``2-10`` not a part of ``2-105``); refuses none
    or several with a message listing them. A text that only part of a room or a name
    matches books nothing: the refusal names the accounts it is part of."""
    key = unicodedata.normalize("NFKC", text).strip()
    found = store.find_accounts(key, exact=True) if key else []
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        rooms = ", ".join(a.room for a in found[:8])
        raise UserFacingError(_("{text!r} matches several accounts: {rooms}").format(
            text=text, rooms=rooms))
    near = store.find_accounts(key, limit=8) if key else []
    if near:
        raise UserFacingError(_("no open account is exactly {text!r}; it is part of: {rooms} "
                                "(give the whole room, account, name or student number)")
                              .format(text=text, rooms=", ".join(a.room for a in near)))
    raise UserFacingError(_("no open account matches {text!r}").format(text=text))


def recharge(operator: Operator, account_id: int, amount_cents: int, method: str, *,
             reference: str | None = None, maximum: int = MAX_RECHARGE_CENTS,
             memo: str = "", t: float | None = None) -> RechargeResult:
    """Book a recharge and queue it for the meter, in one transaction, audited."""
    acct = store.get_account(account_id)
    with act(operator, Permission.RECHARGE, "recharge",
             target=f"{acct.number} ({acct.room})" if acct else str(account_id),
             node_id=acct.node_id if acct else None) as a:
        a.before = {"balance_cents": live.balance(account_id)} if acct else None
        result = book_recharge(operator.name, account_id, amount_cents, method,
                               reference=reference, maximum=maximum, memo=memo, t=t)
        a.after = {"amount_cents": amount_cents, "method": method, "receipt": result.receipt_no,
                   "balance_cents": result.balance_cents, "txn": result.txn_id}
        if reference is not None and str(reference).strip():
            a.detail = f"reference {payment_key(method, reference)}"
    return result


def book_recharge(operator_name: str, account_id: int, amount_cents: int, method: str, *,
                  reference: str | None = None, maximum: int = MAX_RECHARGE_CENTS,
                  memo: str = "", t: float | None = None) -> RechargeResult:
    """The booking itself (no role check, no audit entry): for the acts that book recharges
    (a recharge at the desk, an imported statement, a payment notification), inside their own
    act. ``reference``: the payment's transaction id as the door has it (raw, decorated, or
    already ``method:id``); it is booked under ``payment_key(method, id)`` and refused with
    ``DuplicateReference`` when the payment is booked already, in any form or channel
    (``core/payment_key.py``)."""
    validate_amount(amount_cents, maximum)
    if method not in METHOD_BOOKS:
        raise UserFacingError(_("unknown payment method {method!r} (use: {known})").format(
            method=method, known=", ".join(METHOD_BOOKS)))
    if not operator_name.strip():
        raise UserFacingError(_("a recharge names its operator"))
    key = payment_key(method, reference) if reference is not None and str(reference).strip() \
        else None
    acct = store.get_account(account_id)
    if acct is None or not acct.is_open:
        raise UserFacingError(_("no open account {id}").format(id=account_id))
    t = time.time() if t is None else t
    outbox_id = None
    with write_transaction():  # the check and the booking under one write lock
        if key is not None:
            refuse_if_booked(key)
        txn = ledger.post("recharge", [(METHOD_BOOKS[method], None, amount_cents),
                                       ("prepaid", account_id, -amount_cents)],
                          operator=operator_name, account_id=account_id, method=method,
                          reference=key, memo=memo, t=t)
        receipt = ledger.next_counter("receipt")
        ledger.keep_receipt(receipt, txn)
        if acct.mode == "meter":
            meters = store.meters_of_node(acct.node_id)
            if len(meters) != 1:
                raise UserFacingError(_("{room}: a meter-keeps-money account needs one meter")
                                      .format(room=acct.room))
            outbox_id = _queue_recharge_token(meters[0][0], amount_cents, txn, receipt)
        else:  # the station keeps the money: close meters it had tripped, in the same booking
            enforce_station_balance(account_id)
        balance = live.balance(account_id)
    return RechargeResult(txn, receipt, account_id, acct.room, amount_cents, method,
                          operator_name, t, outbox_id, balance, acct.node_id, acct.number)


def delivery_state(result: RechargeResult) -> str:
    """pending, applied or failed for a meter's token; ``booked`` for a station account."""
    if result.outbox_id is None:
        return "booked"
    item = store.outbox_item(result.outbox_id)
    return item.state if item else "failed"
