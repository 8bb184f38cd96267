"""Payment statements: preview shows every bad row, apply is all-or-nothing, twice is once."""

from __future__ import annotations

import csv

import pytest
from openpyxl import Workbook

from app.core import accounts, payments_import
from app.core.progress import Progress
from app.errors import UserFacingError
from app.storage import campus, ledger
from app.storage.db import open_database
from app.storage.models import LedgerTxn
from tests.helpers import operator

ADMIN = operator()


@pytest.fixture
def campus_db(tmp_path):
    d = open_database(tmp_path / "imp.db")
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    ids = {}
    for i, code in enumerate(["1-101", "1-102"]):
        node = campus.add_node(root, "room", code, code)
        campus.add_meter(bus, i + 1, "acrel-ddsy1352", f"31000000100{i}", node)
        campus.add_occupant(node, f"张{i}", f"20240000{i}")
        ids[code] = accounts.open_account(ADMIN, node, mode="station").account.id
    yield ids
    d.close()


def _xlsx(path, rows):
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def _csv(path, rows, encoding="utf-8"):
    with path.open("w", newline="", encoding=encoding) as fh:
        csv.writer(fh).writerows(rows)
    return path


HEADER = ["交易号", "房间号", "金额", "支付方式", "交易时间"]


def test_good_file_books_once(tmp_path, campus_db):
    f = _xlsx(tmp_path / "card.xlsx", [HEADER,
                                        ["T1", "1-101", "50.00", "校园卡", "2026-11-01 10:00"],
                                        ["T2", "1-102", 20, "微信", "2026-11-01 11:00"]])
    p = payments_import.preview(f)
    assert [r.status for r in p.rows] == ["ok", "ok"] and p.total_cents == 7000
    assert payments_import.apply(ADMIN, p).booked == 2
    assert ledger.balance(campus_db["1-101"]) == 5000
    assert ledger.balance(campus_db["1-102"]) == 2000
    again = payments_import.preview(f)
    assert [r.status for r in again.rows] == ["duplicate", "duplicate"]
    assert payments_import.apply(ADMIN, again).booked == 0
    assert ledger.balance(campus_db["1-101"]) == 5000


def test_bad_rows_reported_before_anything_applies(tmp_path, campus_db):
    f = _csv(tmp_path / "wx.csv", [["transaction id", "room", "amount"],
                                    ["W1", "1-101", "10"],
                                    ["W2", "9-999", "10"],  # unknown room
                                    ["W3", "1-102", "-5"],  # bad amount
                                    ["W4", "1-102", "abc"],  # not a number
                                    ["W1", "1-102", "10"],  # duplicate id in the file
                                    ["", "1-102", "10"]],  # no id
             encoding="gb18030")
    p = payments_import.preview(f, default_method="wechat")
    assert [r.status for r in p.rows] == ["ok", "error", "error", "error", "error", "error"]
    problems = [r.problem for r in p.errors]
    assert "unknown room" in problems[0] and "repeats row 2" in problems[3]
    assert LedgerTxn.select().count() == 0  # preview changes nothing


def test_student_number_finds_the_room(tmp_path, campus_db):
    f = _csv(tmp_path / "ali.csv", [["流水号", "学号", "金额"], ["A1", "202400001", "12.34"]])
    p = payments_import.preview(f, default_method="alipay")
    assert p.rows[0].status == "ok" and p.rows[0].account_room == "1-102"


def test_all_or_nothing(tmp_path, campus_db, monkeypatch):
    monkeypatch.setattr(payments_import, "STAGE_CHUNK", 1)  # a progress step after each row
    f = _csv(tmp_path / "x.csv", [["交易号", "房间号", "金额"], ["X1", "1-101", "1"],
                                   ["X2", "1-102", "2"]])
    p = payments_import.preview(f)
    calls = []

    def boom(n, total, _text):
        calls.append(n)
        if n == 2:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        payments_import.apply(ADMIN, p, progress=Progress(boom))
    assert calls == [1, 2]
    assert LedgerTxn.select().count() == 0 and ledger.balance(campus_db["1-101"]) == 0


@pytest.mark.parametrize("content", [b"this is not a zip file", b"PK\x03\x04garbage"])
def test_renamed_file_is_refused_clearly(tmp_path, campus_db, content):
    f = tmp_path / "fake.xlsx"
    f.write_bytes(content)
    with pytest.raises(UserFacingError, match="not an Excel workbook"):
        payments_import.preview(f)


def test_missing_columns_refused(tmp_path, campus_db):
    f = _csv(tmp_path / "y.csv", [["who", "what"], ["a", "b"]])
    with pytest.raises(UserFacingError, match="names the columns"):
        payments_import.preview(f)


def test_rows_keep_their_line_in_the_file(tmp_path, campus_db):
    f = _csv(tmp_path / "gaps.csv", [["交易号", "房间号", "金额"], [], ["G1", "1-101", "1"], [],
                                      ["G1", "1-102", "2"]])
    p = payments_import.preview(f)
    assert [r.line for r in p.rows] == [3, 5]
    assert p.rows[1].problem == "transaction id repeats row 3"


def test_a_unionpay_row_is_booked_on_its_own_clearing_book(tmp_path, campus_db):
    f = _csv(tmp_path / "mixed.csv", [HEADER, ["U1", "1-101", "8.00", "云闪付", ""],
                                       ["U2", "1-102", "2.00", "银联", ""]])
    p = payments_import.preview(f)
    assert [(r.status, r.method) for r in p.rows] == [("ok", "unionpay"), ("ok", "unionpay")]
    payments_import.apply(ADMIN, p)
    assert ledger.trial_balance()["clearing:unionpay"] == 1000
    # the same id under another channel is not booked twice
    f2 = _csv(tmp_path / "again.csv", [["交易号", "房间号", "金额"], ["U1", "1-101", "8.00"]])
    again = payments_import.preview(f2, default_method="wechat")
    assert "already booked as a UnionPay payment" in again.rows[0].problem
