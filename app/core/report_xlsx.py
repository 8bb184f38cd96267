"""A report as an Excel workbook (openpyxl, write-only: 10,000 rooms in a second or two).

One sheet per table: a title line, the header row (frozen, with the title above it), the rows
with money as numbers (yuan, exact to the cent: ``Decimal(cents) / 100``, never a float) in the
money format ``#,##0.00``, and the total row as ``SUM`` formulas over the column, which give
the report's totals (openpyxl writes formulas without computing them; the tests compute them
from the cells).
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from app.core.progress import Progress, quiet
from app.core.report_tables import MONEY, TEXT, Document
from app.i18n import _

MONEY_FORMAT = "#,##0.00"
#: The sheet's first rows: the title, the campus and period, then the header.
HEADER_ROW = 3


def yuan(cents: int) -> Decimal:
    """Integer cents as exact yuan with two decimals."""
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def write_xlsx(doc: Document, path: Path, progress: Progress | None = None) -> Path:
    progress = progress or quiet()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    grey = PatternFill("solid", fgColor="E6E6E6")
    total_rows = max(1, doc.rows)
    done = 0
    used: set[str] = set()
    for table in doc.tables:
        name = table.sheet[:31]
        while name in used:
            name = name[:28] + f"_{len(used)}"
        used.add(name)
        ws = wb.create_sheet(name)
        ws.freeze_panes = f"A{HEADER_ROW + 1}"
        for k, c in enumerate(table.columns):
            wide = 16 if c.kind != TEXT else max(10, int(9 * c.width))
            ws.column_dimensions[get_column_letter(k + 1)].width = wide
        title = WriteOnlyCell(ws, f"{doc.title}: {table.title}")
        title.font = Font(bold=True, size=13)
        ws.append([title])
        ws.append([doc.campus, _("Period: {period}").format(period=doc.period), doc.made])
        head = []
        for c in table.columns:
            cell = WriteOnlyCell(ws, c.header)
            cell.font, cell.fill = bold, grey
            cell.alignment = Alignment(horizontal="center")
            head.append(cell)
        ws.append(head)
        rows = table.rows
        for r in rows:
            out = []
            for v, c in zip(r, table.columns, strict=True):
                if c.kind == MONEY:
                    cell = WriteOnlyCell(ws, yuan(v))
                    cell.number_format = MONEY_FORMAT
                    out.append(cell)
                else:
                    out.append(v)
            ws.append(out)
            done += 1
            if done % 2000 == 0:
                progress.step(done, total_rows, _("writing the workbook"))
        if table.total:
            first, last = HEADER_ROW + 1, HEADER_ROW + len(rows)
            out = []
            for k, c in enumerate(table.columns):
                if k == 0:
                    cell = WriteOnlyCell(ws, _("total"))
                elif c.kind == TEXT:
                    cell = WriteOnlyCell(ws, None)
                else:
                    col = get_column_letter(k + 1)
                    cell = WriteOnlyCell(ws, f"=SUM({col}{first}:{col}{last})" if rows else 0)
                    if c.kind == MONEY:
                        cell.number_format = MONEY_FORMAT
                cell.font = bold
                out.append(cell)
            ws.append(out)
    if doc.notes:
        ws = wb.create_sheet(_("Notes")[:31])
        for note in doc.notes:
            ws.append([note])
    tmp = path.with_name(path.name + ".part")
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    progress.step(total_rows, total_rows, _("writing the workbook"))
    return path
