"""Prepaid accounts, tariffs, purchase counts and the outbox: rows in, records out."""

from __future__ import annotations

import time
from dataclasses import dataclass

from peewee import fn

from app.storage.models import (
    Account,
    BillingMonth,
    LatestReading,
    Meter,
    Node,
    Occupant,
    Outbox,
    Tariff,
    database,
)


@dataclass(frozen=True)
class AccountRecord:
    id: int
    number: str
    node_id: int
    room: str  # the node's code (room number) or name
    tariff_group: str
    mode: str
    opened_at: float
    closed_at: float | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    meter_id: int
    action: str
    amount_cents: int
    purchase_count: int | None
    txn_id: int | None
    receipt_no: int | None
    state: str
    attempts: int
    last_error: str
    created_at: float
    mac: str = ""


def _record(a: Account, node: Node) -> AccountRecord:
    return AccountRecord(a.id, a.number, a.node_id, node.code or node.name, a.tariff_group,
                         a.mode, a.opened_at, a.closed_at)


def insert_account(node_id: int, tariff_group: str, mode: str, opened_by: str,
                   t: float | None = None, adopt: bool = False) -> int:
    t = time.time() if t is None else t
    with database.atomic():
        acct_id = Account.insert(number="", node=node_id, tariff_group=tariff_group, mode=mode,
                                 opened_at=t, opened_by=opened_by,
                                 adopt_meter_balance=adopt).execute()
        Account.update(number=f"A{acct_id:07d}").where(Account.id == acct_id).execute()
    return acct_id


def accounts_to_adopt() -> list[int]:
    q = Account.select(Account.id).where(Account.closed_at.is_null()
                                         & (Account.adopt_meter_balance == True))  # noqa: E712
    return [a for (a,) in q.tuples()]


def adopted(account_id: int) -> None:
    Account.update(adopt_meter_balance=False).where(Account.id == account_id).execute()


def mark_closed(account_id: int, t: float) -> None:
    Account.update(closed_at=t).where(Account.id == account_id).execute()


def get_account(account_id: int) -> AccountRecord | None:
    row = (Account.select(Account, Node).join(Node).where(Account.id == account_id).first())
    return _record(row, row.node) if row else None


def open_account_for_node(node_id: int) -> AccountRecord | None:
    row = (Account.select(Account, Node).join(Node)
           .where((Account.node == node_id) & Account.closed_at.is_null()).first())
    return _record(row, row.node) if row else None


def accounts_of_node(node_id: int) -> list[AccountRecord]:
    q = (Account.select(Account, Node).join(Node).where(Account.node == node_id)
         .order_by(Account.closed_at.is_null().desc(), Account.id.desc()))
    return [_record(a, a.node) for a in q]


def open_accounts() -> list[AccountRecord]:
    q = Account.select(Account, Node).join(Node).where(Account.closed_at.is_null()) \
        .order_by(Account.id)
    return [_record(a, a.node) for a in q]


def find_accounts(text: str, limit: int = 50, include_closed: bool = False, *,
                  exact: bool = False) -> list[AccountRecord]:
    """Open accounts whose room code, account number, or current occupant's name or
    student/staff number matches ``text`` (exact code or number first, then contains).
    ``include_closed``: also the last closed account of a room that has no open one.

    ``exact``: only a room code, room or shop name, account number, occupant name or student
    number equal to ``text`` (what may book money); otherwise also rooms and names containing the
    text, compared literally (``_``, ``%`` and ``\\`` are no wildcards)."""
    text = text.strip()
    if not text:
        return []
    if exact:
        occupant_nodes = Occupant.select(Occupant.node).where(
            Occupant.moved_out.is_null() & ((Occupant.name == text)
                                            | (Occupant.person_no == text)))
        matches = ((Node.code == text) | (Account.number == text) | (Node.name == text)
                   | Node.id.in_(occupant_nodes))
    else:  # contains(): LIKE with the wildcards in ``text`` escaped (peewee adds ESCAPE)
        occupant_nodes = Occupant.select(Occupant.node).where(
            Occupant.moved_out.is_null() & (Occupant.name.contains(text)
                                            | (Occupant.person_no == text)))
        matches = ((Node.code == text) | (Account.number == text) | Node.code.contains(text)
                   | Node.name.contains(text) | Node.id.in_(occupant_nodes))
    q = (Account.select(Account, Node).join(Node)
         .where(matches if include_closed else (Account.closed_at.is_null() & matches))
         .order_by((Node.code != text), Node.code, Account.closed_at.is_null().desc(),
                   Account.id.desc()))
    out: list[AccountRecord] = []
    seen: set[int] = set()
    for a in q:
        if a.node_id in seen:  # the open account, or else the latest closed one, of a room
            continue
        seen.add(a.node_id)
        out.append(_record(a, a.node))
        if len(out) >= limit:
            break
    return out


def meters_of_node(node_id: int) -> list[tuple[int, str, str, int]]:
    """(meter id, profile, serial, bus id) of a node's meters."""
    q = Meter.select(Meter.id, Meter.profile, Meter.serial, Meter.bus).where(
        (Meter.node == node_id) & (Meter.enabled == True)).order_by(Meter.id)  # noqa: E712
    return list(q.tuples())


def meter_money(meter_id: int) -> tuple[int | None, int | None, float | None]:
    """The meter's last read (money cents, purchase count, read time)."""
    row = LatestReading.get_or_none(LatestReading.meter == meter_id)
    if row is None:
        return None, None, None
    return row.money_cents, row.purchase_count, row.read_at


# -- tariffs ---------------------------------------------------------------------------------
def insert_tariff(group: str, starts_on: str, price: str, tiers: str, allowance_kwh: str,
                  created_by: str) -> int:
    return Tariff.insert(group=group, starts_on=starts_on, price=price, tiers=tiers,
                         allowance_kwh=allowance_kwh, created_at=time.time(),
                         created_by=created_by).execute()


def tariff_groups_in_use() -> set[str]:
    """The tariff groups accounts (open or closed) name."""
    return {g for (g,) in Account.select(Account.tariff_group).distinct().tuples()}


def tariff_rows(group: str | None = None) -> list[dict]:
    q = Tariff.select()
    if group is not None:
        q = q.where(Tariff.group == group)
    return list(q.order_by(Tariff.group, Tariff.starts_on).dicts())


# -- purchase counts and the outbox -----------------------------------------------------------
def add_outbox(meter_id: int, action: str, *, amount_cents: int = 0,
               purchase_count: int | None = None, txn_id: int | None = None,
               receipt_no: int | None = None) -> int:
    now = time.time()
    return Outbox.insert(meter=meter_id, action=action, amount_cents=amount_cents,
                         purchase_count=purchase_count, txn=txn_id, receipt_no=receipt_no,
                         created_at=now, updated_at=now).execute()


def _item(o: Outbox) -> OutboxItem:
    return OutboxItem(o.id, o.meter_id, o.action, o.amount_cents, o.purchase_count, o.txn_id,
                      o.receipt_no, o.state, o.attempts, o.last_error, o.created_at, o.mac)


def pending_outbox(meter_ids: list[int] | None = None,
                   deliverable: bool = False) -> list[OutboxItem]:
    """Pending items in order. ``deliverable``: leave out meters whose account is still to
    take over the meter's balance (a token delivered first would be counted twice)."""
    q = Outbox.select().where(Outbox.state == "pending")
    if deliverable:
        waiting = (Meter.select(Meter.id).join(Account, on=(Account.node == Meter.node))
                   .where(Account.closed_at.is_null()
                          & (Account.adopt_meter_balance == True)))  # noqa: E712
        q = q.where(Outbox.meter.not_in(waiting))
    if meter_ids is not None:
        q = q.where(Outbox.meter.in_(meter_ids))
    return [_item(o) for o in q.order_by(Outbox.id)]


def outbox_item(item_id: int) -> OutboxItem | None:
    o = Outbox.get_or_none(Outbox.id == item_id)
    return _item(o) if o else None


def outbox_items_with_ids(item_ids: list[int]) -> list[OutboxItem]:
    """The outbox rows ``item_ids`` as they are now (in bulk)."""
    out: list[OutboxItem] = []
    for k in range(0, len(item_ids), 500):
        out.extend(_item(o) for o in Outbox.select().where(Outbox.id.in_(item_ids[k:k + 500])))
    return out


def outbox_for_txn(txn_id: int) -> OutboxItem | None:
    o = Outbox.get_or_none(Outbox.txn == txn_id)
    return _item(o) if o else None


def outbox_items(meter_id: int | None = None) -> list[OutboxItem]:
    q = Outbox.select()
    if meter_id is not None:
        q = q.where(Outbox.meter == meter_id)
    return [_item(o) for o in q.order_by(Outbox.id)]


def set_purchase_count(item_id: int, count: int) -> None:
    Outbox.update(purchase_count=count, updated_at=time.time()).where(
        Outbox.id == item_id).execute()


def set_outbox_state(item_id: int, state: str, error: str = "", attempt: bool = False) -> None:
    update = {Outbox.state: state, Outbox.last_error: error, Outbox.updated_at: time.time()}
    if attempt:
        update[Outbox.attempts] = Outbox.attempts + 1
    Outbox.update(update).where(Outbox.id == item_id).execute()


def pending_count(meter_id: int) -> int:
    return (Outbox.select(fn.COUNT(Outbox.id))
            .where((Outbox.meter == meter_id) & (Outbox.state == "pending")).scalar()) or 0


def last_applied_token(meter_id: int) -> tuple[float, int | None] | None:
    """When the meter's latest applied token was confirmed, and its purchase count."""
    row = (Outbox.select(Outbox.updated_at, Outbox.purchase_count)
           .where((Outbox.meter == meter_id) & (Outbox.action == "recharge")
                  & (Outbox.state == "applied"))
           .order_by(Outbox.updated_at.desc()).first())
    return (row.updated_at, row.purchase_count) if row else None



def unsettled_months(account_ids: list[int] | None = None) -> list[tuple[int, str, int]]:
    """(account, exact cost so far as Decimal text, booked cents) of the billing months not
    settled (``core/balances.py`` makes the charge not booked yet of them)."""
    q = BillingMonth.select(BillingMonth.account, BillingMonth.exact_cost,
                            BillingMonth.booked_cents).where(
        BillingMonth.settled == False)  # noqa: E712
    if account_ids is not None:
        q = q.where(BillingMonth.account.in_(account_ids))
    return [(int(a), e, int(b)) for a, e, b in q.tuples()]
