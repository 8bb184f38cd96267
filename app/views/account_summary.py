"""What the desk shows of an account: its meters' money, recent use and recent bookings.

Plain functions that fill widgets from storage records, shared by the desk's dialogs.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QLabel, QTableWidget, QTableWidgetItem

from app.core.recharge import METHODS
from app.i18n import N_, _
from app.storage import accounts as store
from app.storage import ledger, readings
from app.storage.accounts import AccountRecord
from app.ui import fmt

RECENT_DAYS = 7
RECENT_TXNS = 6
KIND_TEXT = {"recharge": N_("recharge"), "consumption": N_("electricity used"),
             "allowance": N_("free allowance"), "opening": N_("opening balance"),
             "refund": N_("refund"), "carry": N_("carried over")}
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


def meter_text(acct: AccountRecord, meter_ids: list[int]) -> str:
    """The meters' money (meter-keeps-money) and when they were last read."""
    if not meter_ids:
        return _("no meter")
    parts = []
    for meter_id in meter_ids:
        money, _count, read_at = store.meter_money(meter_id)
        if read_at is None:
            parts.append(_("never read"))
        elif acct.mode == "meter":
            parts.append(_("{money} on the meter, read {time}").format(
                money=fmt.money(money), time=fmt.clock(read_at)))
        else:
            parts.append(_("read {time}").format(time=fmt.clock(read_at)))
    return "; ".join(parts)

def fill_use(table: QTableWidget, total: QLabel, meter_ids: list[int]) -> None:
    """The last days' energy, one column a day, and their total."""
    today = date.today()
    days = [(today - timedelta(days=n)).isoformat() for n in range(RECENT_DAYS - 1, -1, -1)]
    per_day = dict.fromkeys(days, 0)
    for meter_id in meter_ids:
        for day, wh in readings.daily_energy(meter_id)[-RECENT_DAYS * 2:]:
            if day in per_day:
                per_day[day] += int(wh)
    table.setHorizontalHeaderLabels([d[5:] for d in days])
    for col, day in enumerate(days):
        table.setItem(0, col, cell(fmt.kwh(per_day[day]).removesuffix(" kWh"),
                                             align_right=True))
    total.setText(_("{total} in {n} days").format(
        total=fmt.kwh(sum(per_day.values())), n=RECENT_DAYS))

def fill_txns(table: QTableWidget, account_id: int) -> None:
    """The account's latest bookings."""
    txns = ledger.txns(account_id, limit=RECENT_TXNS)
    table.setRowCount(len(txns))
    for row, t in enumerate(txns):
        method = METHODS.get(t.method)
        kind = KIND_TEXT.get(t.kind)
        values = [time.strftime("%Y-%m-%d %H:%M", time.localtime(t.t)),
                  _(kind) if kind else t.kind, _(method) if method else t.method,
                  fmt.money(t.amount_cents), t.operator]
        for col, text in enumerate(values):
            table.setItem(row, col, cell(text, align_right=col == 3))
