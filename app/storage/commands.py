"""The outbox's MACs and what the sender checks a token against (see ``core/commands.py``)."""

from __future__ import annotations

import time

from peewee import fn

from app.storage.accounts import OutboxItem, outbox_items_with_ids
from app.storage.models import (
    Account,
    BookAccount,
    LedgerEntry,
    LedgerTxn,
    Meter,
    Outbox,
)


def set_mac(item_id: int, mac: str) -> None:
    Outbox.update(mac=mac).where(Outbox.id == item_id).execute()


def unsigned() -> list[OutboxItem]:
    """Outbox rows without a MAC (queued before commands were signed), in order."""
    ids = [i for (i,) in Outbox.select(Outbox.id).where(Outbox.mac == "").tuples()]
    return sorted(outbox_items_with_ids(ids), key=lambda item: item.id)


def token_booking(txn_id: int) -> tuple[str, set[int], int] | None:
    """A token's booking: its kind, the meters of its account's room, and what it gives the
    meter in cents (a recharge: what it credits the account; an allowance: its value)."""
    txn = LedgerTxn.get_or_none(LedgerTxn.id == txn_id)
    if txn is None:
        return None
    meters: set[int] = set()
    if txn.account_id is not None:
        node = Account.select(Account.node).where(Account.id == txn.account_id).scalar()
        meters = {m for (m,) in Meter.select(Meter.id).where(Meter.node == node).tuples()}
    book = "prepaid" if txn.kind != "allowance" else "expense:allowance"
    total = (LedgerEntry.select(fn.COALESCE(fn.SUM(LedgerEntry.amount_cents), 0))
             .join(BookAccount).where((LedgerEntry.txn == txn_id) & (BookAccount.code == book))
             .scalar())
    return txn.kind, meters, -int(total) if book == "prepaid" else int(total)


def withdraw(item_ids: list[int], why: str) -> set[int]:
    """Withdraw the commands that are still pending (never to be sent); returns those that
    were (one that was done meanwhile keeps its state)."""
    gone: set[int] = set()
    for k in range(0, len(item_ids), 500):
        chunk = item_ids[k:k + 500]
        pending = [i for (i,) in Outbox.select(Outbox.id).where(
            Outbox.id.in_(chunk) & (Outbox.state == "pending")).tuples()]
        if pending:
            Outbox.update(state="withdrawn", last_error=why, updated_at=time.time()).where(
                Outbox.id.in_(pending) & (Outbox.state == "pending")).execute()
            gone.update(pending)
    return gone


def pending_relay_commands(meter_id: int) -> list[OutboxItem]:
    """The meter's trips and closes not sent yet."""
    ids = [i for (i,) in Outbox.select(Outbox.id).where(
        (Outbox.meter == meter_id) & (Outbox.state == "pending")
        & Outbox.action.in_(("trip", "close"))).tuples()]
    return outbox_items_with_ids(ids)


def previous_of(item_id: int) -> str:
    """The value a setting command replaced on its meter ('' while unknown)."""
    return Outbox.select(Outbox.previous).where(Outbox.id == item_id).scalar() or ""


def set_previous(item_id: int, value: str) -> None:
    Outbox.update(previous=value).where(Outbox.id == item_id).execute()
