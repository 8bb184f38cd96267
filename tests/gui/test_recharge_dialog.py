"""The desk's recharge dialog on a real SQLite file: amounts refused with a message, a good
recharge booked once with its receipt number and delivery state, the large-amount question,
the receipt as a PDF (and a PNG of it under artifacts/)."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt

from app.core import accounts
from app.core.recharge import recharge
from app.drivers.meter_values import MeterValues
from app.storage import accounts as store
from app.storage import campus, ledger, readings
from app.storage.db import close_database, open_database
from app.storage.models import LedgerTxn, database
from app.storage.readings import PollOutcome
from app.ui.language import apply_language
from app.ui.receipt import receipt_lines, receipt_pdf
from app.ui.runner import OperationRunner
from app.ui.session import Session
from app.views.recharge_dialog import RechargeDialog
from tests.helpers import operator

ADMIN = operator()

CAMPUS = "湘塘校区"


@pytest.fixture
def desk(tmp_path):
    """A campus of two rooms: 1-101 (the meter keeps the money, read, a week of use) and
    1-102 (the station keeps the money)."""
    open_database(tmp_path / "desk.db")
    root = campus.add_node(None, "campus", CAMPUS, "XT")
    building = campus.add_node(root, "building", "1号宿舍楼", "1")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    ids: dict[str, int] = {}
    meters: dict[str, int] = {}
    for i, (code, mode) in enumerate((("1-101", "meter"), ("1-102", "station"))):
        node = campus.add_node(building, "room", code, code)
        meters[code] = campus.add_meter(bus, i + 1, "acrel-ddsy1352", f"31000000100{i}", node)
        campus.add_occupant(node, ("张伟", "李娜")[i], f"2024000{i + 1}")
        campus.add_occupant(node, ("王芳", "刘洋")[i], f"2024001{i + 1}")
        ids[code] = accounts.open_account(ADMIN, node, mode=mode).account.id
    now = time.time()
    days = [((date.today() - timedelta(days=n)).isoformat(), 2_000 + 350 * n) for n in range(9)]
    readings.write_batch([PollOutcome(meters["1-101"], now, True, days=days, values=MeterValues(
        read_at=now, energy_kwh=Decimal("1234.567"), remaining_money_cents=1_250,
        purchase_count=3, relay_closed=True, control_mode="auto"))])
    yield ids | {"meter:1-101": meters["1-101"], "node:1-101": store.get_account(
        ids["1-101"]).node_id, "bus": bus}
    close_database()


def _dialog(qtbot, **kw) -> RechargeDialog:
    ctx = SimpleNamespace(runner=OperationRunner(), session=Session(operator("cashier", "desk")))
    dlg = RechargeDialog(ctx, **kw)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    return dlg


def _book(qtbot, dlg: RechargeDialog):
    """Confirm, and wait for the booking (off the UI thread) to end: its result or None."""
    before = dlg.result
    with qtbot.waitSignal(dlg.runner.jobDone, timeout=10_000):
        assert dlg.confirm()
    return dlg.result if dlg.result is not before else None


def _type_amount(qtbot, dlg: RechargeDialog, text: str) -> None:
    dlg.amount.clear()
    qtbot.keyClicks(dlg.amount, text)


@pytest.mark.parametrize("text, message", [
    ("0", "the amount must be more than zero"),
    ("-5", "the amount must be more than zero"),
    ("abc", "'abc' is not an amount"),
    ("2000.01", "at most ¥2,000.00 per recharge"),
    ("12.345", "an amount has at most two decimals"),
    ("3,00", "a comma only groups thousands"),  # booked 300.00
    ("1e3", "'1e3' is not an amount"),  # booked 1,000.00
    ("1_000", "'1_000' is not an amount"),
])
def test_refuses_bad_amounts_with_a_message(qtbot, desk, text, message):
    dlg = _dialog(qtbot, initial_query="1-101")
    assert dlg.account is not None and dlg.account.room == "1-101"
    _type_amount(qtbot, dlg, text)
    assert message in dlg.amount_message.text()
    assert not dlg.confirm_button.isEnabled()
    assert dlg.amount.cents() is None and dlg.amount.toolTip() == dlg.amount_message.text()
    qtbot.keyClick(dlg.amount, Qt.Key.Key_Return)  # Enter does not book either
    assert not dlg.confirm()
    assert LedgerTxn.select().where(LedgerTxn.kind == "recharge").count() == 0
    assert ledger.balance(desk["1-101"]) == 0


def test_the_maximum_is_the_dialogs_and_a_good_amount_clears_the_message(qtbot, desk,
                                                                         artifacts_dir):
    dlg = _dialog(qtbot, initial_query="1-101", maximum_cents=100_00)
    _type_amount(qtbot, dlg, "100.01")
    assert "at most ¥100.00 per recharge" in dlg.amount_message.text()
    dlg.grab().save(str(artifacts_dir / "recharge_dialog_refused.png"))
    _type_amount(qtbot, dlg, "¥100")
    assert dlg.amount_message.text() == "" and dlg.amount.cents() == 100_00
    assert dlg.confirm_button.isEnabled()
    dlg.search.clear()
    dlg.run_search()  # no account chosen: nothing to confirm
    assert dlg.account is None and not dlg.confirm_button.isEnabled()


def test_good_recharge_books_once_and_follows_the_meter(qtbot, desk, tmp_path, artifacts_dir):
    pdf = tmp_path / "receipt.pdf"
    dlg = _dialog(qtbot, printer_factory=lambda: pdf)
    qtbot.keyClicks(dlg.search, "20240011")  # a student number of 1-101
    qtbot.waitUntil(lambda: dlg.account is not None, timeout=2000)
    assert dlg.account.room == "1-101" and dlg.found.text() == "1 found"
    assert "王芳 (20240011)" in dlg.people.text()
    assert dlg.balance.text() == "¥0.00" and "¥12.50 on the meter" in dlg.meter.text()
    today = dlg.use_table.item(0, 6).text()
    assert today == "2.00" and dlg.use_total.text() == "21.35 kWh in 7 days"  # 2.00+...+4.10
    assert dlg.method.itemText(dlg.method.findData("campus_card")) == "campus card"

    _type_amount(qtbot, dlg, "50")
    dlg.method.setCurrentIndex(dlg.method.findData("wechat"))
    with qtbot.waitSignal(dlg.recharged, timeout=2000) as signal:
        qtbot.mouseClick(dlg.confirm_button, Qt.MouseButton.LeftButton)
    result = signal.args[0]
    assert (result.amount_cents, result.method, result.room, result.receipt_no) == \
        (5000, "wechat", "1-101", 1)
    assert ledger.balance(desk["1-101"]) == 5000 == result.balance_cents
    assert "Receipt No. 000001" in dlg.outcome.text()
    assert "New balance ¥50.00" in dlg.outcome.text()
    assert dlg.state == "pending" and "pending" in dlg.outcome.text()
    assert dlg.delivery_timer.isActive()
    assert dlg.balance.text() == "¥50.00"
    assert dlg.txn_table.item(0, 1).text() == "recharge"
    dlg.grab().save(str(artifacts_dir / "recharge_dialog.png"))

    # nothing is booked twice: Confirm is disabled, and confirm() itself refuses
    assert not dlg.confirm_button.isEnabled() and not dlg.amount.isEnabled()
    qtbot.mouseClick(dlg.confirm_button, Qt.MouseButton.LeftButton)
    assert not dlg.confirm()
    assert LedgerTxn.select().where(LedgerTxn.kind == "recharge").count() == 1

    # the poller confirms the token on the meter: the dialog sees it within a second
    store.set_outbox_state(result.outbox_id, "applied")
    qtbot.waitUntil(lambda: dlg.state == "applied", timeout=3000)
    assert "applied" in dlg.outcome.text() and not dlg.delivery_timer.isActive()

    assert dlg.print_button.isEnabled() and dlg.print_receipt()
    assert pdf.exists() and pdf.stat().st_size > 1000

    # a new recharge needs a reset, and takes the next receipt number
    qtbot.mouseClick(dlg.reset_button, Qt.MouseButton.LeftButton)
    assert dlg.account is None and dlg.amount.text() == "" and dlg.outcome.text() == ""
    dlg.search.setText("1-101")
    dlg.run_search()
    _type_amount(qtbot, dlg, "20.50")
    second = _book(qtbot, dlg)
    assert second is not None and second.receipt_no == 2
    assert ledger.balance(desk["1-101"]) == 7050


def test_station_account_is_booked_at_once(qtbot, desk):
    dlg = _dialog(qtbot, initial_query="1-102")
    _type_amount(qtbot, dlg, "30")
    dlg.method.setCurrentIndex(dlg.method.findData("cash"))
    result = _book(qtbot, dlg)
    assert result is not None and result.outbox_id is None
    assert dlg.state == "booked" and "booked" in dlg.outcome.text()
    assert not dlg.delivery_timer.isActive()
    assert ledger.balance(desk["1-102"]) == 3000


def test_large_amount_asks_again_and_no_books_nothing(qtbot, desk):
    dlg = _dialog(qtbot, initial_query="1-101")
    asked: list[int] = []
    dlg.confirm_large = lambda cents: asked.append(cents) or False
    _type_amount(qtbot, dlg, "600")
    qtbot.mouseClick(dlg.confirm_button, Qt.MouseButton.LeftButton)
    assert asked == [600_00]
    assert "not confirmed" in dlg.amount_message.text()
    assert ledger.balance(desk["1-101"]) == 0 and dlg.result is None
    assert dlg.confirm_button.isEnabled()  # the operator may ask again

    _type_amount(qtbot, dlg, "500")  # at the threshold: no question
    dlg.confirm_large = lambda cents: asked.append(cents) or True
    assert _book(qtbot, dlg) is not None and asked == [600_00]
    assert ledger.balance(desk["1-101"]) == 500_00


def test_a_refusal_of_the_core_is_shown_and_books_nothing(qtbot, desk):
    dlg = _dialog(qtbot, initial_query="1-101")
    _type_amount(qtbot, dlg, "10")
    # a second meter appears in the room: the meter-keeps-money account cannot be credited
    campus.add_meter(desk["bus"], 9, "acrel-ddsy1352", "310000001009", desk["node:1-101"])
    assert _book(qtbot, dlg) is None
    assert "Not booked" in dlg.outcome.text() and "needs one meter" in dlg.outcome.text()
    assert ledger.balance(desk["1-101"]) == 0
    assert dlg.confirm_button.isEnabled() and dlg.result is None


def test_an_unexpected_failure_blocks_confirm_until_reset(qtbot, desk):
    dlg = _dialog(qtbot, initial_query="1-102")
    _type_amount(qtbot, dlg, "10")
    database.execute_sql("CREATE TRIGGER refuse BEFORE INSERT ON ledger_txn "
                         "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    assert _book(qtbot, dlg) is None
    assert "Something went wrong (IntegrityError)" in dlg.outcome.text()
    assert dlg.blocked and not dlg.confirm_button.isEnabled() and not dlg.confirm()
    database.execute_sql("DROP TRIGGER refuse")
    assert ledger.balance(desk["1-102"]) == 0
    dlg.reset()
    dlg.search.setText("1-102")
    dlg.run_search()
    _type_amount(qtbot, dlg, "10")
    assert _book(qtbot, dlg) is not None and ledger.balance(desk["1-102"]) == 1000


def test_search_lists_several_and_waits_for_a_choice(qtbot, desk):
    dlg = _dialog(qtbot, initial_query="1-10")
    assert dlg.results.count() == 2 and dlg.account is None
    _type_amount(qtbot, dlg, "10")
    assert not dlg.confirm_button.isEnabled()
    dlg.results.setCurrentRow(1)
    assert dlg.account.room == "1-102" and dlg.confirm_button.isEnabled()


@pytest.mark.parametrize("text", ["1-1_1", "1-10_", "%", "1-1%1"])
def test_search_takes_wildcards_literally(qtbot, desk, text):
    # LIKE's _ and % found 1-101 (and chose it at once, one match): nothing is found now
    dlg = _dialog(qtbot, initial_query=text)
    assert dlg.results.count() == 0 and dlg.account is None
    _type_amount(qtbot, dlg, "10")
    assert not dlg.confirm_button.isEnabled() and not dlg.confirm()


def _pdf_to_png(pdf, png) -> None:
    subprocess.run(["pdftoppm", "-png", "-r", "100", "-singlefile", str(pdf),
                    str(png.with_suffix(""))], check=True, timeout=30)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils")
def test_receipt_pdf_and_png(qtbot, desk, tmp_path, artifacts_dir):
    result = recharge(operator("cashier", "前台 王老师"), desk["1-101"], 12_345, "campus_card")
    pdf = receipt_pdf(result, tmp_path / "receipt.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=30).stdout
    for expected in ("000001", "¥123.45", "1-101", "A0000001", "campus card", "前台 王老师",
                     "电费充值收据", "Electricity recharge receipt", CAMPUS):
        assert expected in text, expected
    _pdf_to_png(pdf, artifacts_dir / "receipt.png")
    assert (artifacts_dir / "receipt.png").stat().st_size > 5000

    apply_language("zh_CN")
    captions = [c for c, _v in receipt_lines(result)]
    pdf_zh = receipt_pdf(result, tmp_path / "receipt_zh.pdf")
    _pdf_to_png(pdf_zh, artifacts_dir / "receipt_zh_CN.png")
    text = subprocess.run(["pdftotext", str(pdf_zh), "-"], capture_output=True, text=True,
                          check=True, timeout=30).stdout
    assert "收据编号" in captions[0] and "收据编号" in text and "¥123.45" in text


def test_dialog_in_chinese(qtbot, desk, artifacts_dir):
    apply_language("zh_CN")
    dlg = _dialog(qtbot, initial_query="1-101")
    assert dlg.confirm_button.text() == "确认充值"
    _type_amount(qtbot, dlg, "0")
    assert dlg.amount_message.text() == "金额必须大于零"
    _type_amount(qtbot, dlg, "88")
    _book(qtbot, dlg)
    assert "000001" in dlg.outcome.text()
    dlg.grab().save(str(artifacts_dir / "recharge_dialog_zh_CN.png"))
