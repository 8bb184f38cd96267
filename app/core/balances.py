"""What a resident has now: the ledger's balance less the use billed but not booked yet.

Billing prices every closed 15-minute interval as it comes, but books a day's consumption once
the day is over (``core/billing.py``): one booking a room a day, not one every quarter hour, so
the ledger of 10,000 rooms grows by 10,000 consumption bookings a day, not 960,000. Until its
day is over, the charge so far is owed but not in the ledger. The balance the desk, the texts,
the portal and the arrears trips act on counts it; the ledger and the reports that reconcile to
it count what is booked.
"""

from __future__ import annotations

from decimal import Decimal

from app.core.money import to_cents
from app.storage import accounts as store
from app.storage import ledger


def unbooked(account_ids: list[int] | None = None) -> dict[int, int]:
    """Per account (those with any): the charge billed but not booked yet, in cents
    (``account_ids``: those accounts' only, asked 500 at a time)."""
    if account_ids is None:
        rows = store.unsettled_months()
    else:
        rows = [r for k in range(0, len(account_ids), 500)
                for r in store.unsettled_months(account_ids[k:k + 500])]
    out: dict[int, int] = {}
    for acct, exact, booked in rows:
        cents = to_cents(Decimal(exact)) - booked
        if cents:
            out[acct] = out.get(acct, 0) + cents
    return out


def balance(account_id: int) -> int:
    """The account's balance now, in cents: booked, less today's use so far."""
    return ledger.balance(account_id) - unbooked([account_id]).get(account_id, 0)


def balances(account_ids: list[int] | None = None) -> dict[int, int]:
    """Every account's balance now (``account_ids``: those accounts' only, in bulk)."""
    out = ledger.balances(account_ids)
    for acct, cents in unbooked(account_ids).items():
        out[acct] = out.get(acct, 0) - cents
    return out

