"""Reading payment statements as the channels export them, before any check against the books.

A statement is an Excel workbook (.xlsx, its first sheet) or a CSV text (UTF-8, with or without
a BOM, or GB18030/GBK). Three layouts are read without editing:

- WeChat Pay's trade bill (商户平台 交易账单): a header line of column names (交易时间, ...,
  微信订单号, 商户订单号, ..., 交易状态, ..., 应结订单金额, ..., 商品名称, 商户数据包, ...,
  订单金额, ...), every value prefixed with a backtick, and the summary at the end
  (总交易单数,应结订单总金额,... and a line of totals). WeChat's own bill with a preamble
  (交易单号, 商户单号, 金额(元), 当前状态) reads the same way.
- Alipay's business statement (业务明细): ``#`` preamble lines (#支付宝业务明细查询,
  #账号：[...], #起始日期：..., #-----...业务明细列表----), the header 支付宝交易号,
  商户订单号, 业务类型, 商品名称, ..., 订单金额（元）, 商家实收（元）, ..., 备注, values
  often followed by a tab, then #-----业务明细列表结束---- and # summary lines.
- A campus-card centre's workbook: a title row or two above the header, a totals row (合计)
  at the bottom.

How a file is read:

- The header is the first of the first ``HEADER_SEARCH_LINES`` lines that names a transaction
  id column and an amount column (``COLUMNS``; names compared without case, width, spaces or a
  trailing ``(元)``). Lines above it are the preamble.
- After the header, empty rows, ``#`` lines and totals rows (合计, 总计, 小计, total) are
  skipped; reading stops at a ``#...列表结束`` marker or at WeChat's summary header
  (总交易单数). Backticks, surrounding whitespace and tabs, and Excel's ``="..."`` guard are
  taken off every value.
- The transaction id: WeChat's 微信订单号 (its transaction id), Alipay's 支付宝交易号; the
  merchant order number (商户订单号) is kept for the booking's memo. A column naming the
  channel's id fixes the payment method of every row; a preamble naming one channel
  (微信 / 支付宝 / 云闪付, 银联) is the method of rows whose method column (支付方式, 渠道)
  names none (WeChat's own bill says 零钱 there); otherwise the method column or the caller's
  default decides (``payments_import``).
- The amount: the order amount, what the resident paid for (WeChat 订单金额, else the older
  总金额 or 应结订单金额; Alipay 订单金额（元）). Channel fees, and the discounts the channel
  settles with the merchant, are the finance office's reconciliation, not the resident's.
- A status column (交易状态, 当前状态, 状态, or Alipay's 业务类型) decides what a payment is:
  SUCCESS, 支付成功, 交易成功 (and the like, ``PAID``) are; refunds (退款, REFUND) and orders
  not paid (closed, revoked, failed) are ``skipped`` with the reason, not errors; a status the
  station does not know is an error. An empty status, or no status column, is a payment.
- Room or student number: their own columns (房间号, 学号); when a row has neither, the memo
  columns (商品名称, 附加数据, 商户数据包, 备注) are searched with ``MEMO_PATTERN`` (or the
  pattern the caller gives, with the named groups ``room`` and ``person_no``): "电费充值-1-101"
  names room 1-101, "学号20240001" a student number.
- Excel cells are read as text, numbers as the file stores them (``core/xlsx.py``, which also
  reads 100,000 rows in a few seconds): an integer written out in full keeps every digit (a
  19-digit id stored as ``4200000000000000002``), an integer Excel kept as a floating-point
  value gives its digits (``4200000123.0``: ``4200000123``); a floating-point number of 15
  digits or more has lost digits (Excel keeps 15: ``4.2E+18``), so such an id or student number
  makes its row an error (export that column as text) instead of a rounded id. So does an id
  in scientific notation in a text cell or a CSV (``core/payment_key.py``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from app.core.xlsx import NotAWorkbook, Number, read_first_sheet
from app.errors import UserFacingError
from app.i18n import _

#: The header is looked for within this many lines from the top.
HEADER_SEARCH_LINES = 30
MAX_ROWS = 100_000

#: Column names per field, in order of preference (normalised by ``header_key``).
COLUMNS: dict[str, tuple[str, ...]] = {
    "reference": ("微信订单号", "微信支付订单号", "微信支付单号", "支付宝交易号", "交易单号",
                  "交易号", "transaction id", "transaction_id", "txn id", "reference",
                  "交易流水号", "流水号", "交易平台单号", "平台流水号", "订单号", "商户订单号"),
    "amount": ("订单金额", "金额", "交易金额", "充值金额", "实收金额", "缴费金额", "amount",
               "总金额", "应结订单金额", "商家实收", "实付金额"),
    "room": ("room", "房间", "房间号", "房号", "宿舍", "宿舍号", "户号"),
    "person_no": ("student no", "student_no", "person_no", "学号", "工号", "学工号"),
    "method": ("method", "channel", "支付方式", "支付渠道", "渠道", "充值方式", "缴费方式",
               "来源"),
    "time": ("交易时间", "支付时间", "完成时间", "time", "date", "时间", "日期", "交易日期",
             "创建时间"),
    "payer": ("payer", "name", "姓名", "付款人", "交易对方", "对方账户", "持卡人"),
    "status": ("status", "交易状态", "当前状态", "状态", "订单状态", "支付状态", "业务类型"),
    "merchant_order": ("商户订单号", "商户单号"),
    "direction": ("收/支",),
}
#: Columns whose text may name the room or the student number (all of them are read).
MEMO_COLUMNS = ("商品名称", "商品", "商品说明", "附加数据", "商户数据包", "备注", "摘要",
                "附言", "说明", "memo", "remark", "description")
#: A column naming the channel's own transaction id says whose statement it is.
CHANNEL_OF_ID_COLUMN = {"微信订单号": "wechat", "微信支付订单号": "wechat",
                        "微信支付单号": "wechat", "支付宝交易号": "alipay"}
#: ... or else a preamble naming one channel.
CHANNEL_WORDS = {"wechat": ("微信",), "alipay": ("支付宝",), "unionpay": ("云闪付", "银联")}

#: Statuses of a completed payment (lower case).
PAID = frozenset({"success", "支付成功", "交易成功", "成功", "已支付", "已成功", "充值成功",
                  "已完成", "完成", "交易", "paid", "trade_success", "trade_finished",
                  "已到账", "已收款", "已收钱", "正常", "已入账", "入账成功", "已充值"})
REFUND_WORDS = ("退款", "退费", "refund")
NOT_PAID_WORDS = ("关闭", "closed", "撤销", "revoked", "revoke", "未支付", "notpay", "待支付",
                  "失败", "fail", "payerror", "冲正", "reversal")
#: Rows of totals inside the list (skipped) and the start of a summary block (reading stops).
TOTAL_WORDS = ("合计", "总计", "小计", "共计", "total", "summary")
SUMMARY_START = ("总交易单数", "汇总")

#: Room or student number in a memo: "电费充值-1-101", "学号20240001", "学号：20240001".
MEMO_PATTERN = (r"(?:学号|工号)\s*[:：]?\s*(?P<person_no>[0-9A-Za-z]{4,20})"
                r"|(?P<room>[0-9A-Za-z]+(?:-[0-9A-Za-z]+)+)")


#: An integer as a file writes it out in full.
_INTEGER = re.compile(r"-?[0-9]+")


class Inexact(str):
    """The text of an Excel number kept as a floating-point value of 15 digits or more: its
    last digits are lost (an id must never be booked from it)."""


#: The fields of a ``PaymentRow`` read from its own column, in the order they are declared.
ROW_FIELDS = ("reference", "room", "person_no", "amount", "method", "payer", "time",
              "merchant_order")


@dataclass
class PaymentRow:
    line: int  # the row's line in the file (Excel: its row number; 1 is the top)
    reference: str = ""
    room: str = ""
    person_no: str = ""
    amount_text: str = ""
    method: str = ""
    payer: str = ""
    when: str = ""
    merchant_order: str = ""  # the merchant's order number (商户订单号), kept in the memo
    memo: str = ""  # the memo columns' text (商品名称, 附加数据, 备注)
    status_text: str = ""  # the file's own status (SUCCESS, 支付成功, 退款, ...)
    amount_cents: int | None = None
    account_id: int | None = None
    account_room: str = ""
    status: str = "ok"  # ok, error, duplicate (already imported), skipped (not a payment)
    problem: str = ""  # why an error or a skipped row is not booked


@dataclass
class Statement:
    path: Path
    rows: list[PaymentRow] = field(default_factory=list)
    header_line: int = 1
    #: the channel the file belongs to ("" when the file does not say: rows name it, or the
    #: default does)
    channel: str = ""
    #: the channel comes from the id column (微信订单号, 支付宝交易号): every row is that
    #: channel's; from a preamble it is only the default of rows whose method column does not
    #: name a method
    channel_from_id: bool = False


#: The characters a guarded value starts or ends with (whitespace, WeChat's backtick, Excel's
#: ="...").
_GUARDED = frozenset(" \t\r\n\v\f\u00a0\u3000`=\"")


def clean(text: object) -> str:
    """A value without the channels' guards: surrounding whitespace and tabs, a BOM, WeChat's
    leading backtick, Excel's ``="..."``."""
    if not text:
        return ""
    s = text if isinstance(text, str) else str(text)
    if not (s[0] in _GUARDED or s[-1] in _GUARDED or "\ufeff" in s):
        return s  # most values: nothing to take off
    s = s.replace("\ufeff", "").strip()
    if s.startswith("`"):
        s = s[1:].strip()
    if len(s) >= 3 and s.startswith('="') and s.endswith('"'):
        s = s[2:-1].strip()
    return s


def header_key(text: object) -> str:
    """A column name as compared: no case, full-width forms, surrounding spaces or unit."""
    s = unicodedata.normalize("NFKC", clean(text)).lower()
    s = re.sub(r"\((元|rmb|cny|¥)\)$", "", s).strip()
    return " ".join(s.split())


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Number):  # the number as the file stores it
        return _number_text(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if abs(value) >= 1e15:  # beyond Excel's 15 significant digits: not exact
            return Inexact(format(value, ".15g"))
        if value.is_integer():
            return str(int(value))
        return format(value, ".15g")  # as Excel shows it
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _number_text(raw: str) -> str:
    """A number cell's text: an integer written out in full keeps every digit (a 19-digit id
    stored as ``4200000000000000002``); any other number is a floating-point value, read as
    Excel shows it (``4200000123.0`` gives ``4200000123``, ``25.499999999999996`` ``25.5``),
    and one of 15 digits or more has lost digits (``Inexact``)."""
    if _INTEGER.fullmatch(raw):
        return str(int(raw))
    try:
        value = float(raw)
    except ValueError:
        return raw
    if value != value or value in (float("inf"), float("-inf")):
        return raw
    return _cell_text(value)


def read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line, cells) of every row of the file, empty ones included."""
    if not path.exists():
        raise UserFacingError(_("no such file: {path}").format(path=path))
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        try:
            rows = read_first_sheet(path)
        except NotAWorkbook as exc:
            # a renamed file, a damaged zip or XML, a workbook without its parts alike
            raise UserFacingError(_("{path} is not an Excel workbook ({why})").format(
                path=path.name, why=exc)) from None
        return [(n, [_cell_text(c) for c in cells]) for n, cells in rows]
    if suffix == ".xls":
        raise UserFacingError(_("{path}: an old Excel file (.xls); save it as .xlsx or .csv "
                                "first").format(path=path.name))
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
        reader = csv.reader(io.StringIO(text))
        rows: list[tuple[int, list[str]]] = []
        last = 0
        try:
            for cells in reader:
                rows.append((last + 1, cells))
                last = reader.line_num
        except csv.Error as exc:
            raise UserFacingError(_("{path}: line {line} is not CSV ({why})").format(
                path=path.name, line=last + 1, why=exc)) from None
        return rows
    raise UserFacingError(_("{path}: import takes .xlsx or .csv files").format(path=path.name))


def _columns(keys: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for key, names in COLUMNS.items():
        for name in names:
            if name in keys:
                columns[key] = keys.index(name)
                break
    if columns.get("merchant_order") == columns.get("reference"):
        columns.pop("merchant_order", None)  # the merchant's number is the id itself
    return columns


def _channel(keys: list[str], ref_column: int, preamble: str) -> tuple[str, bool]:
    channel = CHANNEL_OF_ID_COLUMN.get(keys[ref_column], "")
    if channel:
        return channel, True
    named = [c for c, words in CHANNEL_WORDS.items() if any(w in preamble for w in words)]
    return (named[0] if len(named) == 1 else ""), False


def payment_state(status: str, direction: str = "") -> tuple[str, str]:
    """("ok" | "skipped" | "error", why) for a row's status text and its 收/支 direction."""
    if "支出" in direction:
        return "skipped", _("money paid out, not a payment")
    if not status:
        return "ok", ""
    t = (status if status.isascii() else unicodedata.normalize("NFKC", status)).strip().lower()
    if not t or t in PAID:
        return "ok", ""
    if any(w in t for w in REFUND_WORDS):
        return "skipped", _("a refund ({status}): not booked").format(status=status)
    if any(w in t for w in NOT_PAID_WORDS):
        return "skipped", _("not a completed payment ({status})").format(status=status)
    return "error", _("unknown status {status!r}").format(status=status)


def _first_text(cells: list[str]) -> str:
    return next((c for c in cells if c), "")


def read_statement(path: Path) -> Statement:
    """Parse a statement into rows (no checks against the database yet): find the header, skip
    the preamble, comments, totals and the summary; rows that are not payments (refunds, closed
    orders) come back ``skipped`` with the reason."""
    raw = read_rows(path)
    if not any(any(clean(c) for c in cells) for _line, cells in raw):
        raise UserFacingError(_("{path} is empty").format(path=path.name))
    found = None
    for i, (_line, cells) in enumerate(raw[:HEADER_SEARCH_LINES]):
        keys = [header_key(c) for c in cells]
        columns = _columns(keys)
        if "reference" in columns and "amount" in columns:
            found = i, keys, columns
            break
    if found is None:
        raise UserFacingError(_("{path}: no header line in the first {n} lines names the columns: "
                                "transaction id and amount (and room, student number or a "
                                "memo naming the room)").format(path=path.name,
                                                                 n=HEADER_SEARCH_LINES))
    at, keys, columns = found
    memo_columns = [i for i, k in enumerate(keys) if k in MEMO_COLUMNS]
    if "room" not in columns and "person_no" not in columns and not memo_columns:
        raise UserFacingError(_("{path}: the header on line {line} names no room, student "
                                "number or memo column").format(path=path.name,
                                                                 line=raw[at][0]))
    preamble = " ".join(clean(c) for _line, cells in raw[:at] for c in cells)
    channel, from_id = _channel(keys, columns["reference"], preamble)
    statement = Statement(path, header_line=raw[at][0], channel=channel,
                          channel_from_id=from_id)
    # the columns of PaymentRow's fields after ``line``, in order (-1: the file has none)
    wanted = [columns.get(key, -1) for key in ROW_FIELDS]
    direction, status = columns.get("direction", -1), columns.get("status", -1)
    exact = [columns[key] for key in ("reference", "person_no") if key in columns]
    for line, cells in raw[at + 1:]:
        texts = [clean(c) for c in cells]
        first = _first_text(texts)
        if not first:
            continue
        if first.startswith("#"):
            if "结束" in first:
                break  # Alipay: #-----业务明细列表结束----, then its summary
            continue
        lowered = first.lower()
        if lowered.startswith(SUMMARY_START):
            break  # WeChat: 总交易单数,应结订单总金额,... then the totals
        if lowered.startswith(TOTAL_WORDS):
            continue
        if len(statement.rows) >= MAX_ROWS:
            raise UserFacingError(_("{path} has more than {n} rows").format(path=path.name,
                                                                            n=MAX_ROWS))

        n = len(texts)
        memo = []
        for i in memo_columns:
            if i < n and texts[i] and texts[i] not in memo:
                memo.append(texts[i])
        row = PaymentRow(line, *(texts[i] if 0 <= i < n else "" for i in wanted),
                         memo=" ".join(memo),
                         status_text=texts[status] if 0 <= status < n else "")
        row.status, row.problem = payment_state(row.status_text,
                                                texts[direction] if 0 <= direction < n else "")
        if row.status == "ok":
            for i in exact:
                value = cells[i] if 0 <= i < len(cells) else ""
                if isinstance(value, Inexact):
                    row.status = "error"
                    row.problem = _("{value} was stored by Excel as a number and lost its last "
                                    "digits: export that column as text").format(value=value)
                    break
        statement.rows.append(row)
    return statement


def memo_candidates(memo: str, pattern: str | re.Pattern[str] | None = None
                    ) -> list[tuple[str, str]]:
    """("room" | "person_no", text) for each place the memo names a room or a student
    number, in order; ``pattern`` has the named groups ``room`` and/or ``person_no``."""
    rx = re.compile(pattern or MEMO_PATTERN) if not isinstance(pattern, re.Pattern) \
        else pattern
    out: list[tuple[str, str]] = []
    for m in rx.finditer(memo):
        groups = m.groupdict()
        for kind in ("person_no", "room"):
            value = groups.get(kind)
            if value and (kind, value) not in out:
                out.append((kind, value))
    return out
