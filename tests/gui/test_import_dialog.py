"""Importing payment statements in the dialog, on a real SQLite file: bad rows shown before
anything is booked, one question (count, total, file) before every booking, the valid rows
booked in one go, the same file twice books nothing."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
from openpyxl import Workbook
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from app.core import accounts
from app.storage import campus, ledger
from app.storage.db import close_database, open_database
from app.storage.models import LedgerTxn
from app.ui.runner import OperationRunner
from app.ui.session import Session
from app.ui.workers import running_threads
from app.views.import_dialog import ROW_COLOR, ImportDialog
from tests.helpers import operator

ADMIN = operator()


@pytest.fixture
def rooms(tmp_path):
    open_database(tmp_path / "import.db")
    root = campus.add_node(None, "campus", "湘塘校区", "XT")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    ids = {}
    for i, code in enumerate(("1-101", "1-102", "1-103")):
        node = campus.add_node(root, "room", code, code)
        campus.add_meter(bus, i + 1, "acrel-ddsy1352", f"31000000100{i}", node)
        campus.add_occupant(node, f"学生{i}", f"2024000{i}")
        ids[code] = accounts.open_account(ADMIN, node, mode="station").account.id
    yield ids
    assert running_threads() == []
    close_database()


def _csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _dialog(qtbot) -> ImportDialog:
    ctx = SimpleNamespace(runner=OperationRunner(), session=Session(operator("finance")))
    dlg = ImportDialog(ctx)
    dlg.alerts = []
    dlg.alert = dlg.alerts.append
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    return dlg


def _load(qtbot, dlg, path):
    with qtbot.waitSignal(dlg.loaded, timeout=5000) as signal:
        dlg.load(path)
    return signal.args[0]


def _statuses(dlg):
    return [r.status for r in dlg.model.rows]


def test_bad_rows_shown_then_valid_rows_booked_once(qtbot, rooms, tmp_path, artifacts_dir):
    f = _csv(tmp_path / "wechat-2026-11.csv", [
        ["交易号", "房间号", "金额", "支付方式", "付款人"],
        ["WX1001", "1-101", "50.00", "微信", "学生0"],
        ["WX1002", "9-999", "20", "微信", ""],  # unknown room
        ["WX1003", "1-102", "-5", "微信", ""],  # bad amount
        ["WX1004", "1-102", "abc", "微信", ""],  # not a number
        ["WX1001", "1-103", "10", "微信", ""],  # the transaction id repeats row 2
        ["WX1005", "1-103", "30.5", "", ""],  # no method: the dialog's default
        ["WX1006", "1-102", "12.34", "支付宝", ""],
    ])
    dlg = _dialog(qtbot)
    assert not dlg.book_button.isEnabled()
    dlg.method.setCurrentIndex(dlg.method.findData("wechat"))
    preview = _load(qtbot, dlg, f)
    assert _statuses(dlg) == ["ok", "error", "error", "error", "error", "ok", "ok"]
    assert dlg.summary.text() == ("To book: 3 payments totalling ¥92.84 · 4 rows with errors · "
                                  "0 already imported")
    model = dlg.model
    assert model.index(1, 6).data() == "unknown room '9-999'"
    assert model.index(1, 5).data() == "error"
    assert model.index(1, 0).data(Qt.ItemDataRole.BackgroundRole) == ROW_COLOR["error"]
    assert model.index(0, 0).data(Qt.ItemDataRole.BackgroundRole) is None
    assert model.index(5, 4).data() == "WeChat" and model.index(6, 4).data() == "Alipay"
    assert model.index(5, 3).data() == "¥30.50"
    dlg.only_problems.setChecked(True)
    assert dlg.proxy.rowCount() == 4
    dlg.only_problems.setChecked(False)
    assert LedgerTxn.select().count() == 0  # the preview booked nothing
    dlg.grab().save(str(artifacts_dir / "import_dialog.png"))

    # errors exist: one question listing them all; "no" books nothing
    asked: list[str] = []
    dlg.confirm_booking = lambda message: asked.append(message) or False
    qtbot.mouseClick(dlg.book_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1
    assert "4 rows have errors" in asked[0] and "row 3: unknown room" in asked[0]
    assert "row 6: transaction id repeats row 2" in asked[0]
    assert asked[0].endswith("Book 3 payments totalling ¥92.84 from wechat-2026-11.csv?")
    assert LedgerTxn.select().count() == 0 and dlg.status.text() == "Nothing booked."

    dlg.confirm_booking = lambda message: True
    with qtbot.waitSignal(dlg.applied, timeout=5000) as booked, \
            qtbot.waitSignal(dlg.loaded, timeout=5000):  # and the file is judged again
        dlg.book()
    assert booked.args == [3]
    assert ledger.balance(rooms["1-101"]) == 5000
    assert ledger.balance(rooms["1-102"]) == 1234
    assert ledger.balance(rooms["1-103"]) == 3050
    assert "Booked 3 payments totalling ¥92.84" in dlg.status.text()
    assert _statuses(dlg) == ["duplicate", "error", "error", "error", "error", "duplicate",
                              "duplicate"]
    assert not dlg.book_button.isEnabled()
    dlg.grab().save(str(artifacts_dir / "import_dialog_booked.png"))

    # the same file again, in a new dialog: nothing to book
    again = _dialog(qtbot)
    second = _load(qtbot, again, f)
    # opened with another default channel, the row without a method is not booked again
    assert second.valid == [] and len(second.duplicates) == 2
    assert "already booked as a WeChat payment" in second.rows[5].problem
    again.method.setCurrentIndex(again.method.findData("wechat"))
    second = _load(qtbot, again, f)
    assert second.valid == [] and len(second.duplicates) == 3
    assert "To book: 0 payments" in again.summary.text()
    assert "3 already imported" in again.summary.text()
    assert not again.book_button.isEnabled()
    again.book()  # refused: nothing valid
    assert LedgerTxn.select().where(LedgerTxn.kind == "recharge").count() == 3
    assert preview.path == str(f) and dlg.alerts == [] and again.alerts == []


def test_clean_excel_file_still_asks_once(qtbot, rooms, tmp_path):
    wb = Workbook()
    ws = wb.active
    for row in (["transaction id", "student no", "amount"], ["C1", "20240000", 100],
                ["C2", "20240002", "25.5"]):
        ws.append(row)
    f = tmp_path / "campus-card.xlsx"
    wb.save(f)
    dlg = _dialog(qtbot)
    _load(qtbot, dlg, f)
    assert _statuses(dlg) == ["ok", "ok"]
    assert dlg.model.index(0, 2).data() == "20240000 → 1-101"
    assert dlg.model.index(0, 4).data() == "campus card"
    asked: list[str] = []
    dlg.confirm_booking = lambda message: asked.append(message) or False
    qtbot.mouseClick(dlg.book_button, Qt.MouseButton.LeftButton)
    # no errors: the question is only the count, the total and the file
    assert asked == ["Book 2 payments totalling ¥125.50 from campus-card.xlsx?"]
    assert LedgerTxn.select().count() == 0 and not dlg.busy
    dlg.confirm_booking = lambda message: asked.append(message) or True
    with qtbot.waitSignal(dlg.applied, timeout=5000):
        qtbot.mouseClick(dlg.book_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 2
    qtbot.waitUntil(lambda: not dlg.busy, timeout=5000)
    assert ledger.balance(rooms["1-101"]) == 10000
    assert ledger.balance(rooms["1-103"]) == 2550


def test_an_unreadable_file_is_one_message(qtbot, rooms, tmp_path):
    f = _csv(tmp_path / "wrong.csv", [["who", "what"], ["a", "b"]])
    dlg = _dialog(qtbot)
    with qtbot.waitSignal(dlg.failed, timeout=5000) as failed:
        dlg.load(f)
    assert "names the columns" in failed.args[0]
    assert dlg.alerts == [failed.args[0]] and dlg.status.text() == failed.args[0]
    assert dlg.model.rowCount() == 0 and not dlg.book_button.isEnabled()
    with qtbot.waitSignal(dlg.failed, timeout=5000):
        dlg.load(tmp_path / "missing.xlsx")
    assert "no such file" in dlg.alerts[-1] and len(dlg.alerts) == 2


def test_cancelling_a_booking_books_nothing(qtbot, rooms, tmp_path):
    rows = [["transaction id", "room", "amount"]]
    rows += [[f"A{n:05d}", ("1-101", "1-102", "1-103")[n % 3], "1"] for n in range(600)]
    f = _csv(tmp_path / "alipay.csv", rows)
    dlg = _dialog(qtbot)
    preview = _load(qtbot, dlg, f)
    assert len(preview.valid) == 600
    dlg.confirm_booking = lambda message: True
    with qtbot.waitSignal(dlg.cancelled, timeout=20000):
        dlg.book()
        # the operator presses Cancel while the rows are being booked
        dlg.job.dialog.findChild(QPushButton).click()
    assert dlg.status.text() == "The import was cancelled; nothing was booked."
    assert LedgerTxn.select().count() == 0 and ledger.balance(rooms["1-101"]) == 0
    assert dlg.book_button.isEnabled() and not dlg.busy


def test_a_wechat_bill_shows_its_refund_as_not_a_payment(qtbot, rooms, tmp_path):
    """WeChat Pay's trade bill as downloaded (UTF-8 with a BOM, backticks, the summary at the
    end): its rows are WeChat payments whatever the default; the refund is shown, not booked."""
    header = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,"
              "交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,"
              "退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,"
              "申请退款金额,费率备注")

    def row(txn, status, goods, amount):
        values = ["2026-11-01 10:00:00", "wx2421b1c4370ec43b", "1900000109", "0", "", txn,
                  "DF" + txn[-6:], "oUpF8uMuAJO", "JSAPI", status, "OTHERS", "CNY", amount,
                  "0.00", "0", "0", "0.00", "0.00", "", "", goods, "", "0.00000", "0.60%",
                  amount, "0.00", ""]
        return ",".join("`" + v for v in values)

    lines = [header, row("4200002026110100000001", "SUCCESS", "电费充值-1-101", "40.00"),
             row("4200002026110100000002", "SUCCESS", "电费充值-1-103", "10.00"),
             row("4200002026110100000001", "REFUND", "电费充值-1-101", "0.00"),
             "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
             "`3,`50.00,`40.00,`0.00,`0.00000,`50.00,`40.00"]
    f = tmp_path / "微信支付账单.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8-sig"))
    dlg = _dialog(qtbot)
    preview = _load(qtbot, dlg, f)
    assert _statuses(dlg) == ["ok", "ok", "skipped"] and preview.channel == "wechat"
    assert "WeChat statement, header on line 1" in dlg.file_label.text()
    assert dlg.model.index(0, 4).data() == "WeChat"  # not the default campus card
    assert dlg.model.index(2, 5).data() == "not a payment"
    assert "refund" in dlg.model.index(2, 6).data()
    assert dlg.model.index(2, 0).data(Qt.ItemDataRole.BackgroundRole) == ROW_COLOR["skipped"]
    assert dlg.summary.text().endswith("· 1 not payments (refunds, closed orders)")
    dlg.only_problems.setChecked(True)
    assert dlg.proxy.rowCount() == 1
    asked: list[str] = []
    dlg.confirm_booking = lambda message: asked.append(message) or True
    with qtbot.waitSignal(dlg.applied, timeout=5000) as booked:
        dlg.book()
    assert asked == ["Book 2 payments totalling ¥50.00 from 微信支付账单.csv?"]
    assert booked.args == [2]
    qtbot.waitUntil(lambda: not dlg.busy, timeout=5000)
    assert ledger.balance(rooms["1-101"]) == 4000 and ledger.balance(rooms["1-103"]) == 1000
    assert dlg.alerts == []
