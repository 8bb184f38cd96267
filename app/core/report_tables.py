"""What a report prints, as tables: one layout the PDF and the Excel writer both render.

A ``Document`` is a title, the campus and period, and tables; a table has typed columns
(text, money in integer cents, counts) and sections of rows (the rooms of each building); the
PDF prints each section with its subtotal and the table's total, the workbook one sheet per
table with the total as formulas. Money stays integer cents here; the writers format it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.core.cash_reports import Arrears, Journal, Shift
from app.core.finance_reports import METHODS, Figures, MonthlyReport, method_text
from app.core.recharge import receipt_number
from app.i18n import _

TEXT, MONEY, COUNT = "text", "money", "count"


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = TEXT
    width: float = 1.0  # relative


@dataclass
class Section:
    title: str
    rows: list[list]


@dataclass
class Table:
    title: str
    sheet: str  # the workbook's sheet name (31 characters at most)
    columns: list[Column]
    sections: list[Section]
    total: bool = True  # a total row (and subtotals when there are several sections)

    @property
    def rows(self) -> list[list]:
        return [r for s in self.sections for r in s.rows]

    def totals(self, rows: list[list] | None = None) -> list[int | None]:
        """Per column: the sum of a money or count column, None for text."""
        rows = self.rows if rows is None else rows
        return [sum(r[k] for r in rows) if c.kind != TEXT else None
                for k, c in enumerate(self.columns)]


@dataclass
class Document:
    kind: str  # monthly, journal, shift, arrears
    title: str
    campus: str
    period: str
    made: str  # when and by whom
    tables: list[Table]
    notes: list[str] = field(default_factory=list)
    landscape: bool = True
    signatures: bool = True
    #: The signature lines (default: preparer, reviewer, date).
    signature_labels: tuple[str, ...] | None = None
    #: The line under the title (default: "Period: ...").
    subtitle: str | None = None

    @property
    def rows(self) -> int:
        return sum(len(t.rows) for t in self.tables)


def _made(made_at: float, made_by: str) -> str:
    return _("made {time} by {operator}").format(
        time=time.strftime("%Y-%m-%d %H:%M", time.localtime(made_at)), operator=made_by or "-")


def _figure_columns() -> list[Column]:
    return [Column(_("opening balance"), MONEY), Column(_("recharges"), MONEY),
            Column(_("allowance"), MONEY), Column(_("consumption"), MONEY),
            Column(_("refunds"), MONEY), Column(_("adjustments"), MONEY),
            Column(_("closing balance"), MONEY)]


def _figure_cells(f: Figures) -> list[int]:
    """opening + recharges + allowance - consumption - refunds + adjustments = closing."""
    return [f.opening, f.recharged, f.allowance, f.consumption, f.refunds + f.carried,
            f.corrections + f.adoptions + f.other, f.closing]


def monthly_document(rep: MonthlyReport) -> Document:
    summary = Table(_("Summary by building"), _("Summary"),
                    [Column(_("building"), TEXT, 2.2), *_figure_columns()],
                    [Section("", [[name or _("(no building)"), *_figure_cells(f)]
                                  for name, f in rep.buildings])])
    names = [name for name, _f in rep.buildings]
    methods = [m for m in METHODS if rep.totals.recharges.get(m)] or list(METHODS)
    by_method = Table(_("Recharges by payment method"), _("Recharges by method"),
                      [Column(_("building"), TEXT, 2.2),
                       *(Column(method_text(m), MONEY) for m in methods)],
                      [Section("", [[name or _("(no building)"),
                                     *(f.recharges.get(m, 0) for m in methods)]
                                    for name, f in rep.buildings])])
    sections: dict[str, Section] = {}
    for line in rep.lines:
        sec = sections.get(line.building)
        if sec is None:
            sec = sections[line.building] = Section(line.building or _("(no building)"), [])
        sec.rows.append([line.building, line.room, line.number, line.occupant,
                         *_figure_cells(line.figures)])
    rooms = Table(_("Rooms"), _("Rooms"),
                  [Column(_("building"), TEXT, 1.6), Column(_("room"), TEXT, 1.0),
                   Column(_("account"), TEXT, 1.2), Column(_("occupant"), TEXT, 1.2),
                   *_figure_columns()],
                  [sections[n] for n in names if n in sections])
    title = _("Monthly electricity account report") if rep.period.month else \
        _("Electricity account report")
    if rep.building:
        title = f"{title} · {rep.building}"
    notes = [_("opening balance + recharges + allowance - consumption - refunds + adjustments "
               "= closing balance, for every room; consumption is the value of the energy "
               "used, of which the allowance is free; adjustments are corrections and "
               "balances taken over. The totals equal the ledger's.")]
    return Document("monthly", title, rep.campus, rep.period.label,
                    _made(rep.made_at, rep.made_by), [summary, by_method, rooms], notes)


def _kind_text(kind: str) -> str:
    return _("refund") if kind == "refund" else _("recharge")


def journal_document(j: Journal, title: str | None = None) -> Document:
    rows = [[time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(line.t)),
             "" if line.receipt is None else receipt_number(line.receipt), line.building,
             line.room,
             _kind_text(line.kind), method_text(line.method), line.amount_cents, line.operator,
             line.reference + ("" if line.corrected_by is None else
                               " " + _("(reversed by booking {n})").format(n=line.corrected_by))]
            for line in j.lines]
    table = Table(_("Recharges and refunds"), _("Journal"),
                  [Column(_("time"), TEXT, 1.6), Column(_("receipt"), TEXT, 0.8),
                   Column(_("building"), TEXT, 1.4), Column(_("room"), TEXT, 0.8),
                   Column(_("kind"), TEXT, 0.6), Column(_("method"), TEXT, 1.0),
                   Column(_("amount"), MONEY, 1.0), Column(_("operator"), TEXT, 0.8),
                   Column(_("reference"), TEXT, 2.2)], [Section("", rows)])
    methods = Table(_("By payment method"), _("By method"),
                    [Column(_("method"), TEXT, 2.0), Column(_("amount"), MONEY, 1.0)],
                    [Section("", [[method_text(m), c] for m, c in j.by_method.items()])])
    who = f" · {j.building}" if j.building else ""
    return Document("journal", (title or _("Recharge journal")) + who, j.campus,
                    j.period.label, _made(j.made_at, j.made_by), [methods, table])


def shift_document(s: Shift) -> Document:
    doc = journal_document(s.journal, _("Shift settlement: {cashier}").format(cashier=s.cashier))
    doc.kind = "shift"
    methods = [m for m in METHODS if s.recharges.get(m) or s.refunds.get(m)]
    doc.tables[0] = Table(_("Taken by payment method"), _("By method"),
                          [Column(_("method"), TEXT, 2.0), Column(_("recharges"), MONEY),
                           Column(_("refunds paid"), MONEY), Column(_("net"), MONEY)],
                          [Section("", [[method_text(m), s.recharges.get(m, 0),
                                         s.refunds.get(m, 0), s.net.get(m, 0)]
                                        for m in methods])])
    if s.first_receipt is None:
        doc.notes.append(_("No receipts issued."))
    else:
        doc.notes.append(_("Receipts {first} to {last}.").format(
            first=receipt_number(s.first_receipt), last=receipt_number(s.last_receipt or 0)))
        if s.gaps:
            doc.notes.append(_("Receipt numbers in this range not issued by {cashier}:")
                             .format(cashier=s.cashier))
            doc.notes.extend(g.text() for g in s.gaps)
        else:
            doc.notes.append(_("No gaps in the receipt numbers."))
    return doc


def arrears_document(a: Arrears) -> Document:
    rows = [[line.building, line.room, line.account, line.occupant, line.balance_cents]
            for line in a.lines]
    table = Table(_("Rooms at or below zero"), _("Arrears"),
                  [Column(_("building"), TEXT, 1.6), Column(_("room"), TEXT, 1.0),
                   Column(_("account"), TEXT, 1.2), Column(_("occupant"), TEXT, 1.4),
                   Column(_("balance"), MONEY, 1.2)], [Section("", rows)])
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(a.at))
    period = a.period.label if a.period else _("balances at {time}").format(time=when)
    title = _("Arrears list")
    if a.building:
        title = f"{title} · {a.building}"
    doc = Document("arrears", title, a.campus, period, _made(a.made_at, a.made_by), [table],
                   landscape=False)
    doc.notes.append(_("Balances before {time}.").format(time=when))
    return doc
