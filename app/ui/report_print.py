"""A report's tables drawn with QPainter on a QPrinter: what print preview shows and the
printer prints (the PDF file is reportlab's, ``core/report_pdf``; this is the same
``Document`` for Qt's printing).

Rows have one fixed height, so the pages are known before drawing: each page has the campus,
title and period at the top, "Page N of M" at the foot, and the header row of the table it
continues; each section ends with its subtotal, each table with its total; the signature lines
for the preparer and the reviewer end the document.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QFont, QPageLayout, QPageSize, QPainter
from PySide6.QtPrintSupport import QPrinter

from app.core.money import format_cents
from app.core.report_tables import MONEY, TEXT, Document, Table
from app.errors import UserFacingError
from app.i18n import _
from app.ui.app import print_font

ROWS_GAP = 1.25  # a row's height in lines of the body font


@dataclass(frozen=True)
class _Line:
    kind: str  # title, section, header, row, total, note, sign
    table: Table | None = None
    cells: tuple = ()
    text: str = ""


def page_layout(doc: Document) -> QPageLayout:
    orientation = QPageLayout.Orientation.Landscape if doc.landscape \
        else QPageLayout.Orientation.Portrait
    return QPageLayout(QPageSize(QPageSize.PageSizeId.A4), orientation,
                       QMarginsF(12, 14, 12, 12), QPageLayout.Unit.Millimeter)


def _lines(doc: Document) -> list[_Line]:
    out: list[_Line] = []
    for t in doc.tables:
        out.append(_Line("title", t, text=t.title))
        sections = [s for s in t.sections if s.rows]
        several = len(sections) > 1
        for sec in sections:
            if several and sec.title:
                out.append(_Line("section", t, text=sec.title))
            out.append(_Line("header", t))
            out.extend(_Line("row", t, tuple(r)) for r in sec.rows)
            if several and t.total:
                out.append(_Line("total", t, tuple(t.totals(sec.rows)), _("subtotal")))
        if not sections:
            out.append(_Line("header", t))
        if t.total:
            out.append(_Line("total", t, tuple(t.totals()), _("total")))
    out.extend(_Line("note", text=n) for n in doc.notes)
    if doc.signatures:
        out.append(_Line("sign"))
    return out


def _pages(lines: list[_Line], per_page: int) -> list[list[_Line]]:
    """Split into pages; a page that continues a table starts with its header row."""
    pages: list[list[_Line]] = [[]]
    current: _Line | None = None  # the header row in force
    for line in lines:
        if line.kind == "header":
            current = line
        elif line.kind == "title":
            current = None
        if len(pages[-1]) >= per_page:
            pages.append([current] if current is not None and line.kind in ("row", "total")
                         else [])
        pages[-1].append(line)
    return pages


def _cell_text(value, kind: str) -> str:
    if value is None:
        return ""
    if kind == TEXT:
        return str(value)
    if kind == MONEY:
        return format_cents(value, symbol=True).replace("¥", "")
    return str(value)


def paint_document(doc: Document, printer: QPrinter) -> int:
    """Draw ``doc`` on ``printer`` (its page layout set to ``page_layout(doc)``). Returns the
    number of pages."""
    painter = QPainter()
    if not painter.begin(printer):
        raise UserFacingError(_("The printer could not be opened."))
    try:
        return _paint(doc, printer, painter)
    finally:
        painter.end()


def _paint(doc: Document, printer: QPrinter, p: QPainter) -> int:
    area = printer.pageLayout().paintRectPixels(printer.resolution())
    w, h = float(area.width()), float(area.height())
    body, bold, small = print_font(7.5), print_font(7.5, True), print_font(7)
    p.setFont(body)
    row_h = p.fontMetrics().height() * ROWS_GAP
    top = row_h * 4.5  # campus, title, period and a gap
    bottom = row_h * 2
    # room for the notes' second lines and the signatures on the last page
    per_page = max(5, int((h - top - bottom) // row_h) - 2 - len(doc.notes) - 2)
    pages = _pages(_lines(doc), per_page)
    for n, page in enumerate(pages, start=1):
        if n > 1:
            printer.newPage()
        p.setFont(print_font(13, True))
        p.drawText(QRectF(0, 0, w, row_h * 2), Qt.AlignmentFlag.AlignCenter, doc.title)
        p.setFont(small)
        p.drawText(QRectF(0, row_h * 2, w, row_h), Qt.AlignmentFlag.AlignCenter,
                   f"{doc.campus}  ·  " + _("Period: {period}").format(period=doc.period))
        p.drawText(QRectF(0, row_h * 3, w, row_h), Qt.AlignmentFlag.AlignRight, doc.made)
        p.drawText(QRectF(0, h - row_h, w, row_h), Qt.AlignmentFlag.AlignCenter,
                   _("Page {n} of {m}").format(n=n, m=len(pages)))
        y = top
        for line in page:
            _draw_line(p, line, y, w, row_h, body, bold)
            y += row_h * {"sign": 3, "note": 2}.get(line.kind, 1)
    return len(pages)


def _draw_line(p: QPainter, line: _Line, y: float, w: float, row_h: float, body: QFont,
               bold: QFont) -> None:
    if line.kind in ("title", "section"):
        p.setFont(bold)
        p.drawText(QRectF(0, y, w, row_h), Qt.AlignmentFlag.AlignVCenter, line.text)
        return
    if line.kind == "note":
        p.setFont(body)
        p.drawText(QRectF(0, y, w, row_h * 2), Qt.TextFlag.TextWordWrap, line.text)
        return
    if line.kind == "sign":
        p.setFont(print_font(10))
        texts = (_("Prepared by: ____________"), _("Reviewed by: ____________"),
                 _("Date: ____________"))
        for k, text in enumerate(texts):
            p.drawText(QRectF(w * k / 3, y + row_h, w / 3, row_h * 2),
                       Qt.AlignmentFlag.AlignVCenter, text)
        return
    t = line.table
    assert t is not None
    weights = [c.width for c in t.columns]
    xs = [0.0]
    for wt in weights:
        xs.append(xs[-1] + w * wt / sum(weights))
    p.setFont(bold if line.kind in ("header", "total") else body)
    pad = row_h * 0.2
    for k, c in enumerate(t.columns):
        rect = QRectF(xs[k], y, xs[k + 1] - xs[k], row_h)
        p.drawRect(rect)
        if line.kind == "header":
            text, align = c.header, Qt.AlignmentFlag.AlignCenter
        else:
            value = line.cells[k] if k < len(line.cells) else None
            text = line.text if line.kind == "total" and k == 0 else _cell_text(value, c.kind)
            align = Qt.AlignmentFlag.AlignLeft if c.kind == TEXT else Qt.AlignmentFlag.AlignRight
        p.drawText(rect.adjusted(pad, 0, -pad, 0), align | Qt.AlignmentFlag.AlignVCenter,
                   p.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight,
                                              int(rect.width() - 2 * pad)))
