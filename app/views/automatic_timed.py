"""The automatic-control screen's tabs for time and shortage: lights-out schedules with their
exceptions (holidays), and limiting plans that are applied and undone by hand. Each act is a
core operation (``core/schedules``, ``core/limit_plans``) run through the screen
(``AutomaticView.act``); removing a schedule, applying and undoing a plan ask first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from app.core import control_rules, limit_plans, schedules
from app.core.control_rules import PLAN_ACTION_TEXT, RulesSnapshot
from app.i18n import N_, _, ngettext
from app.ui import fmt
from app.ui.errors import error_text
from app.views.automatic_forms import (
    ExceptionForm,
    PlanForm,
    ScheduleForm,
    buttons_row,
    fill,
    reselect,
    selected_row,
    table,
)

if TYPE_CHECKING:
    from app.views.automatic_view import AutomaticView

SCHEDULE_COLUMNS = (N_("Schedule"), N_("For"), N_("Windows (off-on)"), N_("Enabled"),
                    N_("In force now"))
EXCEPTION_COLUMNS = (N_("Day"), N_("Schedule"), N_("Windows instead"), N_("Note"))
PLAN_COLUMNS = (N_("Plan"), N_("What it does"), N_("For"), N_("Rooms"), N_("In force"))


class SchedulesTab(QWidget):
    """Lights-out schedules (add, edit, remove) and their exceptions (holidays)."""

    def __init__(self, view: AutomaticView) -> None:
        super().__init__()
        self.view = view
        self.table = table(SCHEDULE_COLUMNS, 2)
        self.exceptions = table(EXCEPTION_COLUMNS, 3)
        self.add_button = QPushButton(_("Add…"))
        self.edit_button = QPushButton(_("Edit…"))
        self.remove_button = QPushButton(_("Remove…"))
        self.add_exception_button = QPushButton(_("Add an exception…"))
        self.remove_exception_button = QPushButton(_("Remove the exception"))
        top, bottom = QWidget(), QWidget()
        column = QVBoxLayout(top)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.table, 1)
        column.addLayout(buttons_row(self.add_button, self.edit_button, self.remove_button))
        column = QVBoxLayout(bottom)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(QLabel(_("Exceptions: holidays, or other windows on one day")))
        column.addWidget(self.exceptions, 1)
        column.addLayout(buttons_row(self.add_exception_button, self.remove_exception_button))
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self.add_button.clicked.connect(lambda: self.edit(new=True))
        self.edit_button.clicked.connect(lambda: self.edit(new=False))
        self.table.doubleClicked.connect(lambda _i: self.edit(new=False))
        self.remove_button.clicked.connect(self.remove)
        self.add_exception_button.clicked.connect(self.add_exception)
        self.remove_exception_button.clicked.connect(self.remove_exception)

    def show_snapshot(self, snap: RulesSnapshot) -> None:
        chosen = selected_row(self.table)
        chosen_name = self.table.item(chosen, 0).text() if chosen is not None else None
        fill(self.table, [(s.name, s.target, "; ".join(s.windows),
                            _("yes") if s.enabled else _("no"),
                            _("yes, since {time}").format(time=fmt.clock(s.in_force_since))
                            if s.in_force_since is not None else _("no"))
                           for s in snap.schedules])
        reselect(self.table, [s.name for s in snap.schedules], chosen_name)
        fill(self.exceptions, [(e.day, e.schedule or _("every schedule"),
                                 "; ".join(e.windows) or _("none (a holiday)"), e.note)
                                for e in snap.exceptions])

    def edit(self, *, new: bool) -> None:
        snap = self.view.snap
        if snap is None:
            return
        row = None if new else selected_row(self.table)
        if not new and row is None:
            self.view.say(_("select a schedule first"))
            return
        self.view.open_form(ScheduleForm(self.view.ctx, snap, None if new
                                         else snap.schedules[row], self.view))

    def remove(self) -> None:
        row = selected_row(self.table)
        if row is None or self.view.snap is None:
            self.view.say(_("select a schedule first"))
            return
        name = self.view.snap.schedules[row].name
        if not self.view.ask(_("Remove schedule"), _(
                "Remove schedule {name}? The rooms it keeps off now are switched on again.")
                .format(name=name)):
            return
        operator = self.view.ctx.operator
        self.view.act(lambda: schedules.delete_schedule(operator, name), _("Remove schedule"),
                      lambda _r: _("Schedule {name} removed").format(name=name))

    def add_exception(self) -> None:
        if self.view.snap is not None:
            self.view.open_form(ExceptionForm(self.view.ctx, self.view.snap, self.view))

    def remove_exception(self) -> None:
        row = selected_row(self.exceptions)
        if row is None or self.view.snap is None:
            self.view.say(_("select an exception first"))
            return
        e, operator = self.view.snap.exceptions[row], self.view.ctx.operator
        self.view.act(lambda: schedules.remove_exception(operator, e.id), _("Schedules"),
                      lambda _r: _("Exception for {day} removed").format(day=e.day))


class PlansTab(QWidget):
    """Limiting plans: define, apply, undo (each asks, naming how many rooms)."""

    def __init__(self, view: AutomaticView) -> None:
        super().__init__()
        self.view = view
        self.table = table(PLAN_COLUMNS, 2)
        self.add_button = QPushButton(_("Add…"))
        self.apply_button = QPushButton(_("Apply…"))
        self.undo_button = QPushButton(_("Undo…"))
        hint = QLabel(_("A plan lowers the power limit of, or trips, a building's or a tariff "
                        "group's rooms during a supply shortage; undoing it puts every room's "
                        "limit back as it was. A plan never raises a limit."))
        hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons_row(self.add_button, self.apply_button, self.undo_button))
        self.add_button.clicked.connect(self.add)
        self.apply_button.clicked.connect(lambda: self.apply_or_undo(undo=False))
        self.undo_button.clicked.connect(lambda: self.apply_or_undo(undo=True))
        self.table.itemSelectionChanged.connect(self._buttons_state)
        self._buttons_state()

    def _buttons_state(self) -> None:
        """Apply for a plan not in force, Undo for one in force."""
        row = selected_row(self.table)
        plans = self.view.snap.plans if self.view.snap is not None else []
        plan = plans[row] if row is not None and row < len(plans) else None
        self.apply_button.setEnabled(plan is not None and plan.applied_at is None)
        self.undo_button.setEnabled(plan is not None and plan.applied_at is not None)

    def show_snapshot(self, snap: RulesSnapshot) -> None:
        chosen = selected_row(self.table)
        chosen_name = self.table.item(chosen, 0).text() if chosen is not None else None
        fill(self.table, [(p.name, _(PLAN_ACTION_TEXT.get(p.action, p.action))
                            + (f" {fmt.watts(p.limit_w)}" if p.action == "limit" else ""),
                            p.target, str(p.rooms),
                            _("since {time}, by {name}").format(time=fmt.clock(p.applied_at),
                                                                name=p.applied_by)
                            if p.applied_at is not None else _("no"))
                           for p in snap.plans])
        reselect(self.table, [p.name for p in snap.plans], chosen_name)
        self._buttons_state()

    def add(self) -> None:
        if self.view.snap is not None:
            self.view.open_form(PlanForm(self.view.ctx, self.view.snap, self.view))

    def apply_or_undo(self, *, undo: bool) -> None:
        row = selected_row(self.table)
        if row is None or self.view.snap is None:
            self.view.say(_("select a plan first"))
            return
        plan, operator = self.view.snap.plans[row], self.view.ctx.operator
        self.view.ctx.runner.run(lambda: control_rules.plan_room_count(operator, plan.name),
                                 title=_("Limiting plans"), parent=self.view,
                                 on_done=lambda n: self._confirmed(plan, n, undo),
                                 on_error=lambda exc: self.view.say(error_text(exc)))

    def _confirmed(self, plan: control_rules.PlanRow, n: int, undo: bool) -> None:
        operator, name = self.view.ctx.operator, plan.name
        if undo:
            question = ngettext("Undo plan {name}: put {n} room back as it was?",
                                "Undo plan {name}: put {n} rooms back as they were?", n)
        elif plan.action == "trip":
            question = ngettext("Apply plan {name}: trip {n} room ({target})?",
                                "Apply plan {name}: trip {n} rooms ({target})?", n)
        else:
            question = ngettext("Apply plan {name}: lower the power limit of {n} room "
                                "({target}) to {w} W?", "Apply plan {name}: lower the power "
                                "limit of {n} rooms ({target}) to {w} W?", n)
        title = _("Undo plan") if undo else _("Apply plan")
        if not self.view.ask(title, question.format(name=name, n=n, target=plan.target,
                                                    w=plan.limit_w)):
            return
        if undo:
            self.view.act(lambda: limit_plans.undo_plan(operator, name), title,
                          lambda k: ngettext("Plan {name} undone for {n} room",
                                             "Plan {name} undone for {n} rooms", k).format(
                              name=name, n=k))
        else:
            self.view.act(lambda: limit_plans.apply_plan(operator, name), title,
                          lambda k: ngettext("Plan {name} in force for {n} room",
                                             "Plan {name} in force for {n} rooms", k).format(
                              name=name, n=k))
