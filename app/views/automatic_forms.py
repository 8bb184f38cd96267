"""The pieces the automatic-control screen's tabs share: its tables, and its small forms (a
schedule, added or edited; a schedule exception; a limiting plan).

Each form reads what the operator typed, lets the core parse and check it (a window is parsed
by ``schedules.parse_window`` here, so its error shows before anything is saved), runs the
operation through the runner and closes only when it was done; a refusal stays in the form, in
its message line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from PySide6.QtCore import QDate, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.core import limit_plans, schedules
from app.core.control_rules import PLAN_ACTION_TEXT, RulesSnapshot, ScheduleRow
from app.core.power_limits import MAX_LIMIT_W
from app.errors import UserFacingError
from app.i18n import _, ngettext
from app.ui.context import ActingContext
from app.ui.widgets import ActForm, row_table

BUILDING, GROUP = "building", "group"
NODE_ROLE = Qt.ItemDataRole.UserRole + 1  # a building choice's node id


# -- tables -------------------------------------------------------------------------------------
def table(columns: tuple[str, ...], stretch: int, *, many: bool = False) -> QTableWidget:
    return row_table(columns, stretch, many=many)


def fill(table: QTableWidget, rows: list[tuple[str, ...]],
          colour: Callable[[int], QColor | None] = lambda _row: None) -> None:
    table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if colour(r) is not None:
                item.setForeground(colour(r))
            table.setItem(r, c, item)


def selected_row(table: QTableWidget) -> int | None:
    rows = table.selectionModel().selectedRows()
    return rows[0].row() if rows else None


def fit_placeholder(edit: QLineEdit) -> QLineEdit:
    """Wide enough to show its placeholder whole (and a clear button)."""
    edit.setMinimumWidth(edit.fontMetrics().horizontalAdvance(edit.placeholderText()) + 40)
    return edit


def reselect(table: QTableWidget, keys: list[str], key: str | None) -> None:
    """Select again the row of ``key`` (what was selected before the table was filled)."""
    if key in keys:
        table.selectRow(keys.index(key))
    else:
        table.clearSelection()


def buttons_row(*buttons: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    for b in buttons:
        row.addWidget(b)
    row.addStretch(1)
    return row


# -- forms --------------------------------------------------------------------------------------
class TargetPicker(QWidget):
    """What a schedule or plan is for: a building or floor (or the campus), or a tariff
    group of the open accounts."""

    def __init__(self, snap: RulesSnapshot, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = QComboBox()
        self.kind.addItem(_("A building or floor"), BUILDING)
        self.kind.addItem(_("A tariff group"), GROUP)
        self.node = QComboBox()
        for t in snap.targets:
            self.node.addItem(t.path, t.key)
            self.node.setItemData(self.node.count() - 1, t.node_id, NODE_ROLE)
        self.group = QComboBox()
        for name, rooms in snap.groups.items():
            self.group.addItem(ngettext("{group} ({n} room)", "{group} ({n} rooms)", rooms)
                               .format(group=name, n=rooms), name)
        for combo in (self.kind, self.node, self.group):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.kind)
        row.addWidget(self.node, 1)
        row.addWidget(self.group, 1)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed()

    def _kind_changed(self) -> None:
        building = self.kind.currentData() == BUILDING
        self.node.setVisible(building)
        self.group.setVisible(not building)

    def set_value(self, node_id: int | None, group: str) -> bool:
        """Show what a schedule or plan is for; False when it is not among the choices (a
        building no word names alone, a group with no open account any more)."""
        if node_id is not None:
            self.kind.setCurrentIndex(self.kind.findData(BUILDING))
            found = self.node.findData(node_id, NODE_ROLE)
            self.node.setCurrentIndex(found)
        else:
            self.kind.setCurrentIndex(self.kind.findData(GROUP))
            found = self.group.findData(group)
            self.group.setCurrentIndex(found)
        return found >= 0

    def value(self) -> dict[str, str | None]:
        """``building=`` or ``group=`` for the operations."""
        if self.kind.currentData() == BUILDING:
            return {"building": self.node.currentData(), "group": None}
        return {"building": None, "group": self.group.currentData()}


class ScheduleForm(ActForm):
    """Add a schedule, or change one (its name stays)."""

    def __init__(self, ctx: ActingContext, snap: RulesSnapshot, row: ScheduleRow | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(ctx, _("Edit schedule {name}").format(name=row.name) if row
                         else _("Add a schedule"), parent)
        self.name = QLineEdit()
        self.name.setPlaceholderText(_("e.g. lights-out 1号宿舍楼"))
        self.target = TargetPicker(snap)
        self.windows = QPlainTextEdit()
        self.windows.setPlaceholderText("Sun-Thu 23:00-06:00")
        self.windows.setFixedHeight(self.fontMetrics().lineSpacing() * 5)
        hint = QLabel(_("One window a line: the days it starts on, the time the rooms go off and "
                        "the time they come on again, e.g. Sun-Thu 23:00-06:00 (off Sunday to "
                        "Thursday at 23:00, on at 06:00 the next morning). Days: Mon Tue Wed Thu "
                        "Fri Sat Sun, a range (Sun-Thu) or a list (Mon,Wed)."))
        hint.setWordWrap(True)
        self.enabled = QCheckBox(_("In force (unchecked: kept, but not applied)"))
        self.enabled.setChecked(True)
        self.form.addRow(_("Schedule name"), self.name)
        self.form.addRow(_("For"), self.target)
        self.form.addRow(_("Windows"), self.windows)
        self.form.addRow("", hint)
        self.form.addRow("", self.enabled)
        if row is not None:
            self.name.setText(row.name)
            self.name.setReadOnly(True)
            if not self.target.set_value(row.node_id, row.group):
                self.message.setText(_("what this schedule is for ({target}) is not among the "
                                       "choices: choose again").format(target=row.target))
            self.windows.setPlainText("\n".join(row.windows))
            self.enabled.setChecked(row.enabled)
        self.resize(640, self.sizeHint().height())

    def submit(self) -> None:
        try:
            windows = [schedules.parse_window(line) for line in
                       self.windows.toPlainText().splitlines() if line.strip()]
        except UserFacingError as exc:
            self.message.setText(str(exc))
            self.windows.setFocus()
            return
        operator, name, enabled = self.ctx.session.operator, self.name.text(), \
            self.enabled.isChecked()
        where = self.target.value()
        self.run(lambda: schedules.save_schedule(operator, name, windows, enabled=enabled,
                                                 **where),
                 _("Schedule {name} saved").format(name=name.strip()))


class ExceptionForm(ActForm):
    """A day a schedule (or every schedule) does something else: no window (a holiday) or
    other windows."""

    def __init__(self, ctx: ActingContext, snap: RulesSnapshot, parent: QWidget | None = None,
                 today: date | None = None) -> None:
        super().__init__(ctx, _("Add an exception"), parent)
        today = today or date.today()
        self.day = QDateEdit(QDate(today.year, today.month, today.day))
        self.day.setCalendarPopup(True)
        self.day.setDisplayFormat("yyyy-MM-dd")
        self.schedule = QComboBox()
        self.schedule.addItem(_("Every schedule"), None)
        for s in snap.schedules:
            self.schedule.addItem(s.name, s.name)
        self.windows = QLineEdit()
        self.windows.setPlaceholderText(_("empty: no lights-out that day (a holiday)"))
        hint = QLabel(_("Windows starting that day instead of the schedule's, separated by ; "
                        "(e.g. 01:00-06:00); leave it empty for a holiday."))
        hint.setWordWrap(True)
        self.note = QLineEdit()
        self.note.setPlaceholderText(_("why, e.g. 元旦"))
        self.form.addRow(_("Day"), self.day)
        self.form.addRow(_("Schedule"), self.schedule)
        self.form.addRow(_("Windows"), self.windows)
        self.form.addRow("", hint)
        self.form.addRow(_("Note"), self.note)
        self.resize(560, self.sizeHint().height())

    def submit(self) -> None:
        try:
            windows = [schedules.parse_window(part, every_day=True)
                       for part in self.windows.text().split(";") if part.strip()]
        except UserFacingError as exc:
            self.message.setText(str(exc))
            self.windows.setFocus()
            return
        d = self.day.date()
        day = date(d.year(), d.month(), d.day())
        operator, schedule, note = self.ctx.session.operator, self.schedule.currentData(), \
            self.note.text()
        self.run(lambda: schedules.add_exception(operator, day, windows, schedule=schedule,
                                                 note=note),
                 _("Exception for {day} saved").format(day=day.isoformat()))


class PlanForm(ActForm):
    """Define a limiting plan (or change one not in force)."""

    def __init__(self, ctx: ActingContext, snap: RulesSnapshot,
                 parent: QWidget | None = None) -> None:
        super().__init__(ctx, _("Add a limiting plan"), parent)
        self.name = QLineEdit()
        self.name.setPlaceholderText(_("e.g. shortage: shops first"))
        self.action = QComboBox()
        for action in limit_plans.PLAN_ACTIONS:
            self.action.addItem(_(PLAN_ACTION_TEXT[action]), action)
        self.limit = QSpinBox()
        self.limit.setRange(1, MAX_LIMIT_W)
        self.limit.setValue(500)
        self.limit.setSuffix(" W")
        self.target = TargetPicker(snap)
        self.form.addRow(_("Plan name"), self.name)
        self.form.addRow(_("What it does"), self.action)
        self.form.addRow(_("Lowered limit"), self.limit)
        self.form.addRow(_("For"), self.target)
        self.action.currentIndexChanged.connect(
            lambda: self.limit.setEnabled(self.action.currentData() == "limit"))
        self.resize(560, self.sizeHint().height())

    def submit(self) -> None:
        operator, name, action = self.ctx.session.operator, self.name.text(), \
            self.action.currentData()
        limit = self.limit.value() if action == "limit" else None
        where = self.target.value()
        self.run(lambda: limit_plans.save_plan(operator, name, action, limit_w=limit, **where),
                 _("Plan {name} saved").format(name=name.strip()))
