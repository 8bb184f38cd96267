"""Online payment orders (``PaymentOrder``): written by ``core/online_payments`` only."""

from __future__ import annotations

from dataclasses import dataclass

from app.storage.models import PaymentOrder


@dataclass(frozen=True)
class OrderRecord:
    id: int
    number: str
    account_id: int
    amount_cents: int
    channel: str
    state: str
    created_at: float
    paid_at: float | None
    provider_txn: str | None
    txn_id: int | None


def _record(o: PaymentOrder) -> OrderRecord:
    return OrderRecord(o.id, o.number, o.account_id, int(o.amount_cents), o.channel, o.state,
                       o.created_at, o.paid_at, o.provider_txn, o.txn_id)


def insert_order(number: str, account_id: int, amount_cents: int, channel: str,
                 t: float) -> int:
    return PaymentOrder.insert(number=number, account=account_id, amount_cents=amount_cents,
                               channel=channel, created_at=t).execute()


def order_by_number(number: str) -> OrderRecord | None:
    row = PaymentOrder.get_or_none(PaymentOrder.number == number)
    return _record(row) if row is not None else None


def mark_paid(order_id: int, provider_txn: str, txn_id: int, t: float) -> None:
    PaymentOrder.update(state="paid", provider_txn=provider_txn, txn=txn_id, paid_at=t) \
        .where(PaymentOrder.id == order_id).execute()


def mark_refused(order_id: int) -> None:
    PaymentOrder.update(state="refused").where(
        (PaymentOrder.id == order_id) & (PaymentOrder.state == "created")).execute()


def orders_of_account(account_id: int, limit: int = 50) -> list[OrderRecord]:
    q = (PaymentOrder.select().where(PaymentOrder.account == account_id)
         .order_by(PaymentOrder.id.desc()).limit(limit))
    return [_record(o) for o in q]
