"""The one key of a payment: what the channels and spreadsheets put around an id is taken off,
and a number Excel rounded is refused rather than booked."""

from __future__ import annotations

import pytest

from app.core.payment_key import (
    InexactId,
    payment_key,
    split_key,
    transaction_id,
)
from app.errors import UserFacingError


@pytest.mark.parametrize("raw", ["4200000123", " 4200000123 ", "`4200000123", "4200000123\t",
                                 '="4200000123"', "'4200000123'", "４２０００００１２３",
                                 "4200 0001 23", "\ufeff4200000123", "4200000123.0",
                                 "“4200000123”"])
def test_the_decorations_of_an_id_are_taken_off(raw):
    assert transaction_id(raw) == "4200000123"
    assert payment_key("wechat", raw) == "wechat:4200000123"


def test_a_key_given_again_is_the_same_key():
    assert payment_key("wechat", "wechat:4200000123") == "wechat:4200000123"
    assert payment_key("wechat", "WeChat:4200000123") == "wechat:4200000123"
    assert split_key("wechat:4200000123") == ("wechat", "4200000123")
    assert split_key("4200000123") is None
    assert split_key("TRX:2026:1") is None  # a colon in an id is no channel
    assert payment_key("bank", "TRX:2026:1") == "bank:TRX:2026:1"


def test_a_key_naming_another_channel_is_refused():
    with pytest.raises(UserFacingError, match=r"names another payment method \(Alipay\) "
                                              r"than this payment's \(WeChat\)"):
        payment_key("wechat", "alipay:2026110122001")


@pytest.mark.parametrize("raw", ["4.2E+18", "4.2e+18", "4.20000000000000E+18", "4E18",
                                 "4.2E+18\t", "`4.2E+18"])
def test_an_id_excel_rounded_is_refused(raw):
    with pytest.raises(InexactId, match="lost its last digits"):
        transaction_id(raw)


@pytest.mark.parametrize("raw", ["2E5", "1234E5678", "4.2E-18", "A4.2E+18", "E18"])
def test_ids_that_only_look_like_numbers_are_kept(raw):
    assert transaction_id(raw) == raw


def test_no_id_no_key():
    assert transaction_id("` \t") == ""
    with pytest.raises(UserFacingError, match="no transaction id"):
        payment_key("wechat", "`")
    with pytest.raises(UserFacingError, match="unknown payment method"):
        payment_key("paypal", "1")


def test_case_is_kept():
    # ids are compared as the channel gives them: only width, spaces and decoration go
    assert transaction_id("df2026") == "df2026" != transaction_id("DF2026")
