from decimal import Decimal

import pytest

from app.core.money import format_cents, parse_amount, to_cents
from app.errors import UserFacingError


def test_format():
    assert format_cents(12345) == "123.45"
    assert format_cents(-5) == "-0.05"
    assert format_cents(123456789, symbol=True) == "¥1,234,567.89"
    assert format_cents(None) == "-"
    assert format_cents(-366, symbol=True) == "-¥3.66"
    with pytest.raises(TypeError):
        format_cents(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("text,cents", [("12", 1200), ("12.3", 1230), ("12.34", 1234),
                                        ("¥1,000.00", 100000), (" 0.01 ", 1)])
def test_parse(text, cents):
    assert parse_amount(text) == cents


@pytest.mark.parametrize("text", ["", "abc", "1.234", "nan", "inf", "1e999999999999"])
def test_parse_refuses(text):
    with pytest.raises(UserFacingError):
        parse_amount(text)


def test_to_cents_half_up():
    assert to_cents(Decimal("0.005")) == 1
    assert to_cents(Decimal("0.0049")) == 0
    assert to_cents(Decimal("5.8805")) == 588
