"""The monthly report's files as finance gets them: the PDF's text (pdftotext) holds the
Chinese building names and the totals, every font is embedded (pdffonts), page 1 is rendered to
a PNG to be looked at; the workbook's amounts are numbers and its SUM formulas, computed from the
cells, give the report's totals. The scheduled report is made once, recorded, and regenerating
it after later bookings gives the same figures."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from app.core import billing, finance_reports, report_files
from app.core.money import format_cents
from app.core.recharge import recharge
from app.core.report_pdf import money_text
from app.storage import reports as report_store
from tests.helpers import operator
from tests.unit.core.test_finance_reports import ALICE, DEC1, _month, _use
from tests.unit.core.test_finance_reports import db as db

FINANCE = operator("finance", "fiona")
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                   reason="poppler-utils is not installed")


def _sum_formula(ws, formula: str) -> Decimal:
    m = re.fullmatch(r"=SUM\(([A-Z]+)(\d+):([A-Z]+)(\d+)\)", formula)
    assert m, formula
    col, first, last = m.group(1), int(m.group(2)), int(m.group(4))
    # openpyxl reads the stored text "123.45" as a float; its repr gives the text back
    return sum((Decimal(repr(ws[f"{col}{r}"].value)) for r in range(first, last + 1)),
               Decimal(0))


@needs_poppler
def test_monthly_pdf_and_workbook(db, tmp_path, artifacts_dir):
    _month(db)
    period = finance_reports.month_period("2026-11")
    made = report_files.make(FINANCE, "monthly", period, pdf=tmp_path / "m.pdf",
                             xlsx=tmp_path / "m.xlsx")
    assert [p.name for p in made.paths] == ["m.pdf", "m.xlsx"]
    totals = made.totals["totals"]
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "m.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "1号宿舍楼" in text and "2号宿舍楼" in text and "湘塘校区" in text
    for key in ("opening", "closing", "consumption", "allowance"):
        assert money_text(totals[key]) in text, key
    assert re.search(r"Page 1 of \d+", text)
    fonts = subprocess.run(["pdffonts", str(tmp_path / "m.pdf")], capture_output=True,
                           text=True, check=True).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts
    out = artifacts_dir / "report_monthly_p1"
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile",
                    str(tmp_path / "m.pdf"), str(out)], check=True)
    assert out.with_suffix(".png").stat().st_size > 5000

    wb = load_workbook(tmp_path / "m.xlsx")
    ws = wb[wb.sheetnames[0]]  # the summary by building
    assert ws.freeze_panes == "A4"
    header = [c.value for c in ws[3]]
    last = ws.max_row
    assert ws[f"A{last}"].value == "total"
    col = {name: k for k, name in enumerate(header)}
    expect = {"opening balance": totals["opening"], "closing balance": totals["closing"],
              "consumption": totals["consumption"], "allowance": totals["allowance"]}
    for name, cents in expect.items():
        cell = ws.cell(row=last, column=col[name] + 1)
        assert cell.value.startswith("=SUM(")
        assert _sum_formula(ws, cell.value) == Decimal(cents) / 100
        assert format_cents(cents) == f"{_sum_formula(ws, cell.value):.2f}"
    for row in ws.iter_rows(min_row=4, max_row=last - 1):
        for c in row[1:]:
            assert isinstance(c.value, (int, float, Decimal)) and c.number_format == "#,##0.00"
    rooms = wb[wb.sheetnames[2]]
    assert rooms.max_row == 3 + 4 + 1
    closing = [c.value for c in rooms[3]].index("closing balance") + 1
    total_cell = rooms.cell(row=rooms.max_row, column=closing).value
    assert _sum_formula(rooms, total_cell) == Decimal(totals["closing"]) / 100


@needs_poppler
def test_journal_shift_and_arrears_files(db, tmp_path):
    _month(db)
    period = finance_reports.month_period("2026-11")
    for kind in ("journal", "shift", "arrears"):
        made = report_files.make(FINANCE, kind, period, cashier="alice",
                                 pdf=tmp_path / f"{kind}.pdf", xlsx=tmp_path / f"{kind}.xlsx")
        text = subprocess.run(["pdftotext", str(made.paths[0]), "-"], capture_output=True,
                              text=True, check=True).stdout
        assert "Prepared by" in text and "Reviewed by" in text, kind
    assert "Receipts 000003 to 000008" in subprocess.run(
        ["pdftotext", str(tmp_path / "shift.pdf"), "-"], capture_output=True, text=True,
        check=True).stdout


def test_scheduled_monthly_is_made_once_and_regenerates_the_same(db, tmp_path):
    rooms, accts = _month(db)
    now = DEC1 + 3600
    period = report_files.monthly_due(now)
    assert period is not None and period.month == "2026-11"
    kept = report_files.make_scheduled_monthly(tmp_path / "station.db", period)
    assert kept.month == "2026-11" and kept.made_by == "scheduler"
    assert [Path(p).name for p in kept.paths] == ["monthly-2026-11.pdf", "monthly-2026-11.xlsx"]
    assert all(Path(p).parent == tmp_path / "reports" and Path(p).is_file() for p in kept.paths)
    assert report_files.monthly_due(now) is None
    # bookings after the month do not move it
    recharge(ALICE, accts["1-101"], 5000, "cash", t=DEC1 + 7200)
    _use(rooms["1-101"][1], DEC1 + 12 * 3600, 3000)
    db.clock.now = DEC1 + 20 * 3600
    billing.bill(now=db.clock.now)
    assert report_files.regenerate_matches("2026-11")
    assert report_store.stored_reports("monthly", "2026-11")[0].totals == kept.totals


def test_the_reading_service_part_makes_it_in_its_thread(db, tmp_path, monkeypatch):
    import time
    from types import SimpleNamespace

    _month(db)
    monkeypatch.setattr(report_files, "time",
                        SimpleNamespace(time=lambda: DEC1 + 3600, monotonic=time.monotonic))
    job = report_files.ScheduledReports()
    job.check(tmp_path / "station.db")
    assert job._thread is not None
    job._thread.join(timeout=60)
    kept = report_store.stored_reports("monthly")
    assert [k.month for k in kept] == ["2026-11"]
    job.check(tmp_path / "station.db")  # made: nothing more to do
    assert not job._thread.is_alive() and len(report_store.stored_reports("monthly")) == 1
    job.stop()


def test_a_cancelled_report_writes_nothing(db, tmp_path):
    from app.core.progress import Progress
    from app.errors import Cancelled

    _month(db)
    asked = Progress()
    asked.cancel()
    with pytest.raises(Cancelled):
        report_files.make(FINANCE, "monthly", finance_reports.month_period("2026-11"),
                          pdf=tmp_path / "m.pdf", xlsx=tmp_path / "m.xlsx", progress=asked)
    assert list(tmp_path.glob("m.*")) == []
