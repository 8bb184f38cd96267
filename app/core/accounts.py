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
