"""Statements as the channels export them, written here the way the real files are laid out:
WeChat Pay's trade bill (UTF-8 with a BOM, backticks, summary lines), Alipay's business
statement (GB18030, # preamble, tabs after values, # summary), a campus-card centre's workbook
(title rows, a totals row, numeric ids). Read, previewed and booked without editing."""

from __future__ import annotations

import datetime as dt

import pytest
from openpyxl import Workbook

from app.core import accounts, payments_import, statements
from app.core.recharge import METHODS
from app.errors import UserFacingError
from app.storage import campus, ledger
from app.storage.db import open_database
from app.storage.ledger import METHOD_BOOKS
from app.storage.models import LedgerTxn
from tests.helpers import operator

ADMIN = operator()
ROOMS = ("1-101", "1-102", "1-103")


@pytest.fixture
def rooms(tmp_path):
    d = open_database(tmp_path / "statements.db")
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    ids = {}
    for i, code in enumerate(ROOMS):
        node = campus.add_node(root, "room", code, code)
        campus.add_meter(bus, i + 1, "acrel-ddsy1352", f"31000000200{i}", node)
        campus.add_occupant(node, f"学生{i}", f"2024000{i + 1}")  # 20240001, 20240002, ...
        ids[code] = accounts.open_account(ADMIN, node, mode="station").account.id
    yield ids
    d.close()


# -- WeChat Pay: 商户平台 交易账单 (ALL), as downloaded -----------------------------------------
WECHAT_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,"
                 "交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,"
                 "商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
                 "手续费,费率,订单金额,申请退款金额,费率备注")


def _wechat_row(when, txn, order, status, settled, coupon, goods, attach, fee, amount,
                refund_id="0", refund_no="0", refund="0.00", refund_status="",
                asked_refund="0.00"):
    values = [when, "wx2421b1c4370ec43b", "1900000109", "0", "", txn, order,
              "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI", status, "OTHERS", "CNY", settled, coupon,
              refund_id, refund_no, refund, "0.00", "ORIGINAL" if refund_status else "",
              refund_status, goods, attach, fee, "0.60%", amount, asked_refund, ""]
    return ",".join("`" + v for v in values)


WECHAT_LINES = [
    WECHAT_HEADER,
    _wechat_row("2026-11-01 10:00:00", "4200002026110112345678901234", "DF20261101000001",
                "SUCCESS", "50.00", "0.00", "电费充值-1-101", "", "0.30000", "50.00"),
    # a coupon the campus paid: the resident bought 20.00 of electricity, 15.00 settles
    _wechat_row("2026-11-01 11:30:00", "4200002026110112345678905678", "DF20261101000002",
                "SUCCESS", "15.00", "5.00", "电费充值", "学号20240002", "0.09000", "20.00"),
    # the refund of the first payment: same 微信订单号, not booked
    _wechat_row("2026-11-01 18:00:00", "4200002026110112345678901234", "DF20261101000001",
                "REFUND", "0.00", "0.00", "电费充值-1-101", "", "-0.06000", "0.00",
                refund_id="50300002026110100001", refund_no="RF20261101000001",
                refund="10.00", refund_status="SUCCESS", asked_refund="10.00"),
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
    "`3,`65.00,`10.00,`0.00,`0.33000,`70.00,`10.00",
]


def _write(path, lines, encoding):
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


# -- Alipay: 业务明细 (the business statement), as exported ---------------------------------------
ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,"
                 "操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,"
                 "支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,"
                 "卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


def _alipay_row(txn, order, kind, goods, amount, received, note="", batch=""):
    values = [txn, order, kind, goods, "2026-11-01 09:12:01", "2026-11-01 09:12:05", "", "",
              "", "", "张*(138****0001)", amount, received, "0.00", "0.00", "0.00", "0.00",
              "0.00", "", "0.00", "0.00", batch, "-0.18", "0.00", note]
    return ",".join(v + "\t" for v in values)  # Alipay puts a tab after every value


ALIPAY_LINES = [
    "#支付宝业务明细查询",
    "#账号：[20881234567890120156]",
    "#起始日期：[2026年11月01日 00:00:00]   终止日期：[2026年11月02日 00:00:00]",
    "#-----------------------------------------业务明细列表----------------------------------------",
    ALIPAY_HEADER,  # line 5
    _alipay_row("2026110122001412345678901234", "DF20261101000101", "交易", "电费充值-1-102",
                "30.00", "30.00"),
    _alipay_row("2026110122001412345678905555", "DF20261101000102", "交易", "电费充值",
                "12.50", "12.50", note="1-103"),
    _alipay_row("2026110122001412345678901234", "DF20261101000101", "退款", "电费充值-1-102",
                "-10.00", "-10.00", batch="DF20261101000101R1"),
    "#-----------------------------------------业务明细列表结束------------------------------------",
    "#交易合计：2笔，商家实收共42.50元，商家优惠共0.00元",
    "#退款合计：1笔，商家实收退款共-10.00元，商家优惠退款共0.00元",
    "#导出时间：[2026年11月02日 08:00:00]",
]


# -- a campus-card centre's workbook ---------------------------------------------------------------
def _campus_xlsx(path, rows):
    wb = Workbook()
    ws = wb.active
    ws.append(["校园卡充值电费流水"])
    ws.merge_cells("A1:I1")
    ws.append(["日期范围：2026-11-01 至 2026-11-30", None, None, None, None, None, None, None,
               "导出人：财务处"])
    ws.append(["序号", "流水号", "学号", "姓名", "房间号", "支付方式", "交易金额(元)", "交易时间",
               "状态"])
    for r in rows:
        ws.append(r)
    ws.append(["合计", None, None, None, None, None,
               sum(r[6] for r in rows if isinstance(r[6], (int, float))), None, None])
    wb.save(path)
    return path


WHEN = dt.datetime(2026, 11, 3, 12, 0)
CAMPUS_ROWS = [
    # a 19-digit id is a text cell (an Excel number keeps 15 digits); a student number a number
    [1, "4200000000000000123", 20240001, "学生0", None, "校园卡", 100, WHEN, "成功"],
    [2, "T202611030002", None, "学生2", "1-103", "云闪付", 25.5, WHEN, "成功"],
    [3, "T202611030003", None, None, "1-102", "银联", 10, WHEN, "成功"],
]


# -- reading ---------------------------------------------------------------------------------------
def test_wechat_trade_bill_is_read_as_exported(tmp_path):
    f = _write(tmp_path / "微信支付账单.csv", WECHAT_LINES, "utf-8-sig")
    s = statements.read_statement(f)
    assert s.channel == "wechat" and s.header_line == 1
    assert [r.line for r in s.rows] == [2, 3, 4]  # the summary lines are not rows
    first, coupon, refund = s.rows
    assert first.reference == "4200002026110112345678901234"  # 微信订单号, backtick gone
    assert first.merchant_order == "DF20261101000001"
    assert first.amount_text == "50.00" and first.status == "ok"
    assert first.memo == "电费充值-1-101" and s.channel_from_id
    assert coupon.amount_text == "20.00"  # the order amount, not the 15.00 settled
    assert refund.status == "skipped" and "refund" in refund.problem


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-8"])
def test_alipay_statement_header_on_line_5(tmp_path, encoding):
    f = _write(tmp_path / "20881234567890120156_20261101_业务明细.csv", ALIPAY_LINES, encoding)
    s = statements.read_statement(f)
    assert s.channel == "alipay" and s.header_line == 5
    assert [(r.line, r.status) for r in s.rows] == [(6, "ok"), (7, "ok"), (8, "skipped")]
    paid = s.rows[0]
    assert paid.reference == "2026110122001412345678901234"  # no tab, not rounded
    assert paid.merchant_order == "DF20261101000101" and paid.amount_text == "30.00"
    assert s.rows[1].memo == "电费充值 1-103"  # 商品名称 and 备注


def test_values_lose_their_guards():
    assert statements.clean("`4200001234\t") == "4200001234"
    assert statements.clean('="4200001234"') == "4200001234"
    assert statements.clean("\ufeff 交易号 ") == "交易号"
    assert statements.header_key("订单金额（元）") == statements.header_key(" 订单金额(元)") \
        == "订单金额"


def test_statuses():
    assert statements.payment_state("SUCCESS")[0] == "ok"
    assert statements.payment_state("支付成功")[0] == "ok"
    assert statements.payment_state("交易成功")[0] == "ok"
    assert statements.payment_state("")[0] == "ok"
    assert statements.payment_state("REFUND")[0] == "skipped"
    assert statements.payment_state("已全额退款")[0] == "skipped"
    assert statements.payment_state("交易关闭")[0] == "skipped"
    assert statements.payment_state("REVOKED")[0] == "skipped"
    assert statements.payment_state("支付成功", direction="支出")[0] == "skipped"
    state, why = statements.payment_state("挂起")
    assert state == "error" and "unknown status" in why


def test_room_from_the_memo():
    assert statements.memo_candidates("电费充值-1-101") == [("room", "1-101")]
    assert statements.memo_candidates("学号20240001 电费") == [("person_no", "20240001")]
    assert statements.memo_candidates("学号：20240001") == [("person_no", "20240001")]
    assert statements.memo_candidates("2026-11 电费 1-101") == [("room", "2026-11"),
                                                               ("room", "1-101")]
    assert statements.memo_candidates("电费") == []
    custom = r"宿舍(?P<room>\d+号楼\d+)"
    assert statements.memo_candidates("宿舍3号楼512电费", custom) == [("room", "3号楼512")]


def test_no_header_in_the_first_lines_is_refused(tmp_path):
    lines = ["#说明"] * 31 + ["交易号,房间号,金额", "T1,1-101,1"]
    f = _write(tmp_path / "late.csv", lines, "utf-8")
    with pytest.raises(UserFacingError, match="first 30 lines"):
        statements.read_statement(f)


def test_old_excel_files_are_named(tmp_path):
    f = tmp_path / "流水.xls"
    f.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(UserFacingError, match=r"\.xls.*save it as \.xlsx"):
        statements.read_statement(f)


# -- previewing and booking ----------------------------------------------------------------------
def test_wechat_bill_books_payments_not_refunds(tmp_path, rooms):
    f = _write(tmp_path / "wechat.csv", WECHAT_LINES, "utf-8-sig")
    # the default method is the campus card: the WeChat bill names its own channel
    p = payments_import.preview(f, default_method="campus_card")
    assert [r.status for r in p.rows] == ["ok", "ok", "skipped"]
    assert p.channel == "wechat" and p.total_cents == 7000 and len(p.skipped) == 1
    assert p.rows[0].account_room == "1-101"  # from 商品名称 "电费充值-1-101"
    assert p.rows[1].person_no == "20240002" and p.rows[1].account_room == "1-102"
    assert payments_import.apply(ADMIN, p).booked == 2
    assert ledger.balance(rooms["1-101"]) == 5000 and ledger.balance(rooms["1-102"]) == 2000
    txn = LedgerTxn.get(LedgerTxn.reference == "wechat:4200002026110112345678901234")
    assert txn.method == "wechat" and "merchant order DF20261101000001" in txn.memo
    assert ledger.trial_balance()["clearing:wechat"] == 7000
    again = payments_import.preview(f)
    assert [r.status for r in again.rows] == ["duplicate", "duplicate", "skipped"]


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_alipay_statement_books(tmp_path, rooms, encoding):
    f = _write(tmp_path / "alipay.csv", ALIPAY_LINES, encoding)
    p = payments_import.preview(f)
    assert [r.status for r in p.rows] == ["ok", "ok", "skipped"]
    assert [r.account_room for r in p.valid] == ["1-102", "1-103"]
    assert payments_import.apply(ADMIN, p).total_cents == 4250
    assert LedgerTxn.get(LedgerTxn.reference == "alipay:2026110122001412345678901234") \
        .method == "alipay"
    assert ledger.balance(rooms["1-102"]) == 3000 and ledger.balance(rooms["1-103"]) == 1250


def test_campus_card_workbook_with_title_and_totals(tmp_path, rooms):
    f = _campus_xlsx(tmp_path / "校园卡充值电费流水.xlsx", CAMPUS_ROWS)
    p = payments_import.preview(f, default_method="campus_card")
    assert p.header_line == 3 and p.channel == ""
    assert [r.line for r in p.rows] == [4, 5, 6]  # the 合计 row is not a payment
    assert [r.status for r in p.rows] == ["ok", "ok", "ok"]
    card, cloud, union = p.rows
    assert card.reference == "4200000000000000123"  # a 19-digit id, exactly
    assert card.person_no == "20240001" and card.account_room == "1-101"
    assert card.when == "2026-11-03 12:00:00"
    assert (card.method, cloud.method, union.method) == ("campus_card", "unionpay", "unionpay")
    assert cloud.amount_cents == 2550
    payments_import.apply(ADMIN, p)
    assert ledger.balance(rooms["1-101"]) == 10000
    assert LedgerTxn.get(LedgerTxn.reference == "campus_card:4200000000000000123")
    assert LedgerTxn.get(LedgerTxn.reference == "unionpay:T202611030002").method == "unionpay"
    assert ledger.trial_balance()["clearing:unionpay"] == 3550


def test_an_id_excel_rounded_is_refused_not_booked(tmp_path, rooms):
    # 4200000000000000123 typed into Excel as a number is kept as 4.2E+18; a 14-digit number
    # is exact and gives its digits
    rows = [[1, 4.2e18, None, None, "1-101", "微信", 10, WHEN, "成功"],
            [2, 20261103000002, None, None, "1-102", "微信", 10, WHEN, "成功"]]
    f = _campus_xlsx(tmp_path / "rounded.xlsx", rows)
    p = payments_import.preview(f)
    assert [r.status for r in p.rows] == ["error", "ok"]
    assert "lost its last digits" in p.rows[0].problem and "export" in p.rows[0].problem
    assert p.rows[1].reference == "20261103000002"


def _store_numbers_as(path, texts: dict[int, str]):
    """Give number cells the stored text another exporter writes: openpyxl writes every number
    with 16 significant digits (``%.16g``), so an int 4200000000000000002 is ``4.2e+18`` in the
    file itself, and a float 4200000123.0 is ``4200000123``; a bank's or a card centre's
    export writes integers in full, and Python's float text ends in ``.0``. The cells are
    written by openpyxl with a placeholder number each (``texts``' keys)."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    for placeholder, text in texts.items():
        assert sheet.count(f"<v>{placeholder}</v>") == 1
        sheet = sheet.replace(f"<v>{placeholder}</v>", f"<v>{text}</v>")
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def test_numeric_ids_are_read_exactly(tmp_path, rooms):
    rows = [[1, 900001, None, None, "1-101", "微信", 10, WHEN, "成功"],
            [2, 900002, None, None, "1-102", "微信", 20, WHEN, "成功"],
            [3, 900003.5, None, None, "1-103", "微信", 30, WHEN, "成功"]]
    f = _store_numbers_as(_campus_xlsx(tmp_path / "ids.xlsx", rows),
                          {900001: "4200000000000000002", 900002: "4200000000000000001",
                           900003.5: "4200000123.0"})
    p = payments_import.preview(f)
    assert [(r.status, r.reference) for r in p.rows] == [
        ("ok", "4200000000000000002"), ("ok", "4200000000000000001"), ("ok", "4200000123")]
    assert payments_import.apply(ADMIN, p).booked == 3
    assert {t.reference for t in LedgerTxn.select()} == {
        "wechat:4200000000000000002", "wechat:4200000000000000001", "wechat:4200000123"}
    assert ledger.balance(rooms["1-101"]) == 1000 and ledger.balance(rooms["1-102"]) == 2000


def test_ids_whose_digits_the_file_lost_are_refused_not_booked_as_one(tmp_path, rooms):
    # as openpyxl (and Excel) store them: both are 4.2e+18 in the file; and a text cell
    # holding Excel's display of such a number
    rows = [[1, 4200000000000000002, None, None, "1-101", "微信", 10, WHEN, "成功"],
            [2, 4200000000000000001, None, None, "1-102", "微信", 20, WHEN, "成功"],
            [3, "4.20000000000000E+18", None, None, "1-103", "微信", 30, WHEN, "成功"],
            [4, 900004, None, None, "1-103", "微信", 40, WHEN, "成功"]]
    f = _store_numbers_as(_campus_xlsx(tmp_path / "lost.xlsx", rows),
                          {900004: "4200000000000000004.0"})  # a float: not its digits
    p = payments_import.preview(f)
    assert [r.status for r in p.rows] == ["error"] * 4
    assert all("lost" in r.problem and "digits" in r.problem for r in p.rows)
    assert not p.valid and not p.duplicates  # nothing silently skipped as "already imported"


def test_unionpay_is_a_method_of_its_own():
    assert "unionpay" in METHODS and METHOD_BOOKS["unionpay"] == "clearing:unionpay"
    assert ledger.BOOKS["clearing:unionpay"] == "asset"
    for word in ("云闪付", "银联", "银联云闪付", "UnionPay"):
        assert payments_import._method(word, "cash") == "unionpay"


def test_a_unionpay_statement_by_its_preamble(tmp_path, rooms):
    lines = ["云闪付商户对账单", "商户编号：898000000000001", "", "",
             "交易日期,交易时间,交易流水号,金额(元),交易状态,附言",  # line 5
             "20261101,101500,`61100202611010001,88.00,交易成功,电费 1-102",
             "20261101,111500,`61100202611010002,5.00,已退款,电费 1-101",
             "合计,,,93.00,,"]
    f = _write(tmp_path / "unionpay.csv", lines, "gb18030")
    p = payments_import.preview(f)
    assert p.channel == "unionpay" and p.header_line == 5
    assert [(r.status, r.method) for r in p.rows] == [("ok", "unionpay"),
                                                      ("skipped", "unionpay")]
    assert p.rows[0].reference == "61100202611010001" and p.rows[0].account_room == "1-102"


def test_a_memo_naming_no_room_is_an_error(tmp_path, rooms):
    lines = ["交易单号,商户单号,金额(元),当前状态,备注",
             "T1,M1,10.00,支付成功,电费",
             "T2,M2,10.00,支付成功,电费 9-999",
             "T3,M3,10.00,支付成功,2026-11 电费 1-103"]  # the first place naming a room wins
    f = _write(tmp_path / "memo.csv", lines, "utf-8")
    p = payments_import.preview(f, default_method="wechat")
    assert [r.status for r in p.rows] == ["error", "error", "ok"]
    assert "no room or student number" in p.rows[0].problem
    assert "unknown room '9-999'" in p.rows[1].problem
    assert p.rows[2].account_room == "1-103"
    custom = payments_import.preview(f, default_method="wechat", memo_pattern=r"(?P<room>9-9+)")
    assert custom.rows[1].problem == "unknown room '9-999'"


def test_wechat_own_bill_with_its_preamble(tmp_path, rooms):
    """WeChat's own bill: 16 lines about the account, the header on line 17 (交易单号, 商户单号,
    金额(元), 当前状态), a 支付方式 column saying where the money came from (零钱)."""
    preamble = ["微信支付账单明细", "微信昵称：[电费充值中心]",
                "起始时间：[2026-11-01 00:00:00] 终止时间：[2026-11-30 23:59:59]",
                "导出类型：[全部]", "导出时间：[2026-12-01 09:00:00]", "",
                "共3笔记录", "收入：2笔 45.00元", "支出：1笔 5.00元", "中性交易：0笔 0.00元",
                "注：", "1. 充值/提现/理财通购买/零钱通存取/信用卡还款等交易，将计入中性交易",
                "2. 本明细仅展示当前账单中的交易，不包括已删除的记录", "3. 本明细仅供个人对账使用",
                "", "----------------------微信支付账单明细列表--------------------"]
    lines = [
        *preamble,
        "交易时间,交易类型,交易对方,商品,收/支,金额(元),支付方式,当前状态,交易单号,商户单号,备注",
        "2026-11-02 08:00:00,二维码收款,学生0,电费充值-1-101,收入,¥30.00,零钱,已收钱,"
        "10000399012026110200000001\t,DF0001\t,/",
        "2026-11-02 09:00:00,二维码收款,学生2,学号20240003,收入,¥15.00,招商银行(1234),已收钱,"
        "10000399012026110200000002\t,DF0002\t,/",
        "2026-11-02 10:00:00,商户消费,某超市,零食,支出,¥5.00,零钱,支付成功,"
        "4200002026110200000003\t,DF0003\t,/",
    ]
    f = _write(tmp_path / "微信支付账单(20261101-20261130).csv", lines, "utf-8-sig")
    p = payments_import.preview(f, default_method="cash")
    assert p.header_line == 17 and p.channel == "wechat"
    assert [(r.line, r.status, r.method) for r in p.rows] == [
        (18, "ok", "wechat"), (19, "ok", "wechat"), (20, "skipped", "wechat")]
    assert [r.account_room for r in p.valid] == ["1-101", "1-103"]
    assert p.rows[0].reference == "10000399012026110200000001" and p.total_cents == 4500
    assert "paid out" in p.rows[2].problem
