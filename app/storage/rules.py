"""What the station enforces beside the accounts: rooms' power limits, allowed appliances,
schedules with their exceptions, limiting plans and what they changed."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from app.storage.models import (
    Appliance,
    LimitPlan,
    LimitPlanUndo,
    Meter,
    RoomRule,
    Schedule,
    ScheduleException,
)


# -- power limits and appliances ----------------------------------------------------------------
def power_limits(node_ids: list[int] | None = None) -> dict[int, int | None]:
    """{node id: the station's power limit (W), None: none} of the rooms that have a rule."""
    q = RoomRule.select(RoomRule.node, RoomRule.power_limit_w)
    if node_ids is not None:
        q = q.where(RoomRule.node.in_(node_ids))
    return dict(q.tuples())


def meter_limits() -> dict[int, int]:
    """{meter id: its room's power limit (W)} for every enabled meter under a limit."""
    return dict(Meter.select(Meter.id, RoomRule.power_limit_w)
                .join(RoomRule, on=(RoomRule.node == Meter.node))
                .where(RoomRule.power_limit_w.is_null(False)
                       & (Meter.enabled == True)).tuples())  # noqa: E712


@dataclass(frozen=True)
class RuleRecord:
    node_id: int
    power_limit_w: int | None
    updated_at: float
    updated_by: str


def rules() -> list[RuleRecord]:
    """Every room's rule with who set it and when (what the automatic-control screen lists)."""
    return [RuleRecord(*row) for row in RoomRule.select(
        RoomRule.node, RoomRule.power_limit_w, RoomRule.updated_at, RoomRule.updated_by
    ).tuples()]


def set_power_limit(node_id: int, limit_w: int | None, by: str) -> None:
    RoomRule.insert(node=node_id, power_limit_w=limit_w, updated_at=time.time(),
                    updated_by=by).on_conflict_replace().execute()


def drop_rule(node_id: int) -> None:
    RoomRule.delete().where(RoomRule.node == node_id).execute()


@dataclass(frozen=True)
class ApplianceRecord:
    id: int
    node_id: int
    name: str
    rated_w: int


def appliances(node_id: int | None = None) -> list[ApplianceRecord]:
    q = Appliance.select()
    if node_id is not None:
        q = q.where(Appliance.node == node_id)
    return [ApplianceRecord(a.id, a.node_id, a.name, a.rated_w)
            for a in q.order_by(Appliance.node, Appliance.name)]


def meter_whitelists() -> dict[int, list[ApplianceRecord]]:
    """{meter id: its room's allowed appliances} for the meters whose room has some."""
    out: dict[int, list[ApplianceRecord]] = {}
    rows = (Meter.select(Meter.id, Appliance.id, Appliance.node, Appliance.name,
                         Appliance.rated_w)
            .join(Appliance, on=(Appliance.node == Meter.node)).tuples())
    for meter_id, aid, node_id, name, rated in rows:
        out.setdefault(meter_id, []).append(ApplianceRecord(aid, node_id, name, rated))
    return out


def add_appliance(node_id: int, name: str, rated_w: int, by: str) -> int:
    return Appliance.insert(node=node_id, name=name, rated_w=rated_w, added_at=time.time(),
                            added_by=by).execute()


def remove_appliance(appliance_id: int) -> ApplianceRecord | None:
    a = Appliance.get_or_none(Appliance.id == appliance_id)
    if a is None:
        return None
    Appliance.delete().where(Appliance.id == appliance_id).execute()
    return ApplianceRecord(a.id, a.node_id, a.name, a.rated_w)


# -- schedules ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleRecord:
    id: int
    name: str
    node_id: int | None
    tariff_group: str
    windows: list[dict]
    enabled: bool
    applied: float | None


def _schedule(s: Schedule) -> ScheduleRecord:
    return ScheduleRecord(s.id, s.name, s.node_id, s.tariff_group, json.loads(s.windows or "[]"),
                          bool(s.enabled), s.applied)


def schedules() -> list[ScheduleRecord]:
    return [_schedule(s) for s in Schedule.select().order_by(Schedule.name)]


def schedule_named(name: str) -> ScheduleRecord | None:
    s = Schedule.get_or_none(Schedule.name == name)
    return _schedule(s) if s else None


def save_schedule(name: str, node_id: int | None, tariff_group: str, windows: list[dict],
                  enabled: bool, by: str) -> int:
    found = Schedule.get_or_none(Schedule.name == name)
    fields = {"node": node_id, "tariff_group": tariff_group, "windows": json.dumps(windows),
              "enabled": enabled, "updated_at": time.time(), "updated_by": by}
    if found is None:
        return Schedule.insert(name=name, **fields).execute()
    Schedule.update(fields).where(Schedule.id == found.id).execute()
    return found.id


def delete_schedule(schedule_id: int) -> None:
    Schedule.delete().where(Schedule.id == schedule_id).execute()


def mark_applied(schedule_id: int, start: float | None) -> None:
    Schedule.update(applied=start).where(Schedule.id == schedule_id).execute()


@dataclass(frozen=True)
class ExceptionRecord:
    id: int
    schedule_id: int | None  # None: every schedule
    day: str
    windows: list[dict]
    note: str


def exceptions() -> list[ExceptionRecord]:
    return [ExceptionRecord(e.id, e.schedule_id, e.day, json.loads(e.windows or "[]"), e.note)
            for e in ScheduleException.select().order_by(ScheduleException.day)]


def save_exception(schedule_id: int | None, day: str, windows: list[dict], note: str) -> int:
    q = ScheduleException.select().where(ScheduleException.day == day)
    q = q.where(ScheduleException.schedule.is_null() if schedule_id is None
                else ScheduleException.schedule == schedule_id)
    found = q.first()
    if found is not None:
        ScheduleException.update(windows=json.dumps(windows), note=note).where(
            ScheduleException.id == found.id).execute()
        return found.id
    return ScheduleException.insert(schedule=schedule_id, day=day, windows=json.dumps(windows),
                                    note=note).execute()


def delete_exception(exception_id: int) -> bool:
    return ScheduleException.delete().where(ScheduleException.id == exception_id).execute() > 0


# -- limiting plans -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanRecord:
    id: int
    name: str
    node_id: int | None
    tariff_group: str
    action: str  # limit, trip
    limit_w: int | None
    applied_at: float | None
    applied_by: str


def _plan(p: LimitPlan) -> PlanRecord:
    return PlanRecord(p.id, p.name, p.node_id, p.tariff_group, p.action, p.limit_w,
                      p.applied_at, p.applied_by)


def plans() -> list[PlanRecord]:
    return [_plan(p) for p in LimitPlan.select().order_by(LimitPlan.name)]


def plan_named(name: str) -> PlanRecord | None:
    p = LimitPlan.get_or_none(LimitPlan.name == name)
    return _plan(p) if p else None


def save_plan(name: str, node_id: int | None, tariff_group: str, action: str,
              limit_w: int | None) -> int:
    found = LimitPlan.get_or_none(LimitPlan.name == name)
    fields = {"node": node_id, "tariff_group": tariff_group, "action": action,
              "limit_w": limit_w, "updated_at": time.time()}
    if found is None:
        return LimitPlan.insert(name=name, **fields).execute()
    LimitPlan.update(fields).where(LimitPlan.id == found.id).execute()
    return found.id


def delete_plan(plan_id: int) -> None:
    LimitPlan.delete().where(LimitPlan.id == plan_id).execute()


def mark_plan(plan_id: int, applied_at: float | None, by: str) -> None:
    LimitPlan.update(applied_at=applied_at, applied_by=by).where(
        LimitPlan.id == plan_id).execute()


@dataclass(frozen=True)
class UndoRecord:
    node_id: int
    had_rule: bool
    previous_limit_w: int | None
    outbox_ids: list[int]


def add_undo(plan_id: int, node_id: int, had_rule: bool, previous_limit_w: int | None,
             outbox_ids: list[int]) -> None:
    LimitPlanUndo.insert(plan=plan_id, node=node_id, had_rule=had_rule,
                         previous_limit_w=previous_limit_w,
                         outbox_ids=json.dumps(outbox_ids)).execute()


def undo_rows(plan_id: int) -> list[UndoRecord]:
    return [UndoRecord(u.node_id, bool(u.had_rule), u.previous_limit_w,
                       json.loads(u.outbox_ids or "[]"))
            for u in LimitPlanUndo.select().where(LimitPlanUndo.plan == plan_id)]


def drop_undo(plan_id: int) -> None:
    LimitPlanUndo.delete().where(LimitPlanUndo.plan == plan_id).execute()
