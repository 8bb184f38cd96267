"""The campus window: assembles the tree, the meter panel and the room table, the menus of the
acts the signed-in operator's role allows, and the status bar. It shows and asks; it computes
nothing itself.

Every act runs through the context's runner; its one ``changed`` signal reaches every view
here (``on_changes``): a recharge made in a dialog redraws the tree, the room's panel and the
room table together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDialog, QLabel, QMainWindow, QMenu, QSplitter, QStackedWidget

from app.core import queries
from app.core import settings as station_settings
from app.core.changes import Changes
from app.core.live import LiveBatch
from app.core.operators import Permission, role_text
from app.i18n import LANGUAGES, _, ngettext
from app.ui import fmt, settings
from app.ui.alarm_notifier import AlarmNotifier
from app.ui.context import AppContext
from app.ui.language import apply_language
from app.ui.receipt import PAPERS
from app.ui.session import IdleWatcher
from app.ui.widgets import ERROR_STYLE
from app.views.campus_tree import CampusTree
from app.views.meter_panel import MeterPanel
from app.views.room_table import RoomTable

#: How often the window looks at the rooms' balances (billing moves them every minute).
BALANCE_REFRESH_MS = 30_000


@dataclass(frozen=True)
class ActionSpec:
    key: str
    menu: str
    permission: Permission | tuple[Permission, ...] | None  # any of them
    text: Callable[[], str]
    shortcut: str = ""

    def allowed(self, can: Callable[[Permission], bool]) -> bool:
        if self.permission is None:
            return True
        wanted = self.permission if isinstance(self.permission, tuple) else (self.permission,)
        return any(can(p) for p in wanted)


#: Every action of the menus, and the permission its act needs (hidden without it).
ACTIONS = (
    ActionSpec("switch_operator", "file", None, lambda: _("&Switch operator…")),
    ActionSpec("change_password", "file", None, lambda: _("Change my &password…")),
    ActionSpec("lock", "file", None, lambda: _("&Lock"), "Ctrl+L"),
    ActionSpec("backup", "file", Permission.BACKUP, lambda: _("&Back up now…")),
    ActionSpec("quit", "file", None, lambda: _("&Quit")),
    ActionSpec("recharge", "desk", Permission.RECHARGE, lambda: _("&Recharge…"), "Ctrl+R"),
    ActionSpec("import_payments", "desk", Permission.IMPORT_PAYMENTS,
               lambda: _("&Import payments…")),
    ActionSpec("account", "desk", (Permission.MANAGE_ACCOUNTS, Permission.CLOSE_ACCOUNTS),
               lambda: _("&Account and occupants…")),
    ActionSpec("refund", "desk", Permission.REFUND, lambda: _("Re&fund…")),
    ActionSpec("correct", "desk", Permission.CORRECT, lambda: _("&Correct a booking…")),
    ActionSpec("control", "station", (Permission.CONTROL_METER, Permission.CONTROL_BATCH),
               lambda: _("&Control the selection (trip, close, keep power)…"), "Ctrl+K"),
    ActionSpec("alarms", "station", Permission.VIEW, lambda: _("A&larms…")),
    ActionSpec("automatic", "station", Permission.VIEW, lambda: _("A&utomatic control…")),
    ActionSpec("sms_log", "station", Permission.VIEW, lambda: _("S&MS log…")),
    ActionSpec("bus_health", "station", Permission.VIEW, lambda: _("&Bus health…")),
    ActionSpec("frame_monitor", "station", Permission.COMMISSION, lambda: _("&Frame monitor…")),
    ActionSpec("energy", "station", Permission.VIEW, lambda: _("&Energy analysis…")),
    ActionSpec("buses", "station", Permission.COMMISSION, lambda: _("Buses a&nd meters…")),
    ActionSpec("commissioning", "station", Permission.COMMISSION,
               lambda: _("Co&mmissioning (scan, checklist)…")),
    ActionSpec("tariffs", "station", Permission.SET_TARIFFS, lambda: _("&Tariffs…")),
    ActionSpec("reports", "station", Permission.REPORTS, lambda: _("Re&ports…")),
    ActionSpec("audit", "station", Permission.VIEW_AUDIT, lambda: _("&Audit log…")),
    ActionSpec("manage_operators", "station", Permission.MANAGE_OPERATORS,
               lambda: _("&Operators…")),
    ActionSpec("station_settings", "station", Permission.SETTINGS,
               lambda: _("Station &settings…")),
)


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
        self.lock_page = QLabel()
        self.lock_page.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        for w in (self.placeholder, self.panel, self.table):
            self.stack.addWidget(w)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("campus_splitter")
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.stack)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([300, 900])
        self.pages = QStackedWidget()
        self.pages.addWidget(self.splitter)
        self.pages.addWidget(self.lock_page)
        self.setCentralWidget(self.pages)

        self.operator_label = QLabel()
        self.source_label = QLabel()
        self.buses_label = QLabel()
        self.cycle_label = QLabel()
        self.bus_problem_label = QLabel()
        self.bus_problem_label.setStyleSheet(ERROR_STYLE)
        for w in (self.operator_label, self.source_label, self.bus_problem_label,
                  self.buses_label, self.cycle_label):
            w.setContentsMargins(12, 0, 12, 0)
            self.statusBar().addPermanentWidget(w)
        self._build_menus()
        self.dialogs: dict[str, QDialog] = {}
        self._hidden: list[QDialog] = []  # dialogs hidden while the window is locked

        self.tree.nodeSelected.connect(self.show_node)
        self.table.roomActivated.connect(self.tree.select_node)
        self.panel.rechargeRequested.connect(
            lambda node: self.open_recharge(self.ctx.index.nodes[node].code
                                            or self.ctx.index.nodes[node].name))
        self.panel.accountRequested.connect(lambda _node: self.trigger("account"))
        self.panel.bookingsRequested.connect(lambda _node: self.trigger("correct"))
        self.panel.setupRequested.connect(self._meter_setup)
        self.panel.registersRequested.connect(self._raw_registers)
        ctx.bridge.batch.connect(self.on_batch)
        ctx.source.changed.connect(self.update_status)
        ctx.runner.changed.connect(self.on_changes)
        self.tree.nodeAction.connect(self._node_action)
        ctx.session.operatorChanged.connect(self._operator_changed)
        self.idle = IdleWatcher(0 if ctx.demo else station_settings.get(
            station_settings.LOCK_AFTER_MIN), self)
        self.idle.idle.connect(self.lock)
        # balances move without an act too (billing every minute): look now and then
        self.balance_timer = QTimer(self)
        self.balance_timer.setInterval(BALANCE_REFRESH_MS)
        self.balance_timer.timeout.connect(self.refresh_balances)
        self.balance_timer.timeout.connect(self.refresh_stale)
        self.balance_timer.start()
        # the rooms' worst open alarms on the tree; a sound and a tray message for new danger
        self.alarm_notifier = AlarmNotifier(ctx, self)
        self.tree.set_alarms(self.alarm_notifier.rooms)
        self.alarm_notifier.roomsChanged.connect(self.tree.set_alarms)
        self.alarm_notifier.messageClicked.connect(lambda: self.trigger("alarms"))
        self.alarm_sound = self.alarm_notifier.sound_action(self)
        self.menus["settings"].addAction(self.alarm_sound)
        self.alarm_notifier.start()
        self._stale: set[int] = set()  # meters drawn as stale
        self.retranslate()
        self.apply_role()
        self._restore()

    # -- menus ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        self.menus = {key: QMenu(self) for key in ("file", "desk", "station", "settings")}
        self.actions_: dict[str, QAction] = {}
        for spec in ACTIONS:
            action = QAction(self)
            if spec.shortcut:
                action.setShortcut(QKeySequence(spec.shortcut))
            action.triggered.connect(lambda _c=False, k=spec.key: self.trigger(k))
            self.menus[spec.menu].addAction(action)
            self.actions_[spec.key] = action
            if spec.key == "backup":
                self.menus["file"].addSeparator()
        self.actions_["quit"].setShortcut(QKeySequence.StandardKey.Quit)
        self.language_menu = QMenu(self)
        self.menus["settings"].addMenu(self.language_menu)
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
        self.paper_menu = QMenu(self)
        self.menus["settings"].addMenu(self.paper_menu)
        papers = QActionGroup(self)
        self.paper_actions: dict[str, QAction] = {}
        for paper in PAPERS:
            action = QAction(self, checkable=True)
            action.setChecked(paper == self.ctx.settings.get(settings.RECEIPT_PAPER))
            action.triggered.connect(
                lambda _checked=False, p=paper: self.ctx.settings.set(settings.RECEIPT_PAPER, p))
            papers.addAction(action)
            self.paper_menu.addAction(action)
            self.paper_actions[paper] = action
        for key in ("file", "desk", "station", "settings"):
            self.menuBar().addMenu(self.menus[key])

    # kept for callers that open the desk's dialogs directly
    @property
    def recharge_action(self) -> QAction:
        return self.actions_["recharge"]

    def apply_role(self) -> None:
        """Show only the acts the signed-in operator's role allows (the core checks again)."""
        for spec in ACTIONS:
            allowed = spec.allowed(self.ctx.session.can)
            self.actions_[spec.key].setVisible(allowed)
            self.actions_[spec.key].setEnabled(allowed)
        for key in ("desk", "station"):
            menu = self.menus[key]
            menu.menuAction().setVisible(any(a.isVisible() for a in menu.actions()))
        op = self.ctx.session.operator
        self.operator_label.setText(_("Operator: {name} ({role})").format(
            name=op.name, role=role_text(op.role)))
        self.tree.menu_actions["control"] = self.actions_["control"].isVisible()
        self.tree.menu_actions["energy"] = self.actions_["energy"].isVisible()
        self.panel.apply_role()
        self._update_title()

    def _node_action(self, node_id: int, what: str) -> None:
        from app.views import window_actions

        if what == "control":
            window_actions.control(self, node_id)
        elif what == "energy":
            window_actions.energy(self, node_id)

    def _meter_setup(self, meter_id: int) -> None:
        from app.views import window_actions

        window_actions.meter_setup(self, meter_id)

    def _raw_registers(self, meter_id: int) -> None:
        from app.views import window_actions

        window_actions.raw_registers(self, meter_id)

    def trigger(self, key: str) -> None:
        from app.views import window_actions

        getattr(window_actions, key)(self)

    # -- opening the desk's dialogs (kept here: tests and the room panel call them) ---------------
    def open_recharge(self, query: str = "") -> None:
        from app.views.window_actions import recharge

        recharge(self, query)

    def open_import(self) -> None:
        from app.views.window_actions import import_payments

        import_payments(self)

    @property
    def recharge_dialog(self):
        return self.dialogs.get("recharge")

    @property
    def import_dialog(self):
        return self.dialogs.get("import")

    # -- lock ----------------------------------------------------------------------------------
    def lock(self) -> None:
        """Hide the campus until the operator signs in again (or another one does)."""
        from app.views.window_actions import unlock

        if self.ctx.session.locked:
            return
        self.ctx.session.locked = True
        self.pages.setCurrentWidget(self.lock_page)
        self.menuBar().setEnabled(False)
        # the open dialogs hide too (an audit log or an account left on screen is not for
        # whoever walks by); they come back for the same operator
        self._hidden = [d for key, d in self.dialogs.items() if key != "unlock"
                        and d.isVisible()]
        for dialog in self._hidden:
            dialog.hide()
        unlock(self)

    def unlocked(self) -> None:
        self.ctx.session.locked = False
        self.pages.setCurrentWidget(self.splitter)
        self.menuBar().setEnabled(True)
        self.idle.reset()
        for dialog in self._hidden:
            if dialog in self.dialogs.values():
                dialog.show()
        self._hidden = []

    def _operator_changed(self, _operator) -> None:
        """Another operator: what the previous one had open closes (it was theirs to see)."""
        for key, dialog in list(self.dialogs.items()):
            if key != "unlock":
                dialog.close()
                del self.dialogs[key]
        self._hidden = []
        self.apply_role()

    def set_language(self, code: str) -> None:
        """Switch the language now (every view re-reads its texts) and remember it."""
        self.ctx.settings.set(settings.LANGUAGE, code)
        apply_language(code)
        self.language_actions[code].setChecked(True)
        self.retranslate()

    def _update_title(self) -> None:
        name = self.ctx.index.campus_name()
        title = "VoltKeeper — " + name if name else "VoltKeeper"
        self.setWindowTitle(title + (" — " + _("DEMO") if self.ctx.demo else ""))

    def retranslate(self) -> None:
        self._update_title()
        for key, title in (("file", _("&File")), ("desk", _("&Desk")),
                           ("station", _("S&tation")), ("settings", _("&Settings"))):
            self.menus[key].setTitle(title)
        for spec in ACTIONS:
            self.actions_[spec.key].setText(spec.text())
        self.language_menu.setTitle(_("Language"))
        self.paper_menu.setTitle(_("Receipt paper"))
        AlarmNotifier.retranslate_action(self.alarm_sound)
        self.paper_actions[PAPERS[0]].setText(_("80 mm receipt roll"))
        self.paper_actions[PAPERS[1]].setText(_("A4 sheet"))
        for code, action in self.language_actions.items():
            action.setText(_("System language") if code == "system" else LANGUAGES[code])
        self.placeholder.setText(_("Choose a building, floor or room in the tree.")
                                 if self.ctx.index.nodes else
                                 _("This database holds no campus yet. Create one with "
                                   "'main.py init-demo' or open another database."))
        self.lock_page.setText(_("Locked. Sign in to go on."))
        self.tree.retranslate()
        self.panel.retranslate()
        self.table.retranslate()
        if self.ctx.session.signed_in:
            op = self.ctx.session.operator
            self.operator_label.setText(_("Operator: {name} ({role})").format(
                name=op.name, role=role_text(op.role)))
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

    def on_changes(self, changes: Changes) -> None:
        """An act changed something: bring the shared state up to date, then each view."""
        self.ctx.apply_changes(changes)
        self._redraw(changes)
        if changes.settings:
            self.idle.set_minutes(0 if self.ctx.demo else station_settings.get(
                station_settings.LOCK_AFTER_MIN))

    def _redraw(self, changes: Changes) -> None:
        self.tree.on_changes(changes)
        self.panel.on_changes(changes)
        self.table.on_changes(changes)

    def refresh_balances(self) -> None:
        """Ask for every room's balance (off the UI thread); the views redraw the rooms whose
        balance moved."""
        if not self.ctx.session.signed_in or self.ctx.session.locked:
            return
        operator = self.ctx.operator
        self.ctx.runner.run(lambda: queries.room_balances(operator), title="balances",
                            on_done=self._balances, quiet=True)

    def refresh_stale(self) -> None:
        """Redraw the rooms whose meters turned stale (or fresh) with no new data: a reading
        ages while nobody stores a new one (the polling process stopped, or cannot write)."""
        ctx = self.ctx
        stale = {m for m in ctx.index.meters if ctx.is_stale(m)}
        turned = stale ^ self._stale
        self._stale = stale
        nodes = {ctx.index.node_of_meter(m) for m in turned}
        nodes.discard(None)
        if nodes:
            self._redraw(Changes(nodes=frozenset(nodes), audit=False))  # type: ignore[arg-type]

    def _balances(self, fresh: dict) -> None:
        moved = {n for n in fresh.keys() | self.ctx.balances.keys()
                 if fresh.get(n) != self.ctx.balances.get(n)}
        if moved:
            self.ctx.balances.clear()
            self.ctx.balances.update(fresh)
            self._redraw(Changes(nodes=frozenset(moved), audit=False))

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
        self.bus_problem_label.setText(self.bus_problems(enabled))
        cycle = store.full_cycle_s()
        self.cycle_label.setText(
            _("Full cycle: not yet") if cycle is None else _("Full cycle: {seconds} at {time}")
            .format(seconds=fmt.seconds(cycle), time=fmt.clock(store.last_cycle_at())))

    def bus_problems(self, enabled: list[int]) -> str:
        """The buses that are down (or failing), named with their reason, for the status bar."""
        bad = [b for bid in enabled if (b := self.ctx.store.buses.get(bid)) is not None
               and b.state in ("down", "error", "held")]
        if not bad:
            return ""
        first = bad[0]
        name = self.ctx.index.buses[first.bus_id].name if first.bus_id in self.ctx.index.buses \
            else str(first.bus_id)
        if first.state == "held":
            text = _("{bus} paused: taken for {what}").format(bus=name, what=first.error)
        else:
            text = _("{bus} down: {reason}").format(bus=name, reason=first.error or first.state)
        if len(bad) > 1:
            text += " " + _("(and {n} more)").format(n=len(bad) - 1)
        return text

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
        self.idle.stop()
        self.balance_timer.stop()
        self.alarm_notifier.stop()
        for dialog in list(self.dialogs.values()):
            dialog.close()
        super().closeEvent(event)
