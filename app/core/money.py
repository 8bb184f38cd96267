"""Money: integer cents (fen) everywhere, one formatter and one parser.

A float never holds money. Tariff maths runs in Decimal and is quantised to whole cents at the
ledger boundary with ``to_cents`` (ROUND_HALF_UP, the rule finance expects on receipts).
"""

from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
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


#: What an amount may look like once NFKC-normalised (after its sign and yuan sign): plain
#: digits with at most two decimals, thousands grouped by commas only as 1,234.50 (the first
#: group 1 to 3 digits, then groups of exactly three).
_AMOUNT = re.compile(r"(?P<whole>[0-9]+|[1-9][0-9]{0,2}(?:,[0-9]{3})+|)(?:\.(?P<frac>[0-9]+))?")
#: More yuan than any station books (a typing slip, not a payment).
MAX_WHOLE_DIGITS = 12


def parse_amount(text: str) -> Cents:
    """Parse an amount typed by a person or read from a statement into cents: "12", "12.3",
    "12.34", "0.5", ".5", "¥12.34", "￥1,234.50", full-width digits.

    Only plain decimal notation: no exponent (``1e3``), no grouping but thousands (``3,00``
    and ``1,2345`` are refused: they could mean 3.00 or 300), no underscores, no NaN or
    infinity, no plus sign, at most two decimals. A minus sign is read ("-5", "-¥5", as
    ``format_cents`` writes them): the callers refuse amounts that are not positive, with
    their own message."""
    s = unicodedata.normalize("NFKC", str(text)).strip()  # ￥ -> ¥, full-width digits
    negative = s.startswith("-")
    if negative:
        s = s[1:]
    if s.startswith("¥"):
        s = s[1:].lstrip()
        if not negative and s.startswith("-"):
            negative, s = True, s[1:]
    if not s and not negative:
        raise UserFacingError(_("enter an amount"))
    m = _AMOUNT.fullmatch(s)
    if m is None or not (m["whole"] or m["frac"]):
        if "," in s and re.fullmatch(r"[0-9][0-9,]*(?:\.[0-9]*)?", s):
            raise UserFacingError(_("{text!r} is not an amount: a comma only groups thousands, "
                                    "as in 1,234.50").format(text=text))
        raise UserFacingError(_("{text!r} is not an amount").format(text=text))
    whole = m["whole"].replace(",", "") or "0"
    frac = m["frac"] or ""
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS:
        raise UserFacingError(_("{text!r} is not an amount").format(text=text))
    if len(frac) > 2:
        raise UserFacingError(_("an amount has at most two decimals (fen)"))
    cents = int(whole) * 100 + int(frac.ljust(2, "0"))
    return Cents(-cents if negative else cents)


def to_cents(amount: Decimal) -> Cents:
    """Quantise an exact Decimal yuan amount to cents, half up."""
    return Cents(int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)))
