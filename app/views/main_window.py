"""The campus window: assembles the tree, the meter panel and the room table; keeps the status
bar and the window's remembered layout. It shows and asks; it computes nothing itself."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QSplitter, QStackedWidget

from app.core.live import LiveBatch
from app.i18n import LANGUAGES, _, ngettext
from app.ui import fmt, settings
from app.ui.context import AppContext
from app.ui.language import apply_language
from app.views.campus_tree import CampusTree
from app.views.meter_panel import MeterPanel
from app.views.room_table import RoomTable


def operator_name() -> str:
    """Who works at the desk: the logged-in user (operators and logins are still to come)."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "desk"


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.setObjectName("MainWindow")
        self.tree = CampusTree(ctx)
        self.panel = MeterPanel(ctx)
        self.table = RoomTable(ctx)
        self.placeholder = QLabel()
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.stack = QStackedWidget()
        for w in (self.placeholder, self.panel, self.table):
            self.stack.addWidget(w)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("campus_splitter")
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.stack)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([300, 900])
        self.setCentralWidget(self.splitter)

        self.source_label = QLabel()
        self.buses_label = QLabel()
        self.cycle_label = QLabel()
        for w in (self.source_label, self.buses_label, self.cycle_label):
            w.setContentsMargins(12, 0, 12, 0)
            self.statusBar().addPermanentWidget(w)
        self._build_menus()

        self.tree.nodeSelected.connect(self.show_node)
        self.table.roomActivated.connect(self.tree.select_node)
        ctx.bridge.batch.connect(self.on_batch)
        ctx.source.changed.connect(self.update_status)
        self.retranslate()
        self._restore()

    # -- menus ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        self.file_menu = QMenu(self)
        self.quit_action = QAction(self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        self.file_menu.addAction(self.quit_action)
        self.settings_menu = QMenu(self)
        self.language_menu = QMenu(self)
        self.settings_menu.addMenu(self.language_menu)
        group = QActionGroup(self)
        self.language_actions: dict[str, QAction] = {}
        chosen = self.ctx.settings.get(settings.LANGUAGE)
        for code in ("system", *LANGUAGES):
            action = QAction(self, checkable=True)
            action.setData(code)
            action.setChecked(code == chosen)
            action.triggered.connect(lambda _checked=False, c=code: self.set_language(c))
            group.addAction(action)
            self.language_menu.addAction(action)
            self.language_actions[code] = action
        self.desk_menu = QMenu(self)
        self.recharge_action = QAction(self)
        self.recharge_action.setShortcut(QKeySequence("Ctrl+R"))
        self.recharge_action.triggered.connect(self.open_recharge)
        self.import_action = QAction(self)
        self.import_action.triggered.connect(self.open_import)
        self.desk_menu.addAction(self.recharge_action)
        self.desk_menu.addAction(self.import_action)
        self.menuBar().addMenu(self.file_menu)
        self.menuBar().addMenu(self.desk_menu)
        self.menuBar().addMenu(self.settings_menu)

    # -- the front desk --------------------------------------------------------------------------
    def open_recharge(self) -> None:
        """The recharge dialog, on the selected room if there is one."""
        from app.views.recharge_dialog import RechargeDialog

        node = self.ctx.settings.get(settings.LAST_NODE)
        query = ""
        if node and self.ctx.index.is_leaf(node):
            record = self.ctx.index.nodes.get(node)
            query = (record.code or record.name) if record else ""
        self.recharge_dialog = RechargeDialog(self, operator=operator_name(),
                                              initial_query=query)
        self.recharge_dialog.show()

    def open_import(self) -> None:
        from app.views.import_dialog import ImportDialog

        self.import_dialog = ImportDialog(self, operator=operator_name())
        self.import_dialog.show()

    def set_language(self, code: str) -> None:
        """Switch the language now (every view re-reads its texts) and remember it."""
        self.ctx.settings.set(settings.LANGUAGE, code)
        apply_language(code)
        self.language_actions[code].setChecked(True)
        self.retranslate()

    def retranslate(self) -> None:
        name = self.ctx.index.campus_name()
        title = "VoltKeeper — " + name if name else "VoltKeeper"
        self.setWindowTitle(title + (" " + _("(demo)") if self.ctx.demo else ""))
        self.file_menu.setTitle(_("&File"))
        self.quit_action.setText(_("&Quit"))
        self.settings_menu.setTitle(_("&Settings"))
        self.desk_menu.setTitle(_("&Desk"))
        self.recharge_action.setText(_("&Recharge…"))
        self.import_action.setText(_("&Import payments…"))
        self.language_menu.setTitle(_("Language"))
        for code, action in self.language_actions.items():
            action.setText(_("System language") if code == "system" else LANGUAGES[code])
        self.placeholder.setText(_("Choose a building, floor or room in the tree.")
                                 if self.ctx.index.nodes else
                                 _("This database holds no campus yet. Create one with "
                                   "'main.py init-demo' or open another database."))
        self.tree.retranslate()
        self.panel.retranslate()
        self.table.retranslate()
        self.update_status()

    # -- showing -------------------------------------------------------------------------------
    def show_node(self, node_id: int) -> None:
        if not node_id:
            self.stack.setCurrentWidget(self.placeholder)
            return
        if self.ctx.index.is_leaf(node_id):
            self.panel.show_node(node_id)
            self.stack.setCurrentWidget(self.panel)
        else:
            self.table.show_node(node_id)
            self.stack.setCurrentWidget(self.table)
        self.ctx.settings.set(settings.LAST_NODE, node_id)

    def on_batch(self, batch: LiveBatch) -> None:
        self.tree.on_batch(batch)
        if self.stack.currentWidget() is self.panel:
            self.panel.on_batch(batch)
        elif self.stack.currentWidget() is self.table:
            self.table.on_batch(batch)
        if batch.buses:
            self.update_status()

    def update_status(self) -> None:
        source, store = self.ctx.source, self.ctx.store
        enabled = [b.id for b in self.ctx.index.buses.values() if b.enabled]
        self.source_label.setToolTip("")
        if source.polling:
            self.source_label.setText(ngettext("Polling {n} bus", "Polling {n} buses",
                                               len(enabled)).format(n=len(enabled)))
        elif source.holder is not None:
            self.source_label.setText(_("Polled by {holder}").format(
                holder=source.holder.describe()))
            self.source_label.setToolTip(_("Another program polls the buses: this window shows "
                                           "the values it stores, and takes the buses over if "
                                           "it stops."))
        elif source.error:
            self.source_label.setText(_("Not polling: {error}").format(error=source.error))
        else:
            self.source_label.setText(_("Not polling"))
        self.buses_label.setText(_("Buses healthy: {healthy}/{total}").format(
            healthy=store.healthy_buses(enabled), total=len(enabled)))
        cycle = store.full_cycle_s()
        self.cycle_label.setText(
            _("Full cycle: not yet") if cycle is None else _("Full cycle: {seconds} at {time}")
            .format(seconds=fmt.seconds(cycle), time=fmt.clock(store.last_cycle_at())))

    # -- remembered layout ---------------------------------------------------------------------
    def _restore(self) -> None:
        s = self.ctx.settings
        if not s.get(settings.GEOMETRY).isEmpty():
            self.restoreGeometry(s.get(settings.GEOMETRY))
        else:
            self.resize(1280, 800)
        if not s.get(settings.WINDOW_STATE).isEmpty():
            self.restoreState(s.get(settings.WINDOW_STATE))
        if not s.get(settings.SPLITTER).isEmpty():
            self.splitter.restoreState(s.get(settings.SPLITTER))
        if not s.get(settings.TABLE_HEADER).isEmpty():
            self.table.restore_header(s.get(settings.TABLE_HEADER))
        last = s.get(settings.LAST_NODE)
        if last and last in self.ctx.index.nodes:
            self.tree.select_node(last)

    def save_layout(self) -> None:
        s = self.ctx.settings
        s.set(settings.GEOMETRY, self.saveGeometry())
        s.set(settings.WINDOW_STATE, self.saveState())
        s.set(settings.SPLITTER, self.splitter.saveState())
        s.set(settings.TABLE_HEADER, self.table.view.horizontalHeader().saveState())
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        super().closeEvent(event)
