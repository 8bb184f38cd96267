"""One payment, one booking, whatever the door: the desk, an imported statement, a payment
notification (which books through ``book_recharge`` like the desk), on a real SQLite file.

Before there was one key, the desk stored a WeChat payment's bare id and the import stored
``wechat:ID``, so the same payment was booked twice."""

from __future__ import annotations

import csv

import pytest

from app.core import accounts, payments_import
from app.core.recharge import book_recharge, find_account, recharge
from app.errors import UserFacingError
from app.storage import campus, ledger
from app.storage.db import close_database, open_database
from app.storage.ledger import DuplicateReference
from app.storage.models import LedgerTxn
from tests.helpers import operator

CASHIER = operator("cashier", "alice")
FINANCE = operator("finance", "bob")


@pytest.fixture
def station(tmp_path):
    open_database(tmp_path / "station.db")
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    ids = {}
    for i, (code, name) in enumerate([("2-105", "王小明"), ("3-101", "李雷"),
                                      ("3-102", "韩梅梅")]):
        node = campus.add_node(root, "room", code, code)
        campus.add_meter(bus, i + 1, "acrel-ddsy1352", f"31000000300{i}", node)
        campus.add_occupant(node, name, f"2024100{i}")
        ids[code] = accounts.open_account(operator(), node, mode="station").account.id
    yield ids
    close_database()


def _wechat_bill(path, rows):
    """WeChat Pay's trade bill: every value behind a backtick, the id in 微信订单号."""
    lines = ["交易时间,微信订单号,商户订单号,交易状态,订单金额,商品名称"]
    lines += [",".join("`" + v for v in ("2026-11-01 10:00:00", txn, f"DF{txn[-6:]}", "SUCCESS",
                                         amount, f"电费充值-{room}"))
              for txn, amount, room in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return path


def _recharges() -> list[tuple[str, str, int]]:
    return [(t.reference, t.method, t.account_id) for t in
            LedgerTxn.select().where(LedgerTxn.kind == "recharge").order_by(LedgerTxn.id)]


def test_desk_first_then_the_statement(tmp_path, station):
    recharge(CASHIER, station["3-101"], 5000, "wechat", reference="4200000123")
    p = payments_import.preview(_wechat_bill(tmp_path / "wx.csv",
                                             [("4200000123", "50.00", "3-101")]))
    assert [r.status for r in p.rows] == ["duplicate"]
    assert payments_import.apply(FINANCE, p).booked == 0
    assert _recharges() == [("wechat:4200000123", "wechat", station["3-101"])]
    assert ledger.balance(station["3-101"]) == 5000


def test_statement_first_then_the_desk(tmp_path, station):
    p = payments_import.preview(_wechat_bill(tmp_path / "wx.csv",
                                             [("4200000123", "50.00", "3-101")]))
    assert payments_import.apply(FINANCE, p).booked == 1
    # typed with the statement's decoration, full-width digits: the same payment
    for typed in ("4200000123", "`4200000123\t", "４２０００００１２３", "wechat:4200000123"):
        with pytest.raises(DuplicateReference, match=r"payment wechat:4200000123 is already "
                                                     r"booked \(booking \d+\)"):
            recharge(CASHIER, station["3-101"], 5000, "wechat", reference=typed)
    assert len(_recharges()) == 1 and ledger.balance(station["3-101"]) == 5000


def test_a_payment_the_desk_booked_by_its_bare_id_before_is_not_booked_again(tmp_path,
                                                                              station):
    # what the desk wrote before payments had a key (the ledger keeps it as it is)
    ledger.post("recharge", [("clearing:wechat", None, 5000), ("prepaid", station["3-101"],
                                                                 -5000)],
                operator="alice", account_id=station["3-101"], method="wechat",
                reference="4200000123")
    with pytest.raises(DuplicateReference, match="already booked"):
        recharge(CASHIER, station["3-101"], 5000, "wechat", reference="4200000123")
    p = payments_import.preview(_wechat_bill(tmp_path / "wx.csv",
                                             [("4200000123", "50.00", "3-101")]))
    assert [r.status for r in p.rows] == ["duplicate"]
    # the bare id was a WeChat payment: as an Alipay one it is refused, naming the channel
    with pytest.raises(DuplicateReference, match="paid by WeChat"):
        recharge(CASHIER, station["3-101"], 5000, "alipay", reference="4200000123")
    assert len(_recharges()) == 1


def test_the_same_id_under_another_channel_is_refused(tmp_path, station):
    recharge(CASHIER, station["2-105"], 1000, "alipay", reference="2026110122001")
    with pytest.raises(DuplicateReference, match=r"2026110122001 is already booked, paid by "
                                                 r"Alipay \(booking \d+\): check the payment "
                                                 r"method"):
        recharge(CASHIER, station["2-105"], 1000, "wechat", reference="2026110122001")
    # a notification door (anything booking through book_recharge) meets the same rule
    with pytest.raises(DuplicateReference):
        book_recharge("portal", station["2-105"], 1000, "wechat", reference="2026110122001")
    assert len(_recharges()) == 1


def test_an_id_excel_rounded_is_never_booked(tmp_path, station):
    with pytest.raises(UserFacingError, match="lost its last digits"):
        recharge(CASHIER, station["3-101"], 1000, "wechat", reference="4.2E+18")
    # Excel saved the ids of two payments as 4.2E+18: neither is booked, both are errors
    f = tmp_path / "excel.csv"
    with f.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["交易号", "房间号", "金额"], ["4.2E+18", "3-101", "10"],
                                  ["4.2E+18", "2-105", "20"]])
    p = payments_import.preview(f, default_method="wechat")
    assert [r.status for r in p.rows] == ["error", "error"]
    assert all("lost its last digits" in r.problem for r in p.rows)
    # and next month's file with another such id is not "already imported" either
    f2 = tmp_path / "excel2.csv"
    with f2.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["交易号", "房间号", "金额"], ["4.2E+18", "3-102", "30"]])
    p2 = payments_import.preview(f2, default_method="wechat")
    assert [r.status for r in p2.rows] == ["error"]
    assert _recharges() == []


@pytest.mark.parametrize("text,why", [
    ("2-1_5", "no open account matches"),  # LIKE's _ took it for 2-105, and booked there
    ("2-1%", "no open account matches"),  # LIKE's % too
    ("2-10", "is part of: 2-105"),  # part of one room: it booked there
    ("小明", "is part of: 2-105"),  # part of one name
    ("3-10", "is part of: 3-101, 3-102"),
])
def test_a_room_is_named_whole_to_book(station, text, why):
    with pytest.raises(UserFacingError, match=why):
        find_account(text)


def test_a_whole_room_account_name_or_number_books(station):
    acct = find_account("2-105")
    assert acct.id == station["2-105"]
    assert find_account(acct.number).id == acct.id
    assert find_account("王小明").id == acct.id  # the occupant's whole name
    assert find_account("20241000").id == acct.id  # the student number
    assert find_account(" ２-105 ").id == acct.id  # full-width, spaces


def test_two_accounts_named_alike_book_neither(station):
    node = campus.add_node(None, "room", "9-901", "9-901")
    campus.add_occupant(node, "王小明", "2099")
    accounts.open_account(operator(), node, mode="station")
    with pytest.raises(UserFacingError, match="matches several accounts: 2-105, 9-901"):
        find_account("王小明")


def test_an_import_whose_ids_carry_their_channel_books_nothing_twice(tmp_path):
    """A statement whose id column says ``wechat:4200000123`` (the form ``book_recharge``
    accepts) is the same payment as the desk's bare id of old and as the keyed booking."""
    open_database(tmp_path / "doors.db")
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    node = campus.add_node(root, "room", "3-101", "3-101")
    campus.add_meter(bus, 1, "acrel-ddsy1352", "310000003001", node)
    acct = accounts.open_account(operator(), node, mode="station").account.id
    ledger.post("recharge", [(ledger.METHOD_BOOKS["wechat"], None, 5000),
                             ("prepaid", acct, -5000)], operator="alice", account_id=acct,
                method="wechat", reference="4200000123")  # how the desk stored it before
    statement = tmp_path / "wx.csv"
    statement.write_text("交易时间,微信订单号,商户订单号,交易状态,订单金额,商品名称\n"
                         "`2026-11-01 10:00:00,`wechat:4200000123,`DF1,`SUCCESS,`50.00,"
                         "`电费充值-3-101\n", encoding="utf-8-sig")
    checked = payments_import.preview(statement)
    assert [r.status for r in checked.rows] == ["duplicate"]
    assert not checked.valid and ledger.balance(acct) == 5000
    close_database()
