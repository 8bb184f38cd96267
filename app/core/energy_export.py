"""The energy analysis's tables as an Excel workbook (openpyxl): one sheet per table, numbers as
numbers (kWh with a number format, shares as percentages), frozen headers, in the reader's
language. Qt-free: the window and the portal write the same file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from app.core.energy_analysis import Analysis, Intraday
from app.i18n import _

KWH_FORMAT = "#,##0.000"
PERCENT_FORMAT = "0.0%"


def _kwh(wh: int | None) -> Decimal | None:
    """Wh as an exact kWh number for a cell (no float rounding on the way)."""
    return None if wh is None else Decimal(wh).scaleb(-3)


def _sheet(wb: Workbook, title: str, headers: list[str], rows: list[list],
           formats: dict[int, str]) -> None:
    ws = wb.create_sheet(title[:31])
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(row)
    for col, fmt in formats.items():
        for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = fmt
    for col, header in enumerate(headers, start=1):
        width = max([len(str(header))] + [len(str(r[col - 1] or "")) for r in rows[:200]])
        ws.column_dimensions[get_column_letter(col)].width = min(max(width + 4, 10), 60)
    ws.freeze_panes = "A2"


def write_workbook(analysis: Analysis, path: Path | str) -> Path:
    """Write the analysis's tables to ``path`` (an .xlsx file); returns the path."""
    path = Path(path)
    a = analysis
    wb = Workbook()
    wb.remove(wb.active)
    marks: dict[str, list[str]] = {}
    for m in a.anomalies:
        marks.setdefault(m.day, []).append(f"{m.room}: {m.kind_text}")
    _sheet(wb, _("Daily use"), [_("Day"), _("kWh"), _("Anomalies")],
           [[d.day, _kwh(d.wh), "; ".join(marks.get(d.day, []))] for d in a.daily.days],
           {2: KWH_FORMAT})
    _sheet(wb, _("Intraday"), [_("Time"), _("kWh")],
           [[Intraday.slot_label(k), _kwh(wh)] for k, wh in enumerate(a.intraday.slot_wh)],
           {2: KWH_FORMAT})
    _sheet(wb, _("Month vs last year"),
           [_("Day of month"), a.month.month + " " + _("kWh"),
            a.month.last_year + " " + _("kWh")],
           [[d.day, _kwh(d.wh), _kwh(d.last_year_wh)] for d in a.month.days],
           {2: KWH_FORMAT, 3: KWH_FORMAT})
    rank = a.ranking
    rows = [[k, r.room, r.path, _kwh(r.wh), Decimal(r.share_permille).scaleb(-3)]
            for k, r in enumerate(rank.rooms, start=1)]
    if rank.others_count:
        rows.append([None, _("{n} others").format(n=rank.others_count), "",
                     _kwh(rank.others_wh), Decimal(rank.others_permille).scaleb(-3)])
    _sheet(wb, _("Top consumers"), [_("Rank"), _("Room"), _("Where"), _("kWh"), _("Share")],
           rows, {4: KWH_FORMAT, 5: PERCENT_FORMAT})
    _sheet(wb, _("Anomalies"), [_("Day"), _("Room"), _("Where"), _("What"), _("kWh"),
                                _("Norm kWh"), _("Detail")],
           [[m.day, m.room, m.path, m.kind_text, _kwh(m.wh), _kwh(m.norm_wh), m.reason_text]
            for m in a.anomalies], {5: KWH_FORMAT, 6: KWH_FORMAT})
    wb.properties.title = _("Energy analysis: {node}, {first} to {last}").format(
        node=a.node, first=a.daily.first, last=a.daily.last)
    tmp = path.with_name(path.name + ".part")
    wb.save(tmp)
    tmp.replace(path)
    return path
