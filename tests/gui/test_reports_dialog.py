"""The reports dialog on a real SQLite file: finance saves this month's report as PDF and as
Excel through the runner, a shift needs its cashier, and print preview draws the same tables
through Qt (pages counted, a screenshot under artifacts/)."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from PySide6.QtCore import QDate
from PySide6.QtPrintSupport import QPrinter
from PySide6.QtWidgets import QFileDialog

from app.core.operators import Operator, Role
from app.core.recharge import recharge
from app.simulator.demo_campus import create_demo_campus
from app.storage.db import close_database
from app.ui.report_print import page_layout, paint_document
from app.ui.runner import OperationRunner
from app.ui.session import Session
from app.views.reports_dialog import ReportsDialog

TIMEOUT = 30_000


@pytest.fixture
def finance(tmp_path, qtbot):
    create_demo_campus(tmp_path / "r.db", buses=1, meters=3, password="secret-1")
    cashier = Operator("cashier", Role.CASHIER)
    recharge(cashier, 1, 5000, "cash")
    recharge(cashier, 2, 2050, "wechat")
    ctx = SimpleNamespace(runner=OperationRunner(), session=Session(Operator("finance",
                                                                             Role.FINANCE)))
    yield ctx
    ctx.runner.wait_all()
    close_database()


def _this_month(dlg):
    today = date.today()
    dlg.first_day.setDate(QDate(today.year, today.month, 1))
    dlg.last_day.setDate(QDate(today.year, today.month, today.day))


def test_save_and_preview(qtbot, finance, tmp_path, monkeypatch, shoot):
    dlg = ReportsDialog(finance)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    _this_month(dlg)
    assert dlg.building.itemText(1) == "1号宿舍楼" and not dlg.cashier.isEnabled()
    target = tmp_path / "out" / "m.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *_a, **_k: (str(target), "")))
    with qtbot.waitSignal(finance.runner.jobDone, timeout=TIMEOUT):
        dlg.pdf_button.click()
    assert target.stat().st_size > 1000 and str(target) in dlg.info.text()
    target = tmp_path / "out" / "m.xlsx"
    with qtbot.waitSignal(finance.runner.jobDone, timeout=TIMEOUT):
        dlg.xlsx_button.click()
    assert load_workbook(target).sheetnames[:3] == ["Summary", "Recharges by method", "Rooms"]
    dlg.kind.setCurrentIndex(2)  # shift
    assert dlg.cashier.isEnabled()
    dlg.preview_button.click()
    assert dlg.message.text() == "Name the cashier whose shift to settle."
    dlg.kind.setCurrentIndex(0)
    with qtbot.waitSignal(finance.runner.jobDone, timeout=TIMEOUT):
        dlg.preview_button.click()
    made = dlg.last_made
    assert made is not None and made.totals["totals"]["recharges"]["cash"] == 5000
    preview = dlg._preview
    qtbot.waitExposed(preview)
    shoot(preview, "reports_preview")
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(tmp_path / "qt.pdf"))
    printer.setPageLayout(page_layout(made.document))
    assert paint_document(made.document, printer) == 1
    preview.close()
    shoot(dlg, "reports_dialog")
