"""Automatic control (Station > Automatic control…): what the station enforces by itself, in
five tabs: the rooms' power limits (and the meters' own malicious-load rule), the appliances
each room is allowed, lights-out schedules with their exceptions, limiting plans for a supply
shortage, and the rooms held off with the reason ("why is room 3-204 dark").

The view reads everything at once (``control_rules.snapshot``) and acts only through the core's
operations (``power_limits``, ``schedules``, ``limit_plans``) with the signed-in operator,
through the runner; a refusal shows in the message line, and every act reads the rules again.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core import control, control_rules, power_limits
from app.core.control_rules import RulesSnapshot
from app.core.operators import Permission
from app.core.power_limits import MAX_LIMIT_W
from app.i18n import N_, _, ngettext
from app.ui import fmt
from app.ui.context import AppContext
from app.ui.errors import error_text
from app.ui.widgets import ERROR_STYLE, GOOD_STYLE, message_label, refresh_close_bar
from app.views.automatic_forms import buttons_row, fill, fit_placeholder, selected_row, table
from app.views.automatic_timed import PlansTab, SchedulesTab

LIMIT_COLUMNS = (N_("Room"), N_("Building and floor"), N_("Meter"), N_("Station limit"),
                 N_("Set by"))
APPLIANCE_COLUMNS = (N_("Room"), N_("Appliance"), N_("Rated power"))
HOLD_COLUMNS = (N_("Room"), N_("Meter"), N_("Reason"), N_("Detail"), N_("By"), N_("Since"),
                N_("Back on"), N_("Overridden by"))
#: Which rooms a limit or a detection setting goes to.
SELECTED, WHERE = "selected", "where"
OVERRIDDEN = QColor("#7a7a7a")


class AutomaticView(QDialog):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AutomaticView")
        self.ctx = ctx
        self.snap: RulesSnapshot | None = None
        self.form: QDialog | None = None  # the add or edit form open now
        self.tabs = QTabWidget()
        self.limits = LimitsTab(self)
        self.appliances = AppliancesTab(self)
        self.schedules = SchedulesTab(self)
        self.plans = PlansTab(self)
        self.holds = HoldsTab(self)
        self.tabs.addTab(self.limits, _("Power limits"))
        self.tabs.addTab(self.appliances, _("Allowed appliances"))
        self.tabs.addTab(self.schedules, _("Schedules"))
        self.tabs.addTab(self.plans, _("Limiting plans"))
        self.tabs.addTab(self.holds, _("Rooms held off"))
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.message = message_label("automatic_message")
        self.refresh_button, bottom = refresh_close_bar(self, self.message)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(bottom)
        self.setWindowTitle(_("Automatic control"))
        self.resize(1180, 700)
        self.refresh_button.clicked.connect(self.load)
        ctx.session.operatorChanged.connect(self._role_note)
        self._role_note()
        self.load()

    def _role_note(self, _operator: object = None) -> None:
        may = self.ctx.session.can(Permission.CONTROL_BATCH)
        self.note.setVisible(not may)
        self.note.setText("" if may else _(
            "You may look at these rules; changing them needs the 'control_batch' permission "
            "(administrators)."))

    # -- reading and acting --------------------------------------------------------------------
    def load(self) -> None:
        operator = self.ctx.operator
        self.ctx.runner.run(lambda: control_rules.snapshot(operator), title=_("Automatic control"),
                            parent=self, on_done=self._loaded, quiet=True)

    def _loaded(self, snap: RulesSnapshot) -> None:
        self.snap = snap
        for tab in (self.limits, self.appliances, self.schedules, self.plans, self.holds):
            tab.show_snapshot(snap)

    def act(self, work: Callable[[], object], title: str,
            done: Callable[[object], str]) -> None:
        """Run a core operation; say what it did (or why it was refused), then read again."""
        self.message.setStyleSheet("")
        self.message.setText(_("working…"))
        self.ctx.runner.run(work, title=title, parent=self,
                            on_done=lambda result: self._said(done(result), GOOD_STYLE),
                            on_error=lambda exc: self._said(error_text(exc, title), ERROR_STYLE))

    def _said(self, text: str, style: str) -> None:
        self.message.setStyleSheet(style)
        self.message.setText(text)
        self.load()

    def say(self, text: str) -> None:
        """A word to the operator before anything is done (choose a room first...)."""
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setText(text)

    def open_form(self, form: QDialog) -> None:
        """Open an add or edit form; once it did its act, say so and read again."""
        if self.form is not None and not self.form.isVisible():
            self.form.deleteLater()  # the last one, done with
        self.form = form
        form.accepted.connect(lambda: self._said(getattr(form, "done_text", ""), GOOD_STYLE))
        form.open()

    def ask(self, title: str, question: str) -> bool:
        return QMessageBox.question(self, title, question) == QMessageBox.StandardButton.Yes



class LimitsTab(QWidget):
    """The rooms with their station limit and meters; a limit or the meters' malicious-load
    rule for the selected rooms or a whole building or floor."""

    def __init__(self, view: AutomaticView) -> None:
        super().__init__()
        self.view = view
        self.shown: list[int] = []
        self.where = QComboBox()
        self.where.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.find = QLineEdit()
        self.find.setClearButtonEnabled(True)
        self.find.setPlaceholderText(_("Filter: a room number"))
        fit_placeholder(self.find)
        self.count = QLabel()
        filters = QHBoxLayout()
        filters.addWidget(QLabel(_("Show")))
        filters.addWidget(self.where)
        filters.addWidget(self.find)
        filters.addStretch(1)
        filters.addWidget(self.count)
        self.table = table(LIMIT_COLUMNS, 1, many=True)
        self.scope = QComboBox()
        self.scope.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.limit = QSpinBox()
        self.limit.setRange(1, MAX_LIMIT_W)
        self.limit.setValue(1000)
        self.limit.setSuffix(" W")
        self.set_button = QPushButton(_("Set the limit"))
        self.remove_button = QPushButton(_("Remove the limit"))
        self.detect = QComboBox()
        self.detect.addItem(_("leave as it is"), None)
        self.detect.addItem(_("on"), True)
        self.detect.addItem(_("off"), False)
        self.threshold = QSpinBox()
        self.threshold.setRange(0, 10_000)
        self.threshold.setSpecialValueText(_("leave as it is"))
        self.threshold.setSuffix(" W")
        self.detect_button = QPushButton(_("Send to the meters"))
        limit_row = QHBoxLayout()
        for w in (self.limit, self.set_button, self.remove_button):
            limit_row.addWidget(w)
        limit_row.addStretch(1)
        detect_row = QHBoxLayout()
        for w in (QLabel(_("Detection")), self.detect, QLabel(_("Step threshold")),
                  self.threshold, self.detect_button):
            detect_row.addWidget(w)
        detect_row.addStretch(1)
        box = QGroupBox(_("Change"))
        form = QFormLayout(box)
        form.addRow(_("Rooms"), self.scope)
        form.addRow(_("Power limit"), limit_row)
        form.addRow(_("Malicious load"), detect_row)
        hint = QLabel(_("A limit is written to the rooms' meters and watched by the station too: "
                        "over it, the room is tripped and restored after a delay, and stays off "
                        "after too many restores in an hour. The malicious-load rule is the "
                        "meters' own (a resistive step above the threshold)."))
        hint.setWordWrap(True)
        form.addRow("", hint)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(box)
        self.where.currentIndexChanged.connect(self.show_rows)
        self.find.textChanged.connect(self.show_rows)
        self.table.itemSelectionChanged.connect(self._scope_texts)
        self.set_button.clicked.connect(lambda: self.set_limit(self.limit.value()))
        self.remove_button.clicked.connect(lambda: self.set_limit(None))
        self.detect_button.clicked.connect(self.configure_detection)

    def show_snapshot(self, snap: RulesSnapshot) -> None:
        chosen = self.where.currentData()
        self.where.blockSignals(True)
        self.where.clear()
        for t in snap.targets:
            self.where.addItem(t.path, t.node_id)
        self.where.setCurrentIndex(max(0, self.where.findData(chosen)))
        self.where.blockSignals(False)
        self.show_rows()

    def show_rows(self) -> None:
        view, idx = self.view, self.view.ctx.index
        if view.snap is None:
            return
        selected = set(self.selected_rooms())
        where = self.where.currentData()
        rooms = idx.leaves_under(where) if where in idx.nodes else []
        needle = self.find.text().strip().casefold()
        self.shown = [n for n in rooms if needle in (idx.nodes[n].code or idx.nodes[n].name)
                      .casefold()]
        rows = []
        for n in self.shown:
            rule = view.snap.limits.get(n)
            parent = idx.parent_of(n)
            rows.append((idx.nodes[n].code or idx.nodes[n].name,
                         idx.path(parent) if parent is not None else "",
                         ", ".join(idx.bus_address(m) for m in idx.meters_of.get(n, ())) or "–",
                         fmt.watts(rule.limit_w) if rule else fmt.NONE,
                         f"{rule.set_by}, {fmt.day(rule.set_at)}" if rule else ""))
        fill(self.table, rows)
        keep = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        for r, n in enumerate(self.shown):  # what was selected stays selected
            if n in selected:
                self.table.selectionModel().select(self.table.model().index(r, 0), keep)
        limited = sum(1 for n in rooms if view.snap.limits.get(n)
                      and view.snap.limits[n].limit_w is not None)
        self.count.setText(ngettext("{n} room, {limited} with a limit",
                                    "{n} rooms, {limited} with a limit", len(rooms)).format(
            n=len(rooms), limited=limited))
        self._scope_texts()

    def selected_rooms(self) -> list[int]:
        return [self.shown[i.row()] for i in self.table.selectionModel().selectedRows()
                if i.row() < len(self.shown)]

    def _scope_texts(self) -> None:
        chosen = self.scope.currentData() or SELECTED
        where = self.where.currentData()
        idx = self.view.ctx.index
        n_where = len(idx.leaves_under(where)) if where in idx.nodes else 0
        self.scope.blockSignals(True)
        self.scope.clear()
        self.scope.addItem(ngettext("The room selected in the table ({n})",
                                    "The rooms selected in the table ({n})",
                                    len(self.selected_rooms())).format(
            n=len(self.selected_rooms())), SELECTED)
        self.scope.addItem(_("Every room of {where} ({n})").format(
            where=self.where.currentText(), n=n_where), WHERE)
        self.scope.setCurrentIndex(self.scope.findData(chosen))
        self.scope.blockSignals(False)

    def _target(self) -> tuple[Callable[[], list[int]], str] | None:
        """How the operation finds its rooms, and how the audit names them."""
        if self.scope.currentData() == WHERE:
            where = self.where.currentData()
            return (lambda: control.select_rooms(node_ids=[where])), self.where.currentText()
        rooms = self.selected_rooms()
        if not rooms:
            self.view.say(_("select rooms in the table first (Ctrl+click or Shift+click for "
                            "several), or choose every room of a building"))
            return None
        return (lambda: list(rooms)), self.view.ctx.index.named(rooms)

    def set_limit(self, limit_w: int | None) -> None:
        target = self._target()
        if target is None:
            return
        rooms, what = target
        operator = self.view.ctx.operator

        def done(sent: object) -> str:
            if limit_w is None:
                return _("{what}: the station's power limit removed").format(what=what)
            return _("{what}: power limit {w} W set, sent to {m} meters").format(
                what=what, w=limit_w, m=sent)

        self.view.act(lambda: power_limits.set_power_limit(operator, rooms(), limit_w,
                                                           selection=what),
                      _("Power limit"), done)

    def configure_detection(self) -> None:
        target = self._target()
        if target is None:
            return
        rooms, what = target
        operator, enabled = self.view.ctx.operator, self.detect.currentData()
        threshold = self.threshold.value() or None
        self.view.act(lambda: power_limits.configure_detection(
            operator, rooms(), enabled=enabled, threshold_w=threshold, selection=what),
            _("Malicious load"),
            lambda n: _("{what}: {n} settings sent to the meters").format(what=what, n=n))


class AppliancesTab(QWidget):
    """The appliances each room is allowed (no malicious load there): list, add, remove."""

    def __init__(self, view: AutomaticView) -> None:
        super().__init__()
        self.view = view
        self.shown: list = []
        self.room = QLineEdit()
        self.room.setClearButtonEnabled(True)
        self.room.setPlaceholderText(_("room number, e.g. 1-101 (empty: every room)"))
        fit_placeholder(self.room)
        self.name = QLineEdit()
        self.name.setPlaceholderText(_("e.g. kettle"))
        self.name.setMinimumWidth(200)
        self.rated = QSpinBox()
        self.rated.setRange(1, 20_000)
        self.rated.setValue(1200)
        self.rated.setSuffix(" W")
        self.add_button = QPushButton(_("Allow"))
        self.remove_button = QPushButton(_("Remove the selected"))
        self.table = table(APPLIANCE_COLUMNS, 1)
        top = QHBoxLayout()
        for w in (QLabel(_("Room")), self.room, QLabel(_("Appliance")), self.name,
                  QLabel(_("Rated power")), self.rated, self.add_button):
            top.addWidget(w)
        top.addStretch(1)
        hint = QLabel(_("A step of an allowed appliance's rated power in its room is not taken "
                        "for a malicious load (a 1,200 W kettle in a staff room)."))
        hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(hint)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons_row(self.remove_button))
        self.room.textChanged.connect(self.show_rows)
        self.add_button.clicked.connect(self.add)
        self.remove_button.clicked.connect(self.remove)

    def show_snapshot(self, snap: RulesSnapshot) -> None:
        self.show_rows()

    def show_rows(self) -> None:
        view = self.view
        if view.snap is None:
            return
        needle = self.room.text().strip().casefold()
        self.shown = [a for a in view.snap.appliances if needle in self._room(a.node_id)
                      .casefold()]
        fill(self.table, [(self._room(a.node_id), a.name, fmt.watts(a.rated_w))
                           for a in self.shown])

    def _room(self, node_id: int) -> str:
        node = self.view.ctx.index.nodes.get(node_id)
        return (node.code or node.name) if node is not None else str(node_id)

    def add(self) -> None:
        idx = self.view.ctx.index
        text = self.room.text().strip()
        node = idx.exact(text) if text else None
        if node is None or not idx.is_leaf(node):
            self.view.say(_("type the number of a room or shop first"))
            return
        room = idx.nodes[node].code or idx.nodes[node].name
        operator, name, rated = self.view.ctx.operator, self.name.text(), self.rated.value()
        self.view.act(lambda: power_limits.add_appliance(operator, node, name, rated, room=room),
                      _("Allowed appliances"),
                      lambda _id: _("{room}: {name} ({w} W) allowed").format(
                          room=room, name=name.strip(), w=rated))

    def remove(self) -> None:
        row = selected_row(self.table)
        if row is None:
            self.view.say(_("select an appliance first"))
            return
        a, operator = self.shown[row], self.view.ctx.operator
        self.view.act(lambda: power_limits.remove_appliance(operator, a.id),
                      _("Allowed appliances"),
                      lambda _r: _("{name} no longer allowed").format(name=a.name))


class HoldsTab(QWidget):
    """Every meter the station keeps off, and why."""

    def __init__(self, view: AutomaticView) -> None:
        super().__init__()
        self.view = view
        self.find = QLineEdit()
        self.find.setClearButtonEnabled(True)
        self.find.setPlaceholderText(_("Filter: a room number"))
        fit_placeholder(self.find)
        self.count = QLabel()
        top = QHBoxLayout()
        top.addWidget(self.find)
        top.addStretch(1)
        top.addWidget(self.count)
        self.table = table(HOLD_COLUMNS, 3)
        hint = QLabel(_("A meter is off while it has a hold; it comes back on when its last "
                        "hold ends. An operator's close ends the holds of an event and overrides "
                        "the others (arrears, schedule, plan) until their condition ends. Keep "
                        "power overrides them all."))
        hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(hint)
        self.find.textChanged.connect(self.show_rows)

    def show_snapshot(self, snap: RulesSnapshot) -> None:
        self.show_rows()

    def show_rows(self) -> None:
        if self.view.snap is None:
            return
        needle = self.find.text().strip().casefold()
        shown = [h for h in self.view.snap.holds if needle in h.room.casefold()]
        fill(self.table, [(h.room, h.meter, h.reason_text, h.detail, h.source,
                            fmt.clock(h.since), self._back_on(h), h.overridden_by)
                           for h in shown],
              lambda r: OVERRIDDEN if shown[r].overridden_by else None)
        held = [h for h in shown if not h.overridden_by]  # an overridden hold keeps nothing off
        meters, rooms = len({h.meter for h in held}), len({h.node_id for h in held})
        self.count.setText(ngettext("{n} meter held off", "{n} meters held off", meters)
                           .format(n=meters) + " · " + ngettext(
            "{n} room", "{n} rooms", rooms).format(n=rooms))

    @staticmethod
    def _back_on(h: control_rules.HoldRow) -> str:
        if h.overridden_by:  # an operator closed the relay over it: no effect now
            return _("on again, closed by hand")
        if h.restore_at is not None:
            return _("automatically at {time}").format(time=fmt.clock(h.restore_at))
        return h.ends
