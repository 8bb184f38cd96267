"""Money: integer cents (fen) everywhere, one formatter and one parser.

A float never holds money. Tariff maths runs in Decimal and is quantised to whole cents at the
ledger boundary with ``to_cents`` (ROUND_HALF_UP, the rule finance expects on receipts).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import NewType

from app.errors import UserFacingError
from app.i18n import _

Cents = NewType("Cents", int)


def format_cents(cents: int | None, *, symbol: bool = False, none: str = "-") -> str:
    """12345 -> "123.45"; -5 -> "-0.05"; with symbol, "¥123.45" and "-¥0.05"."""
    if cents is None:
        return none
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"money must be integer cents, not {type(cents).__name__}")
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    if symbol:
        return f"{sign}¥{whole:,}.{frac:02d}"
    return f"{sign}{whole}.{frac:02d}"


def parse_amount(text: str) -> Cents:
    """Parse an amount typed by a person ("12", "12.3", "12.34", "¥12.34") into cents.

    Refuses more than two decimals, signs it cannot read, and anything that is not a number.
    """
    s = str(text).strip().replace("¥", "").replace("￥", "").replace(",", "")
    if not s:
        raise UserFacingError(_("enter an amount"))
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise UserFacingError(_("{text!r} is not an amount").format(text=text)) from None
    if not value.is_finite() or value.adjusted() >= 12:
        raise UserFacingError(_("{text!r} is not an amount").format(text=text))
    if value != value.quantize(Decimal("0.01")):
        raise UserFacingError(_("an amount has at most two decimals (fen)"))
    return Cents(int(value * 100))


def to_cents(amount: Decimal) -> Cents:
    """Quantise an exact Decimal yuan amount to cents, half up."""
    return Cents(int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)))
