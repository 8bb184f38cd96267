"""The rooms of a building or floor (or of the whole campus) with their live values.

A QAbstractTableModel over (room, meter) pairs, sorted through a QSortFilterProxyModel on a
numeric sort role (so 1200 W sorts above 300 W); a live batch repaints only the changed rows.
"""

from __future__ import annotations

import math

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.changes import Changes
from app.core.live import LiveBatch, MeterLive
from app.i18n import N_, _, ngettext
from app.ui import fmt
from app.ui.context import AppContext
from app.ui.icons import state_icon
from app.ui.live_store import LOW_BALANCE_CENTS, STATE_ORDER, MeterState

SORT_ROLE = Qt.ItemDataRole.UserRole + 2
NODE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
_ModelIndex = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()  # the invisible root, as a default argument
_MISSING = -math.inf  # unknown values sort below every number

#: Money first after the state: the balance (the books), then what the meter holds.
COLUMNS = (
    ("room", N_("Room")), ("occupants", N_("Occupants")), ("state", N_("State")),
    ("balance", N_("Balance")), ("money", N_("Meter money")), ("relay", N_("Relay")),
    ("power", N_("Power")), ("energy", N_("Energy")), ("voltage", N_("Voltage")),
    ("current", N_("Current")), ("power_factor", N_("PF")), ("frequency", N_("Frequency")),
    ("read_at", N_("Last read")),
)
COL = {key: i for i, (key, _caption) in enumerate(COLUMNS)}
_TEXT_COLUMNS = {COL["room"], COL["occupants"], COL["state"], COL["relay"]}
#: Each value column's MeterValues attribute.
_ATTR = {"voltage": "voltage_v", "current": "current_a", "power": "active_power_w",
         "power_factor": "power_factor", "frequency": "frequency_hz", "energy": "energy_wh",
         "money": "remaining_money_cents", "read_at": "read_at"}
_FORMAT = {"voltage": fmt.volts, "current": fmt.amps, "power": fmt.watts,
           "power_factor": fmt.power_factor, "frequency": fmt.hertz, "energy": fmt.kwh,
           "money": fmt.money, "read_at": fmt.clock}
_GREY = QBrush(QColor("#9e9e9e"))
_WARN = QBrush(QColor("#c62828"))


def _num(v) -> float:
    return _MISSING if v is None else float(v)


class RoomTableModel(QAbstractTableModel):
    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.rows: list[tuple[int, int | None]] = []  # (room node, meter)
        self.row_of_meter: dict[int, list[int]] = {}
        self._occupants: list[str] = []
        self._order: list[int] = []

    def set_node(self, node_id: int) -> None:
        """Show the rooms under ``node_id``: O(rooms), no per-cell work."""
        idx = self.ctx.index
        self.beginResetModel()
        self.rows, self.row_of_meter = [], {}
        for leaf in idx.leaves_under(node_id):
            for m in idx.meters_of.get(leaf) or [None]:
                if m is not None:
                    self.row_of_meter.setdefault(m, []).append(len(self.rows))
                self.rows.append((leaf, m))
        self._occupants = [fmt.name_list(idx.occupant_names(leaf)) for leaf, _m in self.rows]
        self._order = list(range(len(self.rows)))
        self.endResetModel()

    def rowCount(self, parent: _ModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _ModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _(COLUMNS[section][1])
        return None

    def balance(self, row: int) -> int | None:
        """The room's ledger balance (None: no open account)."""
        account = self.ctx.balances.get(self.rows[row][0])
        return account.balance_cents if account is not None else None

    def _state(self, row: int) -> MeterState:
        return self.ctx.meter_state(*self.rows[row])

    def live(self, row: int) -> MeterLive | None:
        meter_id = self.rows[row][1]
        return self.ctx.store.meter(meter_id) if meter_id is not None else None

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, col)
        if role == SORT_ROLE:
            return self._sort_value(row, col)
        if role == Qt.ItemDataRole.DecorationRole and col == COL["room"]:
            return state_icon(self._state(row))
        if role == Qt.ItemDataRole.TextAlignmentRole and col not in _TEXT_COLUMNS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            balance = self.balance(row)
            if col == COL["balance"] and balance is not None and balance < LOW_BALANCE_CENTS:
                return _WARN
            live = self.live(row)
            if live is None or not live.online:
                return _GREY
            v = live.values
            if v is not None and col == COL["money"] and v.remaining_money_cents is not None \
                    and v.remaining_money_cents < LOW_BALANCE_CENTS:
                return _WARN
            if v is not None and col == COL["relay"] and v.relay_closed is False:
                return _WARN
        if role == NODE_ID_ROLE:
            return self.rows[row][0]
        return None

    def _text(self, row: int, col: int) -> str:
        node_id, meter_id = self.rows[row]
        key = COLUMNS[col][0]
        if key == "room":
            node = self.ctx.index.nodes[node_id]
            return node.code or node.name
        if key == "occupants":
            return self._occupants[row]
        if key == "balance":
            return fmt.money(self.balance(row))
        live = self.live(row)
        if key == "state":
            return _(self._state(row).value) if meter_id is not None else _("no meter")
        if live is None or live.values is None:
            return fmt.NONE
        if key == "relay":
            return fmt.relay(live.values, with_mode=False)  # keep power shows in the state
        return _FORMAT[key](getattr(live.values, _ATTR[key]))

    def _sort_value(self, row: int, col: int):
        key = COLUMNS[col][0]
        if key == "room":
            return self._order[row]
        if key == "occupants":
            return self._occupants[row]
        if key == "balance":
            return _num(self.balance(row))
        live = self.live(row)
        if key == "state":  # most urgent first
            return float(STATE_ORDER[self._state(row)])
        if live is None or live.values is None:
            return _MISSING
        if key == "relay":
            v = live.values
            return _MISSING if v.relay_closed is None else float(v.relay_closed)
        return _num(getattr(live.values, _ATTR.get(key, "read_at")))

    def apply(self, batch: LiveBatch) -> int:
        """Repaint the rows of the meters in ``batch``, in contiguous runs."""
        return self._repaint(sorted(r for m in batch.meters
                                    for r in self.row_of_meter.get(m.meter_id, ())))

    def on_changes(self, changes: Changes) -> int:
        """Repaint the rows of the rooms an act changed (their balance, their state)."""
        return self._repaint(sorted(r for r, (node_id, _m) in enumerate(self.rows)
                                    if node_id in changes.nodes))

    def _repaint(self, rows: list[int]) -> int:
        if not rows:
            return 0
        last = len(COLUMNS) - 1
        start = prev = rows[0]
        for r in [*rows[1:], None]:
            if r is not None and r == prev + 1:
                prev = r
                continue
            self.dataChanged.emit(self.index(start, 0), self.index(prev, last))
            if r is not None:
                start = prev = r
        return len(rows)

    def totals(self) -> tuple[int, int, float]:
        """(meters online, meters, total power W) of the rows shown."""
        online = total = 0
        power = 0.0
        for _node, meter_id in self.rows:
            if meter_id is None:
                continue
            total += 1
            live = self.ctx.store.meter(meter_id)
            if live is not None and live.online:
                online += 1
                if live.values is not None:
                    power += live.values.active_power_w or 0.0
        return online, total, power


class RoomTable(QWidget):
    roomActivated = Signal(int)  # a room's node id (double-click)

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.node_id = 0
        self._sized = False
        self.title = QLabel()
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.title.setFont(font)
        self.summary = QLabel()
        self.model = RoomTableModel(ctx, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setDynamicSortFilter(True)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(COL["room"], Qt.SortOrder.AscendingOrder)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setResizeContentsPrecision(50)
        self.view.doubleClicked.connect(
            lambda index: self.roomActivated.emit(int(index.data(NODE_ID_ROLE))))
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.summary)
        layout.addWidget(self.view)

    def show_node(self, node_id: int) -> None:
        self.node_id = node_id
        self.model.set_node(node_id)
        if not self._sized:  # once; after that the operator's widths stay (but grow to fit)
            self.view.resizeColumnsToContents()
            self._sized = True
        self.retranslate()

    def fit_columns(self) -> None:
        """Widen any column whose content (or heading) no longer fits: a number is never cut;
        a column the operator made wider stays wider."""
        header = self.view.horizontalHeader()
        for col in range(len(COLUMNS)):
            wanted = max(self.view.sizeHintForColumn(col), header.sectionSizeHint(col))
            if header.sectionSize(col) < wanted:
                header.resizeSection(col, wanted)

    def restore_header(self, state) -> None:
        """The remembered column widths and sort order."""
        self._sized = self.view.horizontalHeader().restoreState(state)

    def retranslate(self) -> None:
        self.model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(COLUMNS) - 1)
        self.view.viewport().update()
        if self._sized:  # the other language's words and numbers are wider or narrower
            self.fit_columns()
        if self.node_id:
            self.title.setText(self.ctx.index.path(self.node_id))
            self._update_summary()

    def _update_summary(self) -> None:
        online, total, power = self.model.totals()
        rooms = len({n for n, _m in self.model.rows})
        self.summary.setText(
            ngettext("{rooms} room", "{rooms} rooms", rooms).format(rooms=rooms) + " · "
            + _("{online} of {total} meters answer").format(online=online, total=total)
            + " · " + _("total power {power}").format(power=fmt.watts(power)))

    def on_batch(self, batch: LiveBatch) -> None:
        if self.model.apply(batch):
            self._update_summary()
            self.fit_columns()

    def on_changes(self, changes: Changes) -> None:
        if changes.campus and self.node_id:
            self.model.set_node(self.node_id)
        elif self.model.on_changes(changes):
            self._update_summary()
