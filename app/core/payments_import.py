"""Importing payment statements (campus card, WeChat, Alipay) from Excel or CSV.

``read_statement`` parses a file into rows; ``preview`` checks every row against the database
(unknown room, bad amount, duplicate transaction id in the file or already booked) without
changing anything; ``apply`` books the valid rows in one transaction or none of them. A payment
is booked with its transaction id as the ledger reference (with its channel: ``wechat:4200...``),
which is unique: importing the same file twice applies nothing new.

Columns are found by header, in English or Chinese: transaction id (交易号/流水号/订单号),
room (房间/房间号) or student number (学号), amount (金额), optional method (支付方式/渠道),
time (时间) and payer (姓名/付款人).
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from app.core.audit import act
from app.core.changes import Changes
from app.core.money import parse_amount
from app.core.operators import Operator, Permission
from app.core.progress import Progress
from app.core.recharge import MAX_RECHARGE_CENTS, book_recharge, validate_amount
from app.errors import UserFacingError
from app.i18n import _
from app.storage import accounts as store
from app.storage.ledger import METHOD_BOOKS
from app.storage.models import LedgerTxn

HEADERS = {
    "reference": ("transaction id", "transaction_id", "txn id", "reference", "交易号", "流水号",
                  "订单号", "交易流水号", "商户订单号"),
    "room": ("room", "房间", "房间号", "宿舍", "户号"),
    "person_no": ("student no", "student_no", "person_no", "学号", "工号"),
    "amount": ("amount", "金额", "交易金额", "充值金额"),
    "method": ("method", "channel", "支付方式", "渠道", "来源"),
    "time": ("time", "date", "时间", "交易时间", "日期"),
    "payer": ("payer", "name", "姓名", "付款人"),
}
METHOD_WORDS = {"campus_card": ("campus_card", "campus card", "校园卡", "一卡通"),
                "wechat": ("wechat", "微信", "微信支付"),
                "alipay": ("alipay", "支付宝"), "cash": ("cash", "现金"),
                "bank": ("bank", "银行", "bank transfer", "银行转账")}
MAX_ROWS = 100_000


@dataclass
class PaymentRow:
    line: int  # the row number in the file (header is 1)
    reference: str = ""
    room: str = ""
    person_no: str = ""
    amount_text: str = ""
    method: str = ""
    payer: str = ""
    when: str = ""
    amount_cents: int | None = None
    account_id: int | None = None
    account_room: str = ""
    status: str = "ok"  # ok, error, duplicate (already imported)
    problem: str = ""


@dataclass
class ImportPreview:
    path: str
    rows: list[PaymentRow] = field(default_factory=list)

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
    def total_cents(self) -> int:
        return sum(r.amount_cents or 0 for r in self.valid)


def _norm(text: object) -> str:
    return str(text or "").strip().lower()


def _read_rows(path: Path) -> list[list[str]]:
    if not path.exists():
        raise UserFacingError(_("no such file: {path}").format(path=path))
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise UserFacingError(_("{path} is not an Excel workbook ({why})").format(
                path=path.name, why=type(exc).__name__)) from None
        except Exception as exc:  # openpyxl's InvalidFileException and friends
            raise UserFacingError(_("{path} is not an Excel workbook ({why})").format(
                path=path.name, why=type(exc).__name__)) from None
        try:
            ws = wb.worksheets[0]
            rows = [["" if c is None else str(c) for c in row]
                    for row in ws.iter_rows(values_only=True)]
        finally:
            wb.close()
        return rows
    if suffix in (".csv", ".txt"):
        raw = path.read_bytes()
        for enc in ("utf-8-sig", "gb18030"):
            try:
                text = raw.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise UserFacingError(_("{path}: cannot tell the text encoding").format(
                path=path.name))
        if "\0" in text:
            raise UserFacingError(_("{path} is not a CSV text file").format(path=path.name))
        return [row for row in csv.reader(io.StringIO(text))]
    raise UserFacingError(_("{path}: import takes .xlsx or .csv files").format(path=path.name))


def read_statement(path: Path) -> list[PaymentRow]:
    """Parse a statement into rows (no checks against the database yet)."""
    rows = _read_rows(path)
    rows = [r for r in rows if any(str(c).strip() for c in r)]
    if not rows:
        raise UserFacingError(_("{path} is empty").format(path=path.name))
    if len(rows) > MAX_ROWS:
        raise UserFacingError(_("{path} has more than {n} rows").format(path=path.name,
                                                                        n=MAX_ROWS))
    header = [_norm(c) for c in rows[0]]
    columns: dict[str, int] = {}
    for key, names in HEADERS.items():
        for i, h in enumerate(header):
            if h in names:
                columns[key] = i
                break
    missing = [k for k in ("reference", "amount") if k not in columns]
    if missing or ("room" not in columns and "person_no" not in columns):
        raise UserFacingError(_("{path}: the first row must name the columns: transaction id, "
                                "room or student number, amount").format(path=path.name))
    out = []
    for n, row in enumerate(rows[1:], start=2):
        def cell(key: str, row: list[str] = row) -> str:
            i = columns.get(key)
            return str(row[i]).strip() if i is not None and i < len(row) else ""
        out.append(PaymentRow(line=n, reference=cell("reference"), room=cell("room"),
                              person_no=cell("person_no"), amount_text=cell("amount"),
                              method=cell("method"), payer=cell("payer"), when=cell("time")))
    return out


def _method(text: str, default: str) -> str | None:
    t = _norm(text)
    if not t:
        return default
    for method, words in METHOD_WORDS.items():
        if t in words:
            return method
    return None


def booking_reference(row: PaymentRow) -> str:
    """The ledger reference of a payment: its channel and its id there (a WeChat and an Alipay
    payment may carry the same id)."""
    return f"{row.method}:{row.reference}"


def preview(path: Path, default_method: str = "campus_card",
            maximum: int = MAX_RECHARGE_CENTS) -> ImportPreview:
    """Check every row; nothing is changed."""
    result = ImportPreview(str(path), read_statement(path))
    seen: dict[str, int] = {}
    booked = set()
    for r in result.rows:
        r.method = _method(r.method, default_method) or r.method
    # every channel's reference for each id: the same id booked under another channel is
    # flagged (a file imported with the wrong default channel must not book twice)
    refs = [f"{m}:{r.reference}" for r in result.rows if r.reference for m in METHOD_BOOKS]
    for i in range(0, len(refs), 500):
        chunk = refs[i:i + 500]
        booked.update(ref for (ref,) in LedgerTxn.select(LedgerTxn.reference)
                      .where(LedgerTxn.reference.in_(chunk)).tuples())
    for r in result.rows:
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
        key = r.room or r.person_no
        matches = [a for a in store.find_accounts(key)
                   if a.room == key or not r.room] if key else []
        if r.room:
            matches = [a for a in matches if a.room == r.room]
        if not matches:
            bad(_("unknown room {room!r}").format(room=key))
            continue
        if len(matches) > 1:
            bad(_("{key!r} matches several accounts").format(key=key))
            continue
        r.account_id, r.account_room = matches[0].id, matches[0].room
    return result


@dataclass(frozen=True)
class ImportResult:
    booked: int
    total_cents: int
    changes: Changes


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
                                   memo=_("imported from {file}, row {line}{payer}").format(
                                       file=name, line=r.line,
                                       payer=f", {r.payer}" if r.payer else ""), t=t)
            nodes.add(booked.node_id)
            if progress is not None:
                progress.step(n, len(rows))
        total = sum(r.amount_cents or 0 for r in rows)
        a.after = {"rows": len(rows), "total_cents": total,
                   "wrong_rows": len(result.errors), "already_imported": len(result.duplicates)}
    return ImportResult(len(rows), total, Changes(nodes=frozenset(nodes)))
