"""Importing payment statements (campus card, WeChat Pay, Alipay, UnionPay) from Excel or CSV.

``statements.read_statement`` reads a file as the channel exported it (preamble, summary,
backticks, GB18030 or UTF-8 with a BOM; see ``app/core/statements.py`` for the layouts and
which column is the id, the amount and the status); ``preview`` checks every row against the
database (unknown room, bad amount, duplicate transaction id in the file or already booked)
without changing anything; ``apply`` books the valid rows in one transaction or none of them.
Rows that are not payments (refunds, closed orders) are ``skipped`` with the reason.

A payment is booked with its transaction id as the ledger reference, with its channel:
``wechat:4200...`` (WeChat's 微信订单号), ``alipay:2026...`` (Alipay's 支付宝交易号); the
merchant order number goes into the booking's memo. The reference is unique: importing the
same file twice applies nothing new.

A row that names neither a room nor a student number is looked up by its memo (商品名称,
附加数据, 备注): ``statements.MEMO_PATTERN`` by default ("电费充值-1-101", "学号20240001"),
or the ``memo_pattern`` given; the first place that names exactly one open account wins.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from app.core.audit import act
from app.core.changes import Changes
from app.core.money import parse_amount
from app.core.operators import Operator, Permission
from app.core.progress import Progress
from app.core.recharge import MAX_RECHARGE_CENTS, book_recharge, validate_amount
from app.core.statements import (
    MAX_ROWS,
    MEMO_PATTERN,
    PaymentRow,
    memo_candidates,
    read_statement,
)
from app.errors import UserFacingError
from app.i18n import _
from app.storage import accounts as store
from app.storage.ledger import METHOD_BOOKS
from app.storage.models import LedgerTxn

__all__ = ["MAX_ROWS", "METHOD_WORDS", "ImportPreview", "ImportResult", "PaymentRow", "apply",
           "booking_reference", "preview", "read_statement"]

#: What a method column may say, per payment method (compared without case or width).
METHOD_WORDS = {"campus_card": ("campus_card", "campus card", "校园卡", "一卡通", "校园一卡通"),
                "wechat": ("wechat", "wechat pay", "微信", "微信支付"),
                "alipay": ("alipay", "支付宝", "支付宝支付"),
                "unionpay": ("unionpay", "union pay", "银联", "云闪付", "银联云闪付", "银联支付"),
                "cash": ("cash", "现金"),
                "bank": ("bank", "银行", "bank transfer", "银行转账")}


@dataclass
class ImportPreview:
    path: str
    rows: list[PaymentRow] = field(default_factory=list)
    #: the channel the file belongs to, when it says ("" otherwise)
    channel: str = ""
    header_line: int = 1

    @property
    def valid(self) -> list[PaymentRow]:
        return [r for r in self.rows if r.status == "ok"]

    @property
    def errors(self) -> list[PaymentRow]:
        return [r for r in self.rows if r.status == "error"]

    @property
    def duplicates(self) -> list[PaymentRow]:
        return [r for r in self.rows if r.status == "duplicate"]

    @property
    def skipped(self) -> list[PaymentRow]:
        """Rows that are not payments (refunds, closed orders): never booked."""
        return [r for r in self.rows if r.status == "skipped"]

    @property
    def total_cents(self) -> int:
        return sum(r.amount_cents or 0 for r in self.valid)


def _norm(text: object) -> str:
    return unicodedata.normalize("NFKC", str(text or "")).strip().lower()


def _method(text: str, default: str) -> str | None:
    t = _norm(text)
    if not t:
        return default
    if t in METHOD_BOOKS:
        return t
    for method, words in METHOD_WORDS.items():
        if t in words:
            return method
    return None


def booking_reference(row: PaymentRow) -> str:
    """The ledger reference of a payment: its channel and its id there (a WeChat and an Alipay
    payment may carry the same id)."""
    return f"{row.method}:{row.reference}"


def _accounts(kind: str, key: str) -> list:
    """The open accounts a room code (exactly) or a student number names."""
    found = store.find_accounts(key)
    return [a for a in found if a.room == key] if kind == "room" else found


def _find_account(r: PaymentRow, pattern: str | re.Pattern[str]) -> str:
    """Set the row's account from its room, its student number or else its memo; returns the
    problem ("" when found)."""
    if r.room or r.person_no:
        kind, key = ("room", r.room) if r.room else ("person_no", r.person_no)
        matches = _accounts(kind, key)
    else:
        candidates = memo_candidates(r.memo, pattern)
        if not candidates and not r.memo:
            return _("no room or student number")
        if not candidates:
            return _("no room or student number: the row names none, nor does its memo "
                     "{memo!r}").format(memo=r.memo)
        kind, key = candidates[0]
        matches = _accounts(kind, key)
        for c_kind, c_key in candidates:  # the first place that names one account
            found = _accounts(c_kind, c_key)
            if len(found) == 1:
                kind, key, matches = c_kind, c_key, found
                break
        if kind == "room":
            r.room = key
        else:
            r.person_no = key
    if not matches:
        return _("unknown room {room!r}").format(room=key)
    if len(matches) > 1:
        return _("{key!r} matches several accounts").format(key=key)
    r.account_id, r.account_room = matches[0].id, matches[0].room
    return ""


def preview(path: Path, default_method: str = "campus_card",
            maximum: int = MAX_RECHARGE_CENTS, *,
            memo_pattern: str | re.Pattern[str] | None = None) -> ImportPreview:
    """Check every row; nothing is changed. ``default_method``: the method of rows whose file
    names none (a WeChat or Alipay statement names its own); ``memo_pattern``: how a memo names
    the room (``statements.MEMO_PATTERN`` when not given)."""
    pattern = re.compile(memo_pattern or MEMO_PATTERN) \
        if not isinstance(memo_pattern, re.Pattern) else memo_pattern
    statement = read_statement(path)
    result = ImportPreview(str(path), statement.rows, statement.channel, statement.header_line)
    payments = [r for r in result.rows if r.status == "ok"]  # not refunds, not lost ids
    seen: dict[str, int] = {}
    booked = set()
    for r in result.rows:
        if statement.channel_from_id:  # 微信订单号, 支付宝交易号: the channel's own statement
            r.method = statement.channel
        elif statement.channel:  # a preamble names it: a row's own method column first
            r.method = _method(r.method, statement.channel) or statement.channel
        else:
            r.method = _method(r.method, default_method) or r.method
    # every channel's reference for each id: the same id booked under another channel is
    # flagged (a file imported with the wrong default channel must not book twice)
    refs = [f"{m}:{r.reference}" for r in payments if r.reference for m in METHOD_BOOKS]
    for i in range(0, len(refs), 500):
        chunk = refs[i:i + 500]
        booked.update(ref for (ref,) in LedgerTxn.select(LedgerTxn.reference)
                      .where(LedgerTxn.reference.in_(chunk)).tuples())
    for r in payments:
        def bad(msg: str, r: PaymentRow = r) -> None:
            r.status, r.problem = "error", msg
        if not r.reference:
            bad(_("no transaction id"))
            continue
        if r.reference in seen:
            bad(_("transaction id repeats row {line}").format(line=seen[r.reference]))
            continue
        seen[r.reference] = r.line
        if booking_reference(r) in booked:
            r.status, r.problem = "duplicate", _("already imported")
            continue
        other = [m for m in METHOD_BOOKS if f"{m}:{r.reference}" in booked]
        if other:
            bad(_("this transaction id is already booked as a {method} payment: check the "
                  "payment method").format(method=other[0]))
            continue
        try:
            r.amount_cents = validate_amount(parse_amount(r.amount_text), maximum)
        except UserFacingError as exc:
            bad(str(exc))
            continue
        if r.method not in METHOD_BOOKS:
            bad(_("unknown payment method {m!r}").format(m=r.method))
            continue
        problem = _find_account(r, pattern)
        if problem:
            bad(problem)
    return result


@dataclass(frozen=True)
class ImportResult:
    booked: int
    total_cents: int
    changes: Changes


def _memo(file: str, r: PaymentRow) -> str:
    text = _("imported from {file}, row {line}").format(file=file, line=r.line)
    if r.merchant_order:
        text += ", " + _("merchant order {number}").format(number=r.merchant_order)
    if r.payer:
        text += f", {r.payer}"
    return text


def apply(operator: Operator, result: ImportPreview,
          progress: Progress | None = None) -> ImportResult:
    """Book every valid row in one transaction (all or none), as one audited act. Cancelling
    through ``progress`` rolls the whole import back."""
    rows = result.valid
    t = time.time()
    name = Path(result.path).name
    nodes: set[int] = set()
    with act(operator, Permission.IMPORT_PAYMENTS, "import_payments", target=name) as a:
        for n, r in enumerate(rows, start=1):
            assert r.account_id is not None and r.amount_cents is not None
            booked = book_recharge(operator.name, r.account_id, r.amount_cents, r.method,
                                   reference=booking_reference(r),
                                   memo=_memo(name, r), t=t)
            nodes.add(booked.node_id)
            if progress is not None:
                progress.step(n, len(rows))
        total = sum(r.amount_cents or 0 for r in rows)
        a.after = {"rows": len(rows), "total_cents": total,
                   "wrong_rows": len(result.errors), "already_imported": len(result.duplicates),
                   "not_payments": len(result.skipped)}
    return ImportResult(len(rows), total, Changes(nodes=frozenset(nodes)))
