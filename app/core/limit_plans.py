"""Selective limiting (有序用电): a named plan that, during a supply shortage, lowers the power
limit of a building's or a tariff group's rooms (e.g. all shops) or trips them, and undoes it
exactly.

Applying a plan records, per room, the station's limit before (or that it had none) and the
setting commands it sent to the meters; the sender keeps the value each meter had before it
was written (``core/outbox``). Undoing puts every room's rule back as it was and writes each
meter's own previous value back, withdrawing the writes not sent yet; a tripping plan ends its
holds (``core/relay_holds``: a room closes unless held for another reason). A plan never
raises a limit: a room whose limit is already lower keeps it.
"""

from __future__ import annotations

import logging
import time

from app.core import commands, control, relay_holds
from app.core.audit import act
from app.core.operators import Operator, Permission
from app.core.power_limits import MAX_LIMIT_W, write_setting
from app.errors import UserFacingError
from app.i18n import _
from app.storage import accounts as account_store
from app.storage import commands as command_store
from app.storage import holds as hold_store
from app.storage import rules as store
from app.storage.rules import PlanRecord

log = logging.getLogger("voltkeeper.control")

PLAN_ACTIONS = ("limit", "trip")


def save_plan(operator: Operator, name: str, action: str, *, building: str | None = None,
              group: str | None = None, limit_w: int | None = None) -> int:
    """Define (or change, while not applied) a plan for a building or a tariff group."""
    name = name.strip()
    if not name:
        raise UserFacingError(_("give the plan a name"))
    if action not in PLAN_ACTIONS:
        raise UserFacingError(_("a plan limits or trips (use: limit, trip)"))
    if (building is None) == (group is None):
        raise UserFacingError(_("a plan is for a building or for a tariff group"))
    if action == "limit" and (limit_w is None or not 0 < limit_w <= MAX_LIMIT_W):
        raise UserFacingError(_("a limiting plan needs the limit, from 1 to {max} W")
                              .format(max=MAX_LIMIT_W))
    rooms = control.select_rooms(building=building, group=group)  # refuses unknown names
    found = store.plan_named(name)
    if found is not None and found.applied_at is not None:
        raise UserFacingError(_("plan {name!r} is in force: undo it before changing it")
                              .format(name=name))
    node_id = None if building is None else control.named_node(building)
    with act(operator, Permission.CONTROL_BATCH, "plan_save", target=name) as a:
        plan_id = store.save_plan(name, node_id, group or "", action,
                                  limit_w if action == "limit" else None)
        a.after = {"action": action, "building": building, "group": group,
                   "limit_w": limit_w, "rooms": len(rooms)}
    return plan_id


def plan_rooms(plan: PlanRecord) -> list[int]:
    if plan.node_id is not None:
        return control.select_rooms(node_ids=[plan.node_id])
    return sorted({a.node_id for a in account_store.open_accounts()
                   if a.tariff_group == plan.tariff_group})


def apply_plan(operator: Operator, name: str, *, now: float | None = None) -> int:
    """Put the plan in force. Returns how many rooms it changed."""
    plan = _plan(name)
    if plan.applied_at is not None:
        raise UserFacingError(_("plan {name!r} is already in force").format(name=name))
    now = time.time() if now is None else now
    rooms = plan_rooms(plan)
    if plan.action == "limit":
        _refuse_overlap(plan, rooms)
    with act(operator, Permission.CONTROL_BATCH, "plan_apply", target=plan.name) as a:
        limits = store.power_limits(rooms)
        for node_id in rooms:
            had_rule, before = node_id in limits, limits.get(node_id)
            sent: list[int] = []
            if plan.action == "limit":
                new = _plan_limit(plan, before)
                store.set_power_limit(node_id, new, operator.name)
                sent = write_setting(node_id, "power_limit", new)
            store.add_undo(plan.id, node_id, had_rule, before, sent)
        if plan.action == "trip":
            relay_holds.hold(sorted(hold_store.enabled_meters_of_nodes(rooms)), "plan",
                             source=plan.name, detail=operator.name, now=now)
        store.mark_plan(plan.id, now, operator.name)
        a.after = {"action": plan.action, "limit_w": plan.limit_w, "rooms": len(rooms)}
    return len(rooms)


def _refuse_overlap(plan: PlanRecord, rooms: list[int]) -> None:
    """Two limiting plans in force on one room could not both be undone exactly (each would
    put back what the other set): the second is refused."""
    mine = set(rooms)
    for other in store.plans():
        if other.id == plan.id or other.applied_at is None or other.action != "limit":
            continue
        shared = mine & {u.node_id for u in store.undo_rows(other.id)}
        if shared:
            raise UserFacingError(_("plan {other!r} is in force on {n} of these rooms: undo it "
                                    "before applying {name!r}").format(
                other=other.name, n=len(shared), name=plan.name))


def _plan_limit(plan: PlanRecord, before: int | None) -> int | None:
    """The limit the plan gives a room whose limit was ``before``: never a higher one."""
    return plan.limit_w if before is None else min(before, plan.limit_w)


def undo_plan(operator: Operator, name: str, *, now: float | None = None) -> int:
    """End the plan: every room's limit as it was, on the station and on its meters; a
    tripping plan's rooms closed (unless held otherwise). A room whose limit an operator
    changed while the plan was in force keeps that limit. Returns how many rooms."""
    plan = _plan(name)
    if plan.applied_at is None:
        raise UserFacingError(_("plan {name!r} is not in force").format(name=name))
    now = time.time() if now is None else now
    with act(operator, Permission.CONTROL_BATCH, "plan_undo", target=plan.name) as a:
        rows = store.undo_rows(plan.id)
        now_limits = store.power_limits([r.node_id for r in rows])
        unknown = kept = 0
        for row in rows:
            if plan.action == "limit" and now_limits.get(row.node_id) != _plan_limit(
                    plan, row.previous_limit_w):
                kept += 1  # changed by an operator while the plan was in force: theirs stays
                continue
            if row.had_rule:
                store.set_power_limit(row.node_id, row.previous_limit_w, operator.name)
            else:
                store.drop_rule(row.node_id)
            unknown += _write_back(row.outbox_ids)
        if plan.action == "trip":
            relay_holds.release(None, "plan", source=plan.name, now=now)
        store.drop_undo(plan.id)
        store.mark_plan(plan.id, None, operator.name)
        a.after = {"rooms": len(rows), "meters_unknown": unknown,
                   "changed_since_kept": kept}
    return len(rows)


def _write_back(outbox_ids: list[int]) -> int:
    """Withdraw the plan's writes not sent yet; write back the value each sent one replaced.
    Returns how many meters' previous values are unknown (written while unreadable)."""
    command_store.withdraw(outbox_ids, "plan undone")
    unknown = 0
    for item in command_store.outbox_items_with_ids(outbox_ids):
        if item.state != "applied":
            continue  # withdrawn or failed: the meter never took it
        previous = command_store.previous_of(item.id)
        if previous:
            commands.queue(item.meter_id, item.action, amount_cents=int(previous))
        else:
            unknown += 1
            log.warning("plan undo: meter %s's %s before the plan is unknown", item.meter_id,
                        item.action)
    return unknown


def _plan(name: str) -> PlanRecord:
    found = store.plan_named(name.strip())
    if found is None:
        raise UserFacingError(_("no plan named {name!r}").format(name=name))
    return found
