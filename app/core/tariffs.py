"""Tariffs: exact prices (Decimal yuan/kWh, finer than a cent), versioned by start date.

A tariff belongs to a group (``dorm``, ``shop``, or any group a building is given). A version is
in force from its ``starts_on`` day until the next version's; a change never reaches back.
Three shapes, combinable: a flat price; tiers by the month's cumulative use; a free monthly
allowance (补贴电量) used before any kWh is charged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.errors import UserFacingError
from app.i18n import _

KWH = Decimal(1000)  # Wh per kWh


@dataclass(frozen=True)
class TariffVersion:
    group: str
    starts_on: str  # YYYY-MM-DD
    price: Decimal  # yuan/kWh; the first tier's price when tiered
    tiers: tuple[tuple[Decimal | None, Decimal], ...] = ()  # (up to kWh of monthly use, price)
    allowance_kwh: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.price < 0 or any(p < 0 for _, p in self.tiers):
            raise UserFacingError(_("a price cannot be negative"))
        if self.allowance_kwh < 0:
            raise UserFacingError(_("an allowance cannot be negative"))
        bounds = [b for b, _ in self.tiers]
        if self.tiers and (bounds[-1] is not None or any(b is None for b in bounds[:-1])
                           or bounds[:-1] != sorted(bounds[:-1])):
            raise UserFacingError(_("tiers need rising limits and an open last tier"))

    def price_at(self, month_kwh: Decimal) -> tuple[Decimal, Decimal | None]:
        """The price for use at cumulative monthly ``month_kwh``, and where that price ends."""
        if not self.tiers:
            return self.price, None
        for bound, price in self.tiers:
            if bound is None or month_kwh < bound:
                return price, bound
        raise AssertionError("open last tier")

    def charge(self, month_wh_before: int, wh: int) -> tuple[Decimal, Decimal]:
        """Exact (cost, allowance value) of ``wh`` used after ``month_wh_before`` this month.

        The allowance covers the month's first ``allowance_kwh``; its value (at the prices those
        kWh would have cost) is returned apart, for finance. Tiers count all the month's use.
        """
        cost = Decimal(0)
        allowance_value = Decimal(0)
        pos = Decimal(month_wh_before) / KWH
        end = pos + Decimal(wh) / KWH
        while pos < end:
            price, bound = self.price_at(pos)
            seg_end = end if bound is None else min(end, bound)
            if pos < self.allowance_kwh:
                seg_end = min(seg_end, self.allowance_kwh)
                allowance_value += (seg_end - pos) * price
            else:
                cost += (seg_end - pos) * price
            pos = seg_end
        return cost, allowance_value


def parse_price(text: str) -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise UserFacingError(_("{text!r} is not a price").format(text=text)) from None
    if not value.is_finite() or value < 0 or value.adjusted() > 3:
        raise UserFacingError(_("{text!r} is not a price").format(text=text))
    return value


def parse_tiers(text: str) -> tuple[tuple[Decimal | None, Decimal], ...]:
    """``50:0.588,200:0.638,*:0.888`` (up to kWh of monthly use : price; ``*`` the rest)."""
    if not text.strip():
        return ()
    tiers = []
    for part in text.split(","):
        bound, sep, price = part.partition(":")
        if not sep:
            raise UserFacingError(_("a tier is LIMIT:PRICE, not {part!r}").format(part=part))
        tiers.append((None if bound.strip() == "*" else parse_price(bound), parse_price(price)))
    return tuple(tiers)


def tiers_to_json(tiers: tuple[tuple[Decimal | None, Decimal], ...]) -> str:
    return json.dumps([[None if b is None else str(b), str(p)] for b, p in tiers])


def tiers_from_json(text: str) -> tuple[tuple[Decimal | None, Decimal], ...]:
    if not text:
        return ()
    return tuple((None if b is None else Decimal(b), Decimal(p)) for b, p in json.loads(text))


def version_in_force(versions: list[TariffVersion], day: str) -> TariffVersion | None:
    """The version of a group in force on ``day`` (versions of one group, any order)."""
    best = None
    for v in versions:
        if v.starts_on <= day and (best is None or v.starts_on > best.starts_on):
            best = v
    return best
