"""What the desk shows of an account: its meters' money, recent use and recent bookings.

Plain functions that fill widgets from a room's overview (``core.queries.RoomOverview``),
shared by the desk's dialogs.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QLabel, QTableWidget, QTableWidgetItem

from app.core.operators import operator_text
from app.core.queries import DAILY_KINDS, RoomOverview, TxnRecord
from app.core.queries import booking_kind_text as kind_text
from app.core.recharge import METHODS
from app.i18n import N_, _
from app.ui import fmt

RECENT_DAYS = 7
RECENT_TXNS = 6
MODE_TEXT = {"meter": N_("the meter"), "station": N_("the station")}


def small_table(columns: int, rows: int = 0) -> QTableWidget:
    table = QTableWidget(rows, columns)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.verticalHeader().setVisible(False)
    table.setAlternatingRowColors(True)
    return table


def cell(text: str, align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def meter_text(room: RoomOverview) -> str:
    """The meters' money (meter-keeps-money) and when they were last read."""
    if not room.meters:
        return _("no meter")
    parts = []
    keeps_money = room.account is not None and room.account.mode == "meter"
    for m in room.meters:
        if m.read_at is None:
            parts.append(_("never read"))
        elif keeps_money:
            parts.append(_("{money} on the meter, read {time}").format(
                money=fmt.money(m.money_cents), time=fmt.clock(m.read_at)))
        else:
            parts.append(_("read {time}").format(time=fmt.clock(m.read_at)))
    return "; ".join(parts)


def fill_use(table: QTableWidget, total: QLabel, room: RoomOverview) -> None:
    """The last days' energy, one column a day, and their total."""
    days = room.use_days
    table.setColumnCount(len(days))
    table.setHorizontalHeaderLabels([d[5:] for d, _wh in days])
    for col, (_day, wh) in enumerate(days):
        table.setItem(0, col, cell(fmt.kwh(wh).removesuffix(" kWh"), align_right=True))
    total.setText(_("{total} in {n} days").format(
        total=fmt.kwh(sum(wh for _d, wh in days)), n=len(days)))


def method_text(method: str) -> str:
    label = METHODS.get(method)
    return _(label) if label else method


def fill_txns(table: QTableWidget, txns: list[TxnRecord]) -> None:
    """An account's latest bookings."""
    table.setRowCount(len(txns))
    for row, t in enumerate(txns):
        when = t.memo if t.kind in DAILY_KINDS else \
            time.strftime("%Y-%m-%d %H:%M", time.localtime(t.t))  # a day's sum: the day
        values = [when, kind_text(t.kind), method_text(t.method), fmt.money(t.amount_cents),
                  operator_text(t.operator)]
        for col, text in enumerate(values):
            table.setItem(row, col, cell(text, align_right=col == 3))
