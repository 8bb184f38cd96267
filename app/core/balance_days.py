"""How many days a room's balance lasts at its recent use (what a low-balance text tells).

The room's recent use is the average daily energy of its meters over the last 7 whole days
(today, still running, is left out), counting only the days that have a daily total; its cost
is that energy at the price in force today for the account's tariff group (a tiered tariff's
first price; a free allowance is not counted). The answer is whole days, rounded down: 0 for a
balance of zero or less; None (shown ``-``) when the room has no meters, no recorded use or no
tariff. An estimate for a text, never a booking: Decimal, no float.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from app.core.tariffs import TariffVersion, tiers_from_json, version_in_force
from app.storage import accounts as account_store
from app.storage import readings

RECENT_DAYS = 7


def recent_daily_wh(meter_ids: list[int], today: date | None = None,
                    days: int = RECENT_DAYS) -> int | None:
    """The average Wh a day of ``meter_ids`` over the last ``days`` whole days that have a
    daily total; None when none has."""
    today = today or date.today()
    wanted = {(today - timedelta(days=n)).isoformat() for n in range(1, days + 1)}
    per_day: dict[str, int] = {}
    for meter_id in meter_ids:
        for day, wh in readings.daily_energy(meter_id)[-days * 2:]:
            if day in wanted:
                per_day[day] = per_day.get(day, 0) + int(wh)
    if not per_day:
        return None
    return sum(per_day.values()) // len(per_day)


def _price_today(group: str, today: date) -> Decimal | None:
    versions = [TariffVersion(r["group"], r["starts_on"], Decimal(r["price"]),
                              tiers_from_json(r["tiers"]), Decimal(r["allowance_kwh"]))
                for r in account_store.tariff_rows(group)]
    version = version_in_force(versions, today.isoformat())
    if version is None:
        return None
    return version.tiers[0][1] if version.tiers else version.price


def days_left(account_id: int, balance_cents: int, today: date | None = None) -> int | None:
    """Whole days ``balance_cents`` lasts for the account's room; None when not known."""
    acct = account_store.get_account(account_id)
    if acct is None:
        return None
    today = today or date.today()
    meters = [row[0] for row in account_store.meters_of_node(acct.node_id)]
    daily_wh = recent_daily_wh(meters, today) if meters else None
    price = _price_today(acct.tariff_group, today)
    if not daily_wh or price is None or price <= 0:
        return None
    if balance_cents <= 0:
        return 0
    cents_a_day = Decimal(daily_wh) * price / 10  # Wh x yuan/kWh = 1/1000 yuan = 1/10 cent
    return int(Decimal(balance_cents) // cents_a_day)


def days_text(days: int | None) -> str:
    return "-" if days is None else str(days)
