"""A report as a PDF: A4, Chinese in an embedded CJK font, header with the campus and the
period, page numbers "第 N 页 / 共 M 页", money right-aligned, table headers repeated on every
page, signature lines for the preparer and the reviewer (reportlab platypus).

Every text is set in the one CJK font (digits too), so every font in the file is embedded (a
PDF viewer never substitutes one). The file is written beside the target and renamed when done:
a cancelled or failed report leaves no half-written file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from app.core.money import format_cents
from app.core.progress import Progress, quiet
from app.core.report_tables import MONEY, TEXT, Document, Section
from app.core.report_tables import Table as ReportTable
from app.errors import UserFacingError
from app.i18n import _

FONT = "VoltKeeperCJK"
#: Where the CJK font usually is (Debian's fonts-wqy-microhei, then Windows' YaHei).
FONT_FILES = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
              "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
              "/usr/share/fonts/truetype/wqy-microhei/wqy-microhei.ttc",
              r"C:\Windows\Fonts\msyh.ttc")
FONT_ENV = "VOLTKEEPER_REPORT_FONT"
#: Rows per platypus table: long tables split page by page, and splitting a short one is cheap.
CHUNK = 200
BODY_SIZE = 7.5

_registered: str | None = None


def find_font() -> Path:
    """The CJK font file: ``VOLTKEEPER_REPORT_FONT``, the known places, else fontconfig."""
    env = os.environ.get(FONT_ENV)
    candidates = [env] if env else []
    candidates += list(FONT_FILES)
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(["fc-match", "-f", "%{file}", "WenQuanYi Micro Hei:lang=zh-cn"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and "wqy" in out.lower() and Path(out).is_file():
            return Path(out)
    raise UserFacingError(_("no Chinese font for reports: install WenQuanYi Micro Hei "
                            "(apt install fonts-wqy-microhei) or set {env} to a TrueType "
                            "font file").format(env=FONT_ENV))


def register_font() -> str:
    global _registered
    if _registered is None:
        path = find_font()
        index = 0 if path.suffix.lower() == ".ttc" else None
        font = TTFont(FONT, str(path), subfontIndex=index) if index is not None \
            else TTFont(FONT, str(path))
        pdfmetrics.registerFont(font)
        _registered = FONT
    return _registered


def money_text(cents: int) -> str:
    return format_cents(cents, symbol=True).replace("¥", "")


def _numbered_canvas(footer: str):
    class NumberedCanvas(canvas.Canvas):
        """Keeps each page until the end, then writes "page N of M" on all of them."""

        def __init__(self, *args, **kwargs):
            kwargs["initialFontName"] = FONT  # never the unembedded Helvetica
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont(FONT, 8)
                w, _h = self._pagesize
                self.drawCentredString(w / 2, 8 * mm, footer.format(n=self._pageNumber,
                                                                    m=total))
                super().showPage()
            super().save()

    return NumberedCanvas


def _cell(value, kind: str) -> str:
    if kind == MONEY:
        return money_text(value)
    if kind == TEXT:
        return "" if value is None else str(value)
    return str(value)


def _grid(table: ReportTable, rows: list[list], widths: list[float], extra: list[list],
          bold_from: int) -> Table:
    header = [c.header for c in table.columns]
    data = [header] + [[_cell(v, c.kind) for v, c in zip(r, table.columns, strict=True)]
                       for r in rows] + extra
    t = Table(data, colWidths=widths, repeatRows=1)
    style = [("FONT", (0, 0), (-1, -1), FONT, BODY_SIZE),
             ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
             ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6e6e6")),
             ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
             ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
             ("ALIGN", (0, 0), (-1, 0), "CENTER")]
    for k, c in enumerate(table.columns):
        if c.kind != TEXT:
            style.append(("ALIGN", (k, 1), (k, -1), "RIGHT"))
    if extra:
        style.append(("BACKGROUND", (0, bold_from), (-1, -1), colors.HexColor("#f2f2f2")))
    t.setStyle(TableStyle(style))
    return t


def _total_row(table: ReportTable, rows: list[list], label: str) -> list[str]:
    sums = table.totals(rows)
    out = [_cell(s, c.kind) if s is not None else "" for s, c in zip(sums, table.columns,
                                                                      strict=True)]
    out[0] = label
    return out


def _table_flowables(table: ReportTable, width: float, styles: dict) -> list:
    weights = [c.width for c in table.columns]
    widths = [width * w / sum(weights) for w in weights]
    out: list = [Paragraph(table.title, styles["h2"])]
    several = len([s for s in table.sections if s.rows]) > 1
    sections: list[Section] = [s for s in table.sections if s.rows] or [Section("", [])]
    for sec in sections:
        if several and sec.title:
            out.append(Paragraph(sec.title, styles["h3"]))
        chunks = [sec.rows[k:k + CHUNK] for k in range(0, len(sec.rows), CHUNK)] or [[]]
        for k, chunk in enumerate(chunks):
            extra = []
            if k == len(chunks) - 1 and table.total:
                if several:
                    extra.append(_total_row(table, sec.rows, _("subtotal")))
                else:
                    extra.append(_total_row(table, table.rows, _("total")))
            out.append(_grid(table, chunk, widths, extra, len(chunk) + 1))
    if several and table.total:
        out.append(Spacer(1, 2 * mm))
        out.append(_grid(table, [], widths, [_total_row(table, table.rows, _("total"))], 1))
    out.append(Spacer(1, 5 * mm))
    return out


def write_pdf(doc: Document, path: Path, progress: Progress | None = None) -> Path:
    """Write ``doc`` to ``path`` (replaced only when the whole file is written)."""
    progress = progress or quiet()
    register_font()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = landscape(A4) if doc.landscape else A4
    styles = {
        "title": ParagraphStyle("t", fontName=FONT, fontSize=15, leading=19,
                                alignment=TA_CENTER, spaceAfter=2 * mm),
        "sub": ParagraphStyle("s", fontName=FONT, fontSize=9, leading=12, alignment=TA_CENTER),
        "h2": ParagraphStyle("h2", fontName=FONT, fontSize=10.5, leading=14, spaceBefore=2 * mm,
                             spaceAfter=1.5 * mm),
        "h3": ParagraphStyle("h3", fontName=FONT, fontSize=9, leading=12, spaceBefore=1 * mm,
                             spaceAfter=1 * mm),
        "note": ParagraphStyle("n", fontName=FONT, fontSize=8, leading=11),
    }
    tmp = path.with_name(path.name + ".part")
    template = SimpleDocTemplate(str(tmp), pagesize=size, leftMargin=12 * mm,
                                 rightMargin=12 * mm, topMargin=16 * mm, bottomMargin=15 * mm,
                                 title=doc.title, author=doc.campus, subject=doc.period)
    width = size[0] - 24 * mm
    estimate = max(1, doc.rows // 32 + len(doc.tables) + 1)
    header = f"{doc.campus}  ·  {doc.title}  ·  {doc.period}"

    def on_page(c: canvas.Canvas, d) -> None:
        c.saveState()
        c.setFont(FONT, 8)
        c.drawString(12 * mm, size[1] - 10 * mm, header)
        c.drawRightString(size[0] - 12 * mm, size[1] - 10 * mm, doc.made)
        c.setLineWidth(0.4)
        c.line(12 * mm, size[1] - 11.5 * mm, size[0] - 12 * mm, size[1] - 11.5 * mm)
        c.restoreState()
        progress.step(min(d.page, estimate), max(estimate, d.page), _("writing the PDF"))

    story: list = [Paragraph(doc.campus, styles["sub"]), Paragraph(doc.title, styles["title"]),
                   Paragraph(doc.subtitle or _("Period: {period}").format(period=doc.period),
                             styles["sub"]),
                   Spacer(1, 4 * mm)]
    for t in doc.tables:
        story += _table_flowables(t, width, styles)
    for note in doc.notes:
        story.append(Paragraph(note, styles["note"]))
    if doc.signatures:
        labels = doc.signature_labels or (_("Prepared by: ____________"),
                                          _("Reviewed by: ____________"), _("Date: ____________"))
        sig = Table([list(labels)], colWidths=[width / len(labels)] * len(labels))
        sig.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), FONT, 10),
                                 ("TOPPADDING", (0, 0), (-1, -1), 12)]))
        story.append(KeepTogether([Spacer(1, 8 * mm), sig]))
    try:
        template.build(story, onFirstPage=on_page, onLaterPages=on_page,
                       canvasmaker=_numbered_canvas(_("Page {n} of {m}")))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
