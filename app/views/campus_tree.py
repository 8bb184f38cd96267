"""The building / dorm tree with its search box.

One QAbstractItemModel over the CampusIndex (no item objects: an index's internal id is the node
id), built in O(n); a live batch repaints only the rows whose state changed. Search filters the
tree through a recursive QSortFilterProxyModel fed by ``CampusIndex.search``. Each room carries
its worst open alarm (a badge of the alarm's level on its icon, its name in the level's colour,
the alarm's text in its tooltip), rolled up to its floor and building (``set_alarms``).
"""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import QLabel, QLineEdit, QMenu, QTreeView, QVBoxLayout, QWidget

from app.core.alarms import RoomAlarm
from app.core.changes import Changes
from app.core.live import LiveBatch
from app.i18n import _, ngettext
from app.ui import fmt
from app.ui.context import AppContext
from app.ui.icons import ALARM_COLOURS, container_icon, state_icon
from app.ui.live_store import MeterState

NODE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
_ModelIndex = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()  # the invisible root, as a default argument
#: Above this many matches the filtered tree is not expanded fully.
EXPAND_LIMIT = 300


class CampusTreeModel(QAbstractItemModel):
    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.index_ = ctx.index
        self._state: dict[int, MeterState] = {}  # leaf node -> its worst meter state
        self._online: dict[int, bool] = {}  # meter -> answers now
        self._counts: dict[int, list[int]] = {}  # container node -> [online, total]
        self._alarms: dict[int, RoomAlarm] = {}  # room -> its worst open alarm
        #: node -> (the worst open alarm's level in it or under it, rooms with open alarms)
        self._alarm_up: dict[int, tuple[int, int]] = {}
        idx, store = ctx.index, ctx.store
        for node_id, meter_ids in idx.meters_of.items():
            if node_id not in idx.nodes:
                continue
            self._state[node_id] = ctx.room_state(node_id)
            for m in meter_ids:
                live = store.meter(m)
                on = bool(live and live.online)
                self._online[m] = on
                for anc in idx.ancestors(node_id):
                    c = self._counts.setdefault(anc, [0, 0])
                    c[0] += on
                    c[1] += 1

    # -- structure -----------------------------------------------------------------------------
    def index(self, row: int, column: int, parent: _ModelIndex = _ROOT) -> QModelIndex:
        parent_id = parent.internalId() if parent.isValid() else None
        kids = self.index_.children.get(parent_id, ())
        if 0 <= row < len(kids) and 0 <= column < 2:
            return self.createIndex(row, column, kids[row])
        return QModelIndex()

    def parent(self, child: _ModelIndex = _ROOT) -> QModelIndex:  # type: ignore[override]
        if not child.isValid():
            return QModelIndex()
        parent_id = self.index_.parent_of(child.internalId())
        if parent_id is None:
            return QModelIndex()
        return self.createIndex(self.index_.row_of[parent_id], 0, parent_id)

    def rowCount(self, parent: _ModelIndex = _ROOT) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self.index_.children.get(parent.internalId() if parent.isValid() else None,
                                             ()))

    def columnCount(self, parent: _ModelIndex = _ROOT) -> int:
        return 2

    def hasChildren(self, parent: _ModelIndex = _ROOT) -> bool:
        return self.rowCount(parent) > 0

    def index_of(self, node_id: int, column: int = 0) -> QModelIndex:
        if node_id not in self.index_.nodes:
            return QModelIndex()
        return self.createIndex(self.index_.row_of[node_id], column, node_id)

    # -- content -------------------------------------------------------------------------------
    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _("Campus") if section == 0 else _("State")
        return None

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        node_id = index.internalId()
        node = self.index_.nodes[node_id]
        leaf = self.index_.is_leaf(node_id)
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return node.name
            if leaf:
                return _(self._state.get(node_id, MeterState.NO_DATA).value)
            online, total = self._counts.get(node_id, (0, 0))
            return f"{online}/{total}"
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            alarm = self.alarm_level(node_id)
            if leaf:
                return state_icon(self._state.get(node_id, MeterState.NO_DATA), alarm)
            return container_icon(node.kind, self._health(node_id), alarm)
        if role == Qt.ItemDataRole.ForegroundRole and col == 0:
            level = self.alarm_level(node_id)
            return ALARM_COLOURS[level] if level >= 2 else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(node_id, leaf)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == NODE_ID_ROLE:
            return node_id
        return None

    def _health(self, node_id: int) -> str:
        online, total = self._counts.get(node_id, (0, 0))
        if total == 0:
            return "empty"
        return "ok" if online == total else ("down" if online == 0 else "partial")

    def alarm_level(self, node_id: int) -> int:
        """The worst open alarm's level in this room, or in the rooms under it (0: none)."""
        return self._alarm_up.get(node_id, (0, 0))[0]

    def _tooltip(self, node_id: int, leaf: bool) -> str:
        idx = self.index_
        if not leaf:
            online, total = self._counts.get(node_id, (0, 0))
            text = _("{online} of {total} meters answer").format(online=online, total=total)
            level, rooms = self._alarm_up.get(node_id, (0, 0))
            if rooms:
                text += "\n" + ngettext(
                    "{n} room with open alarms, the worst of level {level}",
                    "{n} rooms with open alarms, the worst of level {level}", rooms).format(
                    n=rooms, level=level)
            return text
        lines = [idx.nodes[node_id].code or idx.nodes[node_id].name]
        alarm = self._alarms.get(node_id)
        if alarm is not None:
            lines.append(_("Alarm, level {level}: {text}").format(level=alarm.level,
                                                                 text=alarm.text))
            if alarm.count > 1:
                lines.append(ngettext("({n} more open alarm: see Station › Alarms)",
                                      "({n} more open alarms: see Station › Alarms)",
                                      alarm.count - 1).format(n=alarm.count - 1))
        names = idx.occupant_names(node_id)
        if names:
            lines.append(fmt.name_list(names))
        for m in idx.meters_of.get(node_id, ()):
            lines.append(_("meter {where}, serial {serial}").format(
                where=idx.bus_address(m), serial=idx.meters[m].serial))
        lines.append(_(self._state.get(node_id, MeterState.NO_DATA).value))
        return "\n".join(lines)

    # -- live ----------------------------------------------------------------------------------
    def apply(self, batch: LiveBatch) -> int:
        """Take a batch; repaint only the rows whose state or counts changed. Returns how many."""
        idx = self.index_
        dirty: set[int] = set()
        for m in batch.meters:
            node_id = idx.node_of_meter(m.meter_id)
            if node_id is None or node_id not in idx.nodes:
                continue
            state = self.ctx.room_state(node_id)
            if self._state.get(node_id) != state:
                self._state[node_id] = state
                dirty.add(node_id)
            if self._online.get(m.meter_id) != m.online:
                delta = 1 if m.online else -1
                self._online[m.meter_id] = m.online
                for anc in idx.ancestors(node_id):
                    self._counts[anc][0] += delta
                    dirty.add(anc)
        self._repaint(dirty)
        return len(dirty)

    def on_changes(self, changes: Changes) -> int:
        """An act changed rooms (a recharge, a refund): repaint those whose state changed."""
        if changes.campus:
            self.beginResetModel()
            self.endResetModel()
        dirty = set()
        for node_id in changes.nodes:
            if node_id in self.index_.nodes and node_id in self.index_.meters_of:
                state = self.ctx.room_state(node_id)
                if self._state.get(node_id) != state:
                    self._state[node_id] = state
                    dirty.add(node_id)
        self._repaint(dirty)
        return len(dirty)

    def set_alarms(self, rooms: dict[int, RoomAlarm]) -> int:
        """Take each room's worst open alarm (``alarms.open_alarms``) and roll it up to the
        floors and buildings; repaint the rows whose mark changed. Returns how many."""
        idx = self.index_
        rooms = {n: a for n, a in rooms.items() if n in idx.nodes}
        up: dict[int, tuple[int, int]] = {}
        for node_id, alarm in rooms.items():
            for n in (node_id, *idx.ancestors(node_id)):
                level, count = up.get(n, (0, 0))
                up[n] = (max(level, alarm.level), count + 1)
        dirty = {n for n in rooms.keys() | self._alarms.keys()
                 if rooms.get(n) != self._alarms.get(n)}
        dirty |= {n for n in up.keys() | self._alarm_up.keys()
                  if up.get(n) != self._alarm_up.get(n)}
        self._alarms, self._alarm_up = rooms, up
        self._repaint(dirty)
        return len(dirty)

    def _repaint(self, dirty: set[int]) -> None:
        """Tell the view about changed rows, in contiguous runs per parent."""
        idx = self.index_
        by_parent: dict[int | None, list[int]] = {}
        for node_id in dirty:
            if node_id not in idx.nodes:  # gone with a change of the campus
                continue
            by_parent.setdefault(idx.parent_of(node_id), []).append(idx.row_of[node_id])
        for parent_id, rows in by_parent.items():
            rows.sort()
            start = prev = rows[0]
            for r in [*rows[1:], None]:
                if r is not None and r == prev + 1:
                    prev = r
                    continue
                kids = idx.children[parent_id]
                self.dataChanged.emit(self.createIndex(start, 0, kids[start]),
                                      self.createIndex(prev, 1, kids[prev]))
                if r is not None:
                    start = prev = r


class CampusFilter(QSortFilterProxyModel):
    """Shows the nodes a search found, and their ancestors."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._matches: set[int] | None = None
        self.setRecursiveFilteringEnabled(True)
        self.setDynamicSortFilter(False)

    def set_matches(self, matches: set[int] | None) -> None:
        self.beginFilterChange()
        self._matches = matches
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: _ModelIndex) -> bool:
        if self._matches is None:
            return True
        model = self.sourceModel()
        parent_id = source_parent.internalId() if source_parent.isValid() else None
        return model.index_.children[parent_id][source_row] in self._matches


class CampusTree(QWidget):
    nodeSelected = Signal(int)  # node id; 0 when nothing is selected
    #: the node's context menu: (node id, what was asked: "control")
    nodeAction = Signal(int, str)

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.search = QLineEdit()
        self.search.setClearButtonEnabled(True)
        self.result = QLabel()
        self.result.setVisible(False)
        self.model = CampusTreeModel(ctx, self)
        self.proxy = CampusFilter(self)
        self.proxy.setSourceModel(self.model)
        self.view = QTreeView()
        self.view.setModel(self.proxy)
        self.view.setUniformRowHeights(True)  # cheap layout for 10,000 rooms
        self.view.setAlternatingRowColors(True)
        # Ctrl/Shift+click picks several rooms (the control view's hand-picked list)
        self.view.setSelectionMode(QTreeView.SelectionMode.ExtendedSelection)
        self.view.header().setStretchLastSection(False)
        self.view.header().setSectionResizeMode(0, self.view.header().ResizeMode.Stretch)
        self.view.header().resizeSection(1, 70)
        self.view.expandToDepth(0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.result)
        layout.addWidget(self.view)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(200)
        self._debounce.timeout.connect(self.run_search)
        self.search.textChanged.connect(self._debounce.start)
        self.search.returnPressed.connect(self._select_first)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.menu_actions: dict[str, bool] = {"control": False, "energy": False}  # the role's
        self._matches: list[int] = []
        self.retranslate()

    def retranslate(self) -> None:
        self.search.setPlaceholderText(_("Find a room, occupant, meter (B03/12) or serial"))
        self.model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, 1)
        self.view.viewport().update()
        if self.search.text():
            self.run_search()

    # -- search --------------------------------------------------------------------------------
    def run_search(self) -> list[int]:
        """Filter the tree to what the search box finds; select it when it is certain."""
        self._debounce.stop()
        text = self.search.text()
        self._matches = self.ctx.index.search(text)
        if not text.strip():
            self.proxy.set_matches(None)
            self.result.setVisible(False)
            self.view.collapseAll()
            self.view.expandToDepth(0)
            if self.current_node():
                self.select_node(self.current_node())
            return []
        self.proxy.set_matches(set(self._matches))
        n = len(self._matches)
        self.result.setText(ngettext("{n} found", "{n} found", n).format(n=n) if n
                            else _("Nothing found"))
        self.result.setVisible(True)
        if n <= EXPAND_LIMIT:
            self.view.expandAll()
        if n == 1 or (n and self.ctx.index.exact(text) == self._matches[0]):
            self.select_node(self._matches[0])
        return self._matches

    def _select_first(self) -> None:
        self.run_search()
        if self._matches:
            self.select_node(self._matches[0])

    def _context_menu(self, pos) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid() or not any(self.menu_actions.values()):
            return
        node_id = int(index.data(NODE_ID_ROLE))
        menu = QMenu(self)
        if self.menu_actions["control"]:
            control = menu.addAction(_("Trip, close or keep power…"))
            control.triggered.connect(lambda: self.nodeAction.emit(node_id, "control"))
        if self.menu_actions["energy"]:
            energy = menu.addAction(_("Energy analysis…"))
            energy.triggered.connect(lambda: self.nodeAction.emit(node_id, "energy"))
        menu.popup(self.view.viewport().mapToGlobal(pos))

    # -- selection -----------------------------------------------------------------------------
    def select_node(self, node_id: int) -> bool:
        source = self.model.index_of(node_id)
        if not source.isValid():
            return False
        proxy_index = self.proxy.mapFromSource(source)
        if not proxy_index.isValid():  # hidden by the search: clear it
            self.search.clear()
            self.run_search()
            proxy_index = self.proxy.mapFromSource(source)
        parent = proxy_index.parent()
        while parent.isValid():
            self.view.expand(parent)
            parent = parent.parent()
        self.view.setCurrentIndex(proxy_index)
        self.view.scrollTo(proxy_index)
        return True

    def selected_nodes(self) -> list[int]:
        """The nodes selected (several with Ctrl or Shift), in tree order."""
        rows = self.view.selectionModel().selectedRows(0)
        nodes = {int(i.data(NODE_ID_ROLE)) for i in rows}
        idx = self.ctx.index
        return sorted(nodes, key=lambda n: [idx.row_of[a] for a in
                                            reversed([n, *idx.ancestors(n)])])

    def current_node(self) -> int:
        index = self.view.currentIndex()
        return int(index.data(NODE_ID_ROLE)) if index.isValid() else 0

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.nodeSelected.emit(int(current.data(NODE_ID_ROLE)) if current.isValid() else 0)

    def on_batch(self, batch: LiveBatch) -> None:
        self.model.apply(batch)

    def set_alarms(self, rooms: dict[int, RoomAlarm]) -> None:
        """Each room's worst open alarm (the window's alarm watch tells it)."""
        self.model.set_alarms(rooms)

    def on_changes(self, changes: Changes) -> None:
        current = self.current_node()
        self.model.on_changes(changes)
        if changes.campus and current:
            self.select_node(current)
