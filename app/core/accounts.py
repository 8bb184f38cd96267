"""Opening (开户) and closing (销户) prepaid accounts, occupants moving in and out, refunds and
corrections: acts of an operator, role-checked and audited (``core/audit.act``).

Every change of money goes through the ledger. Closing settles: the caller bills up to the last
reading first (``close_account`` does it), then the balance is refunded or carried to the
resident's next term, and the account is closed, all in one transaction.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.core import audit, commands, relay_holds
from app.core import balances as live
from app.core.alarms import raise_alarm
from app.core.audit import act
from app.core.changes import NOTHING, Changes
from app.core.money import format_cents
from app.core.operators import Operator, Permission
from app.drivers.capability import RECHARGE_POINTS, lacks_recharge
from app.drivers.profile import ProfileError, load_profile
from app.errors import UserFacingError
from app.i18n import _
from app.storage import accounts as store
from app.storage import capabilities, ledger
from app.storage.accounts import AccountRecord
from app.storage.db import write_transaction
from app.storage.ledger import METHOD_BOOKS
from app.storage.models import Node, Occupant, database

log = logging.getLogger("voltkeeper.accounts")

MODES = ("meter", "station")


@dataclass(frozen=True)
class Settlement:
    account_id: int
    balance_cents: int
    disposition: str  # refund or carry
    txn_id: int | None
    changes: Changes = NOTHING


@dataclass(frozen=True)
class AccountChange:
    """An act on an account or its room: the account after it, and what changed."""

    account: AccountRecord | None
    changes: Changes
    txn_id: int | None = None
    occupant_id: int | None = None


def default_group(node_id: int) -> str:
    node = Node.get_by_id(node_id)
    return "shop" if node.kind == "shop" else "dorm"


# -- the money mode: who keeps an account's money ---------------------------------------------
def takes_tokens(meter_id: int, profile_name: str,
                 known: dict[int, capabilities.CapabilityRow] | None = None) -> bool:
    """True when the meter can keep money: its profile takes a recharge token and the meter is
    not known to lack the token registers (a meter from the factory has none of them).
    ``known``: every meter's stored capability, when the caller has it already."""
    try:
        profile = load_profile(profile_name)
    except ProfileError:
        return False
    row = known.get(meter_id) if known is not None else capabilities.get(meter_id)
    return not lacks_recharge(profile, row.missing if row else ())


def settle_meters_without_tokens() -> list[int]:
    """Meter-keeps-money accounts whose meter turned out to lack the token registers are moved
    to station-kept money by the station itself: an audited system act, an alarm, and the
    tokens still waiting for the meter settled at the station (never sent). Returns the
    accounts moved."""
    from app.core.billing import enforce_station_balance

    moved: list[int] = []
    candidates = [a for a in store.open_accounts() if a.mode == "meter"]
    if not candidates:
        return moved
    known = capabilities.load()
    for acct in candidates:
        meters = store.meters_of_node(acct.node_id)
        if len(meters) != 1 or takes_tokens(meters[0][0], meters[0][1], known):
            continue
        meter_id, profile_name = meters[0][0], meters[0][1]
        row = known.get(meter_id)
        missing = [n for n in (row.missing if row else ()) if n in RECHARGE_POINTS] \
            or [f"no recharge in profile {profile_name}"]
        with write_transaction():
            current = store.get_account(acct.id)
            if current is None or not current.is_open or current.mode != "meter":
                continue
            capabilities.set_account_mode(acct.id, "station")
            settled = capabilities.settle_pending_tokens(
                meter_id, "the meter has no token registers: the station keeps the money")
            audit.record("system", "account_mode", target=_target(acct), node_id=acct.node_id,
                         before={"mode": "meter"},
                         after={"mode": "station", "meter": meter_id,
                                "missing": missing, "tokens_settled": settled},
                         detail="the meter has no recharge token registers")
            raise_alarm("account_mode", 2,
                        {"meter": meter_id, "missing": ", ".join(missing),
                         "account": acct.number, "tokens": len(settled)},
                        meter_id=meter_id, account_id=acct.id, once=False)
            enforce_station_balance(acct.id)
        log.warning("account %s (%s): meter %s has no token registers (%s): the station keeps "
                    "its money now", acct.number, acct.room, meter_id, ", ".join(missing))
        moved.append(acct.id)
    return moved


#: The source of the hold that keeps an empty room off once its account is closed.
ACCOUNT_CLOSED = "account closed"


def open_account(operator: Operator, node_id: int, *, mode: str | None = None,
                 tariff_group: str | None = None, opening_cents: int = 0,
                 adopt_meter_balance: bool = False, t: float | None = None) -> AccountChange:
    """Open an account for a room or shop. ``mode`` defaults to ``meter`` when the node has one
    meter that can keep money (its profile takes a recharge token and the meter is not known to
    lack the token registers: ``takes_tokens``), else ``station``. With
    ``adopt_meter_balance`` the money the meter holds at its first reading becomes the opening
    balance (taking over meters already in use)."""
    node = Node.get_or_none(Node.id == node_id)
    if node is None or node.kind not in ("room", "shop"):
        raise UserFacingError(_("an account belongs to a room or a shop"))
    room = node.code or node.name
    with act(operator, Permission.MANAGE_ACCOUNTS, "account_open", target=room,
             node_id=node_id) as a:
        if store.open_account_for_node(node_id) is not None:
            raise UserFacingError(_("{room} already has an open account").format(room=room))
        meters = store.meters_of_node(node_id)
        if mode is None:
            mode = "meter" if len(meters) == 1 and takes_tokens(meters[0][0], meters[0][1]) \
                else "station"
        if mode not in MODES:
            raise UserFacingError(_("unknown account mode {mode!r}").format(mode=mode))
        if mode == "meter" and len(meters) != 1:
            raise UserFacingError(_("a meter-keeps-money account needs exactly one meter"))
        if mode == "meter" and not takes_tokens(meters[0][0], meters[0][1]):
            raise UserFacingError(_("{room}: its meter cannot take a recharge token, so it "
                                    "cannot keep the money; the station keeps it").format(
                room=room))
        group = tariff_group or default_group(node_id)
        acct = store.insert_account(node_id, group, mode, operator.name, t,
                                    adopt=adopt_meter_balance and mode == "meter")
        txn = None
        if opening_cents:
            txn = ledger.post("opening", [("equity:opening", None, opening_cents),
                                          ("prepaid", acct, -opening_cents)],
                              operator=operator.name, account_id=acct, t=t,
                              memo="balance taken over when the account was opened")
        record = store.get_account(acct)
        assert record is not None
        meter_ids = [meter_id for meter_id, *_rest in meters]
        if mode == "station":  # no money yet: held for arrears before the room is let on
            from app.core.billing import enforce_station_balance
            enforce_station_balance(acct)
        relay_holds.release(meter_ids, "operator", source=ACCOUNT_CLOSED, now=t)
        a.target = f"{record.number} ({room})"
        a.after = {"account": record.number, "mode": mode, "tariff_group": group,
                   "opening_cents": opening_cents, "adopt_meter_balance": adopt_meter_balance}
    return AccountChange(record, Changes.of_nodes(node_id), txn)


def move_in(operator: Operator, node_id: int, name: str, person_no: str = "",
            phone: str = "", t: float | None = None) -> AccountChange:
    if not name.strip():
        raise UserFacingError(_("an occupant needs a name"))
    node = Node.get_or_none(Node.id == node_id)
    if node is None or node.kind not in ("room", "shop"):
        raise UserFacingError(_("an occupant lives in a room or a shop"))
    with act(operator, Permission.MANAGE_ACCOUNTS, "move_in", target=node.code or node.name,
             node_id=node_id) as a:
        occupant = Occupant.insert(node=node_id, name=name.strip(), person_no=person_no.strip(),
                                   phone=phone.strip(),
                                   moved_in=time.time() if t is None else t).execute()
        a.after = {"name": name.strip(), "person_no": person_no.strip()}
    return AccountChange(store.open_account_for_node(node_id),
                         Changes.of_nodes(node_id, campus=True), occupant_id=occupant)


def move_out(operator: Operator, occupant_id: int, t: float | None = None) -> AccountChange:
    row = Occupant.get_or_none((Occupant.id == occupant_id) & Occupant.moved_out.is_null())
    if row is None:
        raise UserFacingError(_("no such occupant lives there"))
    node = Node.get_by_id(row.node_id)
    with act(operator, Permission.MANAGE_ACCOUNTS, "move_out", target=node.code or node.name,
             node_id=node.id) as a:
        Occupant.update(moved_out=time.time() if t is None else t).where(
            Occupant.id == occupant_id).execute()
        a.before = {"name": row.name, "person_no": row.person_no}
    return AccountChange(store.open_account_for_node(node.id),
                         Changes.of_nodes(node.id, campus=True), occupant_id=occupant_id)


def close_account(operator: Operator, account_id: int, disposition: str = "refund",
                  method: str = "cash", max_reading_age_s: float = 300.0,
                  t: float | None = None) -> Settlement:
    """销户: bill up to the last reading (the interval still running included), cut the room's
    meters (a trip for each, through the outbox), then refund or carry the balance and close.

    Refused when a meter's last reading is older than ``max_reading_age_s`` (the settlement
    must rest on a fresh reading) or money is still on its way to a meter."""
    from app.core import billing
    from app.core.operators import require

    require(operator, Permission.CLOSE_ACCOUNTS)
    acct = _open(account_id)
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
    report = billing.bill(now=t, operator=operator.name, account_id=account_id, final=True)
    if report.problems:
        raise UserFacingError("; ".join(report.problems))
    with act(operator, Permission.CLOSE_ACCOUNTS, "account_close", target=_target(acct),
             node_id=acct.node_id) as a:
        meter_ids = [meter_id for meter_id, *_rest in meters]
        for meter_id in meter_ids:
            commands.queue(meter_id, "trip")
        # the empty room stays off until its next account opens (not at the end of
        # lights-out); what held it for the closed account's debts goes with it
        relay_holds.hold(meter_ids, "operator", source=ACCOUNT_CLOSED, detail=acct.number,
                         trip=False, tell=False)
        relay_holds.forget(meter_ids, "arrears")
        settlement = _settle(acct, operator, disposition, method, t)
        a.before = {"balance_cents": settlement.balance_cents}
        a.after = {"disposition": disposition, "method": method, "trip_meters": len(meters)}
    return settlement


def settle_and_close(operator: Operator, account_id: int, disposition: str = "refund",
                     method: str = "cash", t: float | None = None) -> Settlement:
    """Refund the balance (or carry it to the resident's next term) and close the account,
    without billing or tripping first (``close_account`` does both, and is what the desk
    uses)."""
    acct = _open(account_id)
    with act(operator, Permission.CLOSE_ACCOUNTS, "account_close", target=_target(acct),
             node_id=acct.node_id) as a:
        settlement = _settle(acct, operator, disposition, method,
                             time.time() if t is None else t)
        a.before = {"balance_cents": settlement.balance_cents}
        a.after = {"disposition": disposition, "method": method}
    return settlement


def _settle(acct: AccountRecord, operator: Operator, disposition: str, method: str,
            t: float) -> Settlement:
    if disposition not in ("refund", "carry"):
        raise UserFacingError(_("a closing balance is refunded or carried"))
    with database.atomic():
        bal = ledger.balance(acct.id)
        txn = None
        if bal != 0:
            other = METHOD_BOOKS.get(method, "cash") if disposition == "refund" else "carried"
            txn = ledger.post("refund" if disposition == "refund" else "carry",
                              [("prepaid", acct.id, bal), (other, None, -bal)],
                              operator=operator.name, account_id=acct.id, method=method, t=t,
                              memo=_("final settlement on closing"))
        store.mark_closed(acct.id, t)
    return Settlement(acct.id, bal, disposition, txn, Changes.of_nodes(acct.node_id))


def _open(account_id: int) -> AccountRecord:
    acct = store.get_account(account_id)
    if acct is None or not acct.is_open:
        raise UserFacingError(_("no open account {id}").format(id=account_id))
    return acct


def _target(acct: AccountRecord) -> str:
    return f"{acct.number} ({acct.room})"


def correct(operator: Operator, txn_id: int, reason: str, *,
            account_id: int | None = None) -> AccountChange:
    """Reverse a booking with a new one (the ledger is never edited), once.

    ``account_id``: the account the caller means (a booking of another account is refused, so
    a mistyped booking number never reverses another room's money). Only what the books alone
    hold can be reversed: not on a closed account (its settlement is done), and on an account
    whose meter keeps the money not what the meter already has (a recharge it applied, the
    balance taken over from it, the billing that mirrors its own deductions): only a recharge
    whose token the meter refused."""
    from app.core.billing import enforce_station_balance

    if not reason.strip():
        raise UserFacingError(_("a correction needs a reason"))
    original = ledger.txn(txn_id)
    if original is None:
        raise UserFacingError(_("no booking {id}").format(id=txn_id))
    acct = store.get_account(original.account_id) if original.account_id else None
    with act(operator, Permission.CORRECT, "correction",
             target=_target(acct) if acct else f"txn {txn_id}",
             node_id=acct.node_id if acct else None) as a:
        if account_id is not None and original.account_id != account_id:
            mine = store.get_account(account_id)
            raise UserFacingError(_("booking {id} is not one of {room}'s: it belongs to {other}")
                                  .format(id=txn_id, room=mine.room if mine else account_id,
                                          other=acct.room if acct else _("no account")))
        if acct is not None and not acct.is_open:
            raise UserFacingError(_("{room}: account {number} is closed; its settlement is "
                                    "final").format(room=acct.room, number=acct.number))
        delivery = store.outbox_for_txn(txn_id)
        if delivery is not None and delivery.state == "pending":
            raise UserFacingError(_("booking {id} is still on its way to the meter; correct it "
                                    "once the meter has it").format(id=txn_id))
        if acct is not None and acct.mode == "meter" and not (
                original.kind == "recharge" and delivery is not None
                and delivery.state == "failed"):
            raise UserFacingError(_("{room}: the meter keeps this account's money and already "
                                    "holds what booking {id} says; only a recharge the meter "
                                    "refused can be reversed").format(room=acct.room,
                                                                      id=txn_id))
        before = live.balance(acct.id) if acct else None
        new_txn = ledger.reverse(txn_id, operator=operator.name, memo=reason.strip())
        if acct is not None and acct.mode == "station" and acct.is_open:
            enforce_station_balance(acct.id)
        a.before = {"txn": txn_id, "kind": original.kind, "amount_cents": original.amount_cents,
                    "balance_cents": before}
        a.after = {"txn": new_txn, "balance_cents": live.balance(acct.id) if acct else None}
        a.detail = reason.strip()
    return AccountChange(acct, Changes.of_nodes(acct.node_id if acct else None), new_txn)


def refund(operator: Operator, account_id: int, amount_cents: int, method: str,
           reason: str) -> AccountChange:
    """Pay money back from an open account's balance (a station-kept account: the meter of a
    meter-keeps-money account holds the money itself, and is refunded by closing the account,
    which trips it)."""
    from app.core.billing import enforce_station_balance
    from app.core.recharge import validate_amount

    if not reason.strip():
        raise UserFacingError(_("a refund needs a reason"))
    if method not in METHOD_BOOKS:
        raise UserFacingError(_("unknown payment method {method!r} (use: {known})").format(
            method=method, known=", ".join(METHOD_BOOKS)))
    acct = _open(account_id)
    with act(operator, Permission.REFUND, "refund", target=_target(acct),
             node_id=acct.node_id) as a:
        validate_amount(amount_cents, 10_000_00)
        if acct.mode != "station":
            raise UserFacingError(_("{room}: the meter keeps this account's money; refund it "
                                    "by closing the account").format(room=acct.room))
        before = live.balance(acct.id)
        if amount_cents > before:
            raise UserFacingError(_("{room}: at most the balance {balance} can be refunded")
                                  .format(room=acct.room, balance=format_cents(before)))
        txn = ledger.post("refund", [("prepaid", acct.id, amount_cents),
                                     (METHOD_BOOKS[method], None, -amount_cents)],
                          operator=operator.name, account_id=acct.id, method=method,
                          memo=reason.strip())
        enforce_station_balance(acct.id)
        a.before = {"balance_cents": before}
        a.after = {"balance_cents": before - amount_cents, "amount_cents": amount_cents,
                   "method": method, "txn": txn}
        a.detail = reason.strip()
    return AccountChange(acct, Changes.of_nodes(acct.node_id), txn)


def move_out_by_name(operator: Operator, node_id: int, name: str,
                     t: float | None = None) -> str:
    """Move out the current occupant of the node called ``name``; returns the name."""
    row = Occupant.get_or_none((Occupant.node == node_id) & (Occupant.name == name.strip())
                               & Occupant.moved_out.is_null())
    if row is None:
        raise UserFacingError(_("nobody called {name!r} lives there").format(name=name))
    move_out(operator, row.id, t)
    return row.name
