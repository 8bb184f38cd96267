"""The recharge receipt: drawn with QPainter on a QPrinter (the desk printer, or a PDF file).

Two papers: a strip of 80 mm roll paper (what desk receipt printers take) or an A4 sheet, on
which the receipt is a column at the top, centred, in larger type. The desk's paper is a setting
of the PC; the receipt goes to the default printer (or to the one the operator picks when the
PC has none). It says what happened to the money: applied on the meter, or waiting for it.
The receipt number is the ledger's gapless counter, printed with six digits. Nothing secret
(no token, no key) is printed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt
from PySide6.QtGui import QFont, QPageLayout, QPageSize, QPainter, QPen
from PySide6.QtPrintSupport import QPrintDialog, QPrinter, QPrinterInfo
from PySide6.QtWidgets import QDialog, QWidget

from app.core.money import format_cents
from app.core.operators import operator_text
from app.core.queries import campus_name
from app.core.recharge import METHODS, RechargeResult, receipt_number
from app.errors import UserFacingError
from app.i18n import _
from app.ui.app import print_font

log = logging.getLogger("voltkeeper.ui.receipt")

PAPER_WIDTH_MM = 80.0
PAPER_HEIGHT_MM = 150.0
MARGIN_MM = 4.0
ROLL, A4 = "80mm", "A4"
PAPERS = (ROLL, A4)
#: On A4 the receipt is a column this wide, its type this much larger.
A4_COLUMN_MM = 110.0
A4_SCALE = 1.3
#: The receipt's title is printed in both languages whatever the window's language.
TITLE_EN = "Electricity recharge receipt"
TITLE_ZH = "电费充值收据"


def receipt_lines(result: RechargeResult) -> list[tuple[str, str]]:
    """(caption, value) of each line of the receipt, in order, in the current language."""
    method = METHODS.get(result.method)
    return [
        (_("Receipt No."), receipt_number(result.receipt_no)),
        (_("Time"), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(result.t))),
        (_("Room"), result.room),
        (_("Account No."), result.account_number or str(result.account_id)),
        (_("Payment method"), _(method) if method else result.method),
        (_("Amount"), format_cents(result.amount_cents, symbol=True)),
        (_("Balance after"), format_cents(result.balance_cents, symbol=True)),
        (_("Operator"), operator_text(result.operator)),
    ]


def receipt_note(result: RechargeResult, state: str) -> str:
    """What happened to the money, as the receipt says it (``state``: the delivery state)."""
    if state == "applied":
        return _("The meter has been credited. Keep this receipt.")
    if state == "failed":
        return _("The meter refused the credit; the desk puts it right. Keep this receipt.")
    if result.outbox_id is None:
        return _("The station keeps this account's money: the balance is available now. "
                 "Keep this receipt.")
    return _("Waiting for the meter: it is credited when it next answers the station. Keep "
             "this receipt.")


def _pdf_printer(path: Path, paper: str) -> QPrinter:
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(path))
    printer.setDocName(path.stem)
    printer.setPageLayout(page_layout(paper))
    return printer


def page_layout(paper: str = ROLL) -> QPageLayout:
    """The page of ``paper``: the 80 mm roll (150 mm long) or an A4 sheet."""
    margins = QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM)
    if paper == A4:
        return QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                           QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter)
    size = QPageSize(QSizeF(PAPER_WIDTH_MM, PAPER_HEIGHT_MM), QPageSize.Unit.Millimeter,
                     "Receipt 80 mm", QPageSize.SizeMatchPolicy.ExactMatch)
    return QPageLayout(size, QPageLayout.Orientation.Portrait, margins,
                       QPageLayout.Unit.Millimeter)


def render_receipt(result: RechargeResult, printer_or_path: QPrinter | str | Path, *,
                   state: str = "", paper: str = ROLL) -> None:
    """Draw the receipt on ``printer_or_path``: a configured QPrinter, or a PDF file path of
    ``paper``. ``state``: how far the meter got (the receipt says it)."""
    if isinstance(printer_or_path, str | Path):
        path = Path(printer_or_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        printer = _pdf_printer(path, paper)
    else:
        printer = printer_or_path
    lines = receipt_lines(result)
    campus = campus_name()
    painter = QPainter()
    if not painter.begin(printer):
        raise UserFacingError(_("The printer could not be opened."))
    try:
        _draw(painter, printer, campus, lines, receipt_note(result, state))
    finally:
        painter.end()


def _draw(painter: QPainter, printer: QPrinter, campus: str,
          lines: list[tuple[str, str]], note: str) -> None:
    dpi = printer.resolution()

    def mm(v: float) -> float:
        return v * dpi / 25.4

    page = QRectF(printer.pageLayout().paintRectPixels(dpi))
    wide = page.width() > mm(PAPER_WIDTH_MM)  # a sheet, not the roll
    column = A4_COLUMN_MM if wide else PAPER_WIDTH_MM - 2 * MARGIN_MM
    width = min(page.width(), mm(column))
    if wide:  # a column in the middle of the sheet, in larger type
        painter.translate((page.width() - width) / 2, 0)

    def _font(point_size: float, bold: bool = False) -> QFont:
        return print_font(point_size * (A4_SCALE if wide else 1.0), bold)

    y = 0.0
    center = int(Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap)
    left = int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap)
    right = int(Qt.AlignmentFlag.AlignRight | Qt.TextFlag.TextWordWrap)

    def block(text: str, font: QFont, flags: int, gap: float = 1.0) -> None:
        nonlocal y
        painter.setFont(font)
        rect = painter.boundingRect(QRectF(0, y, width, mm(60)), flags, text)
        painter.drawText(QRectF(0, y, width, rect.height()), flags, text)
        y += rect.height() + mm(gap)

    def rule(style: Qt.PenStyle = Qt.PenStyle.DashLine) -> None:
        nonlocal y
        pen = QPen(Qt.GlobalColor.black, mm(0.25), style)
        painter.setPen(pen)
        painter.drawLine(0, int(y), int(width), int(y))
        painter.setPen(QPen(Qt.GlobalColor.black))
        y += mm(2)

    painter.setPen(QPen(Qt.GlobalColor.black))
    if campus:
        block(campus, _font(11, bold=True), center, 1.5)
    block(TITLE_EN, _font(9.5, bold=True), center, 0.3)
    block(TITLE_ZH, _font(9.5, bold=True), center, 2)
    rule()
    caption_font, value_font = _font(8.5), _font(8.5, bold=True)
    caption_width = width * 0.42
    for caption, value in lines:
        painter.setFont(caption_font)
        cap = painter.boundingRect(QRectF(0, y, caption_width, mm(30)), left, caption)
        painter.drawText(QRectF(0, y, caption_width, cap.height()), left, caption)
        painter.setFont(value_font)
        val = painter.boundingRect(QRectF(caption_width, y, width - caption_width, mm(30)),
                                   right, value)
        painter.drawText(QRectF(caption_width, y, width - caption_width, val.height()), right,
                         value)
        y += max(cap.height(), val.height()) + mm(1.2)
    y += mm(1)
    rule()
    y += mm(6)
    block(_("Signature:"), caption_font, left, 0)
    painter.drawLine(int(mm(18)), int(y - mm(1)), int(width), int(y - mm(1)))
    y += mm(4)
    block(note, _font(7), left, 0)


def receipt_pdf(result: RechargeResult, path: str | Path, *, state: str = "",
                paper: str = ROLL) -> Path:
    """Write the receipt as a PDF file; returns its path."""
    render_receipt(result, path, state=state, paper=paper)
    return Path(path)


def desk_printer(paper: str = ROLL, parent: QWidget | None = None) -> QPrinter | None:
    """The PC's default printer set up for ``paper``; when the PC has none, the one the
    operator chooses (None when they cancel)."""
    info = QPrinterInfo.defaultPrinter()
    if not info.isNull():
        printer = QPrinter(info, QPrinter.PrinterMode.HighResolution)
        printer.setPageLayout(page_layout(paper))
        return printer
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setPageLayout(page_layout(paper))
    dialog = QPrintDialog(printer, parent)
    dialog.setWindowTitle(_("Print receipt"))
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return printer
