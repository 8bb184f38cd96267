"""One payment, one booking, whatever the door: the key of a payment and the rule that books it
once.

A payment is known by its channel and the channel's transaction id (WeChat's 微信订单号,
Alipay's 支付宝交易号, the campus card centre's 流水号...). Every door that books money (the
desk, an imported statement, the portal's payment notifications to come) goes through
``recharge.book_recharge``, which turns whatever reference it is given into the one key
``payment_key(method, id)`` = ``"wechat:4200000123"`` and refuses a payment already booked:

- under the same key (imported twice, typed at the desk after the import, ...);
- under the bare id, as the desk stored references before there was a key (the ledger is
  append-only: those rows stay as they are, so the rule looks for both forms);
- under another channel's key for the same id (a file imported with the wrong default
  channel, the wrong method chosen at the desk): refused naming that channel, since the same
  money must not be booked twice under two clearing accounts.

The id is normalised the way statements decorate it: NFKC (full-width digits), surrounding
and inner whitespace and tabs (Alipay's trailing tab), WeChat's leading backtick, quotes,
Excel's ``="..."`` guard, and the ``.0`` of an integer Excel kept as a floating-point number.
An id in scientific notation (``4.2E+18``: Excel showed or saved a long number rounded) has lost
its last digits: it is refused, never booked, since two payments would share it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from app.errors import UserFacingError
from app.i18n import _
from app.storage import ledger
from app.storage.ledger import METHOD_BOOKS, DuplicateReference

#: Characters the channels and spreadsheets put around an id (after NFKC), and spaces.
_DECORATION = re.compile(r"[\s`'\"‘’“”\ufeff]+")
#: A long number Excel showed (and saved, in a CSV) in scientific notation: 4.2E+18,
#: 4.20000000000000E+18; its last digits are lost. (An id such as 2E5 is taken as it is.)
_SCIENTIFIC = re.compile(r"[0-9](?:\.[0-9]*)?[eE]\+?(?P<exp>[0-9]+)")
#: From 10 digits on, a number shown in scientific notation has lost digits.
_SCIENTIFIC_FROM = 9
#: An integer Excel kept as a floating-point number: 4200000123.0
_FLOAT_INTEGER = re.compile(r"([0-9]+)\.0+")


class InexactId(UserFacingError):
    """The id is a number that lost its last digits (Excel's 4.2E+18)."""


@dataclass(frozen=True)
class Booked:
    """A booking that holds a payment's id, in whichever form."""

    txn_id: int
    reference: str
    method: str  # the channel it was booked under


def transaction_id(text: object) -> str:
    """The channel's transaction id as compared and stored: without decoration (see the module
    docstring); "" when nothing is left. Raises ``InexactId`` for a rounded number."""
    s = str(text if text is not None else "")
    if not (s.isascii() and s.isalnum()):  # most ids have nothing to take off
        s = unicodedata.normalize("NFKC", s).strip()
        if len(s) >= 3 and s.startswith('="') and s.endswith('"'):
            s = s[2:-1]
        s = _DECORATION.sub("", s)
        m = _FLOAT_INTEGER.fullmatch(s)
        if m:
            s = m.group(1)
    m = _SCIENTIFIC.fullmatch(s)
    if m and int(m["exp"]) >= _SCIENTIFIC_FROM:
        raise InexactId(_("{id} is a number that lost its last digits (Excel shows and saves "
                          "long numbers rounded): give the full transaction id, or export that "
                          "column as text").format(id=s))
    return s


def payment_key(method: str, transaction: object) -> str:
    """``method:id``, the one reference a payment is booked under. A reference that already
    carries its channel (``wechat:42...``) keeps it; one naming another channel is refused."""
    if method not in METHOD_BOOKS:
        raise UserFacingError(_("unknown payment method {method!r} (use: {known})").format(
            method=method, known=", ".join(METHOD_BOOKS)))
    tid = transaction_id(transaction)
    head, sep, rest = tid.partition(":")
    named = head.lower()
    if sep and named in METHOD_BOOKS:
        if named != method:
            raise UserFacingError(_("the reference {ref} names another payment method "
                                    "({named}) than this payment's ({method})").format(
                ref=tid, named=method_text(named), method=method_text(method)))
        tid = rest
    if not tid:
        raise UserFacingError(_("no transaction id"))
    return f"{method}:{tid}"


def split_key(reference: str) -> tuple[str, str] | None:
    """(method, id) of a key; None for a reference without a channel (the desk's old form)."""
    head, sep, rest = reference.partition(":")
    return (head, rest) if sep and head in METHOD_BOOKS else None


def channel_of(reference: str, method: str) -> str:
    """The channel a booking holds the payment under: its key's, or (the desk's old bare id)
    the booking's method."""
    split = split_key(reference)
    return split[0] if split else method


def bookings_of(ids: Iterable[str]) -> dict[str, list[Booked]]:
    """The bookings holding each id (normalised, as ``transaction_id`` gives it) in any form,
    found in bulk; ids never booked are left out."""
    wanted = {tid for tid in ids if tid}
    if not wanted:
        return {}
    found: dict[str, list[Booked]] = {}
    for txn_id, reference, method in ledger.bookings_holding(wanted, METHOD_BOOKS):
        split = split_key(reference)
        tid = split[1] if split else reference
        if tid in wanted:
            found.setdefault(tid, []).append(Booked(txn_id, reference, channel_of(reference,
                                                                                  method)))
    return found


def refuse_if_booked(key: str) -> None:
    """The one uniqueness rule: raise ``DuplicateReference`` when the payment ``key`` names is
    already booked, under its key, its bare id or another channel's key."""
    method, tid = key.split(":", 1)
    for booked in bookings_of([tid]).get(tid, []):
        if booked.method == method:
            raise DuplicateReference(_("payment {key} is already booked (booking {txn})")
                                     .format(key=key, txn=booked.txn_id))
        raise DuplicateReference(_("transaction id {id} is already booked, paid by {method} "
                                   "(booking {txn}): check the payment method").format(
            id=tid, method=method_text(booked.method), txn=booked.txn_id))


def method_text(method: str) -> str:
    """A payment method as the operator reads it ("WeChat", "微信")."""
    from app.core.recharge import METHODS  # recharge books through this module

    return _(METHODS[method]) if method in METHODS else method
