"""Opening (开户) and closing (销户) prepaid accounts, occupants moving in and out.

Every change of money goes through the ledger. Closing settles: the caller bills up to the last
reading first (``close_account`` does it), then the balance is refunded or carried to the
resident's next term, and the account is closed, all in one transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.errors import UserFacingError
from app.i18n import _
from app.storage import accounts as store
from app.storage import ledger
from app.storage.ledger import METHOD_BOOKS
from app.storage.models import Node, Occupant, database

MODES = ("meter", "station")


@dataclass(frozen=True)
class Settlement:
    account_id: int
    balance_cents: int
    disposition: str  # refund or carry
    txn_id: int | None


def default_group(node_id: int) -> str:
    node = Node.get_by_id(node_id)
    return "shop" if node.kind == "shop" else "dorm"


def open_account(node_id: int, operator: str, *, mode: str | None = None,
                 tariff_group: str | None = None, opening_cents: int = 0,
                 adopt_meter_balance: bool = False, t: float | None = None) -> int:
    """Open an account for a room or shop. ``mode`` defaults to ``meter`` when the node has one
    prepaid meter (the meter keeps the money), else ``station``. With
    ``adopt_meter_balance`` the money the meter holds at its first reading becomes the opening
    balance (taking over meters already in use)."""
    node = Node.get_or_none(Node.id == node_id)
    if node is None or node.kind not in ("room", "shop"):
        raise UserFacingError(_("an account belongs to a room or a shop"))
    if store.open_account_for_node(node_id) is not None:
        raise UserFacingError(_("{room} already has an open account").format(
            room=node.code or node.name))
    meters = store.meters_of_node(node_id)
    if mode is None:
        mode = "meter" if len(meters) == 1 else "station"
    if mode not in MODES:
        raise UserFacingError(_("unknown account mode {mode!r}").format(mode=mode))
    if mode == "meter" and len(meters) != 1:
        raise UserFacingError(_("a meter-keeps-money account needs exactly one meter"))
    with database.atomic():
        acct = store.insert_account(node_id, tariff_group or default_group(node_id), mode,
                                    operator, t, adopt=adopt_meter_balance and mode == "meter")
        if opening_cents:
            ledger.post("opening", [("equity:opening", None, opening_cents),
                                    ("prepaid", acct, -opening_cents)],
                        operator=operator, account_id=acct, t=t,
                        memo="balance taken over when the account was opened")
    return acct


def move_in(node_id: int, name: str, person_no: str = "", phone: str = "",
            t: float | None = None) -> int:
    if not name.strip():
        raise UserFacingError(_("an occupant needs a name"))
    return Occupant.insert(node=node_id, name=name.strip(), person_no=person_no.strip(),
                           phone=phone.strip(),
                           moved_in=time.time() if t is None else t).execute()


def move_out(occupant_id: int, t: float | None = None) -> None:
    Occupant.update(moved_out=time.time() if t is None else t).where(
        Occupant.id == occupant_id).execute()


def close_account(account_id: int, operator: str, disposition: str = "refund",
                  method: str = "cash", max_reading_age_s: float = 300.0,
                  t: float | None = None) -> Settlement:
    """销户: bill up to the last reading (the interval still running included), cut the room's
    meters (a trip for each, through the outbox), then refund or carry the balance and close.

    Refused when a meter's last reading is older than ``max_reading_age_s`` (the settlement
    must rest on a fresh reading) or money is still on its way to a meter."""
    from app.core import billing

    acct = store.get_account(account_id)
    if acct is None or not acct.is_open:
        raise UserFacingError(_("no open account {id}").format(id=account_id))
    t = time.time() if t is None else t
    meters = store.meters_of_node(acct.node_id)
    for meter_id, *_rest in meters:
        _money, _count, read_at = store.meter_money(meter_id)
        if read_at is None or t - read_at > max_reading_age_s:
            raise UserFacingError(_("{room}: no fresh reading of its meter; the settlement "
                                    "needs one (is the meter online?)").format(room=acct.room))
        if any(i.action == "recharge" for i in store.pending_outbox([meter_id])):
            raise UserFacingError(_("{room}: a recharge is still on its way to the meter")
                                  .format(room=acct.room))
    report = billing.bill(now=t, operator=operator, account_id=account_id, final=True)
    if report.problems:
        raise UserFacingError("; ".join(report.problems))
    with database.atomic():
        for meter_id, *_rest in meters:
            store.add_outbox(meter_id, "trip")
        return settle_and_close(account_id, operator, disposition, method, t)


def correct(txn_id: int, operator: str, reason: str) -> int:
    """Reverse a booking with a new one (the ledger is never edited). Returns the new txn."""
    if not reason.strip():
        raise UserFacingError(_("a correction needs a reason"))
    return ledger.reverse(txn_id, operator=operator, memo=reason.strip())


def move_out_by_name(node_id: int, name: str, t: float | None = None) -> str:
    """Move out the current occupant of the node called ``name``; returns the name."""
    row = Occupant.get_or_none((Occupant.node == node_id) & (Occupant.name == name.strip())
                               & Occupant.moved_out.is_null())
    if row is None:
        raise UserFacingError(_("nobody called {name!r} lives there").format(name=name))
    move_out(row.id, t)
    return row.name


def settle_and_close(account_id: int, operator: str, disposition: str = "refund",
                     method: str = "cash", t: float | None = None) -> Settlement:
    """Refund the balance (or carry it to the resident's next term) and close the account.
    Call after billing up to the last reading (``billing.close_account`` does both)."""
    acct = store.get_account(account_id)
    if acct is None or not acct.is_open:
        raise UserFacingError(_("no open account {id}").format(id=account_id))
    if disposition not in ("refund", "carry"):
        raise UserFacingError(_("a closing balance is refunded or carried"))
    t = time.time() if t is None else t
    with database.atomic():
        bal = ledger.balance(account_id)
        txn = None
        if bal != 0:
            other = METHOD_BOOKS.get(method, "cash") if disposition == "refund" else "carried"
            txn = ledger.post("refund" if disposition == "refund" else "carry",
                              [("prepaid", account_id, bal), (other, None, -bal)],
                              operator=operator, account_id=account_id, method=method, t=t,
                              memo=_("final settlement on closing"))
        store.mark_closed(account_id, t)
    return Settlement(account_id, bal, disposition, txn)
