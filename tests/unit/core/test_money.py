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
                                        ("¥1,000.00", 100000), (" 0.01 ", 1), ("0.5", 50),
                                        (".5", 50), ("￥1,234.50", 123450), ("12,345", 1234500),
                                        ("1,234,567.89", 123456789), ("¥ 7", 700),
                                        ("１２．３４", 1234),  # full-width digits (NFKC)
                                        ("-5", -500), ("-¥3.66", -366)])  # callers refuse those
def test_parse(text, cents):
    assert parse_amount(text) == cents


@pytest.mark.parametrize("text", ["", "abc", "1.234", "nan", "inf", "1e999999999999",
                                  "Infinity", "NaN", "12.", ".", "-", "¥", "+5", "--5",
                                  "1 000", "0x10", "12.340", "1234567890123",
                                  "١٢"])  # digits of another script: not NFKC's ASCII
def test_parse_refuses(text):
    with pytest.raises(UserFacingError):
        parse_amount(text)


@pytest.mark.parametrize("text", ["3,00", "1,2345", "0,123", "1,23.4", "12,34,567"])
def test_a_comma_only_groups_thousands(text):
    # "3,00" booked 300.00 (the comma dropped): a European decimal comma must not book 100x
    with pytest.raises(UserFacingError, match="only groups thousands"):
        parse_amount(text)


@pytest.mark.parametrize("text", ["1e3", "1E3", "2.5e2", "1_000", "1_000.00"])
def test_no_exponent_no_underscores(text):
    # Decimal("1e3") is 1000 and Decimal("1_000") too: typed by mistake, they booked 1,000.00
    with pytest.raises(UserFacingError, match="is not an amount"):
        parse_amount(text)


def test_to_cents_half_up():
    assert to_cents(Decimal("0.005")) == 1
    assert to_cents(Decimal("0.0049")) == 0
    assert to_cents(Decimal("5.8805")) == 588
