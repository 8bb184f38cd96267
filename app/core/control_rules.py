"""What the automatic-control screen shows, as plain Qt-free questions: the rooms' power limits,
allowed appliances, schedules with their exceptions, limiting plans, and why meters are held
off, each with the words the operator reads (``hold_rows`` answers the desk's "why is room
3-204 dark").

Each question takes the operator asking (a viewer may look); the acts are the operations of
``core/power_limits``, ``core/schedules`` and ``core/limit_plans``. A building or floor is named
to those operations by ``Target.key``: its name, or its code where the name is not unique
(every floor is called "1F").
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core import limit_plans
from app.core.operators import Operator, Permission, require
from app.core.schedules import DAY_NAMES
from app.errors import UserFacingError
from app.i18n import N_, _
from app.storage import accounts as account_store
from app.storage import campus
from app.storage import holds as hold_store
from app.storage import rules as store
from app.storage.campus import NodeRecord
from app.storage.rules import ApplianceRecord

__all__ = ["ApplianceRecord", "ExceptionRow", "HoldRow", "LimitRow", "PlanRow", "RulesSnapshot",
           "ScheduleRow", "Target", "hold_rows", "plan_room_count", "snapshot", "window_text"]

#: A hold's reason in words.
REASON_TEXT = {"operator": N_("tripped by an operator"), "arrears": N_("in arrears"),
               "power_limit": N_("over its power limit"), "malicious_load": N_("malicious load"),
               "schedule": N_("lights-out schedule"), "plan": N_("limiting plan")}
#: A plan's action in words.
PLAN_ACTION_TEXT = {"limit": N_("lower the limit"), "trip": N_("trip")}


@dataclass(frozen=True)
class Target:
    """A building, a floor or the campus a schedule or plan can be for."""

    node_id: int
    key: str  # what the operations take as ``building=``
    path: str  # 1号宿舍楼 › 1F
    kind: str


@dataclass(frozen=True)
class LimitRow:
    node_id: int
    limit_w: int | None
    set_by: str
    set_at: float


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    node_id: int | None
    group: str
    target: str  # in words: the building's path, or the tariff group
    windows: list[str]  # "Sun-Thu 23:00-06:00", as parse_window takes them
    enabled: bool
    in_force_since: float | None  # the start of the window the station applied


@dataclass(frozen=True)
class ExceptionRow:
    id: int
    day: str  # YYYY-MM-DD
    schedule: str | None  # None: every schedule
    windows: list[str]  # "01:00-06:00"; none: a holiday
    note: str


@dataclass(frozen=True)
class PlanRow:
    name: str
    action: str  # limit, trip
    limit_w: int | None
    node_id: int | None
    group: str
    target: str
    rooms: int  # the rooms it changes now (applied: the rooms it changed)
    applied_at: float | None
    applied_by: str


@dataclass(frozen=True)
class HoldRow:
    id: int
    node_id: int | None
    room: str
    meter: str  # bus/address
    reason: str
    reason_text: str
    detail: str  # what the station knew: the operator's reason, the power drawn, the balance
    source: str  # who: the operator, the schedule, the plan, the station
    since: float
    restore_at: float | None  # an automatic restore
    ends: str  # in words when there is none: until an operator acts, until recharged...
    overridden_by: str


@dataclass(frozen=True)
class RulesSnapshot:
    targets: list[Target]
    groups: dict[str, int]  # the open accounts' tariff groups, with their rooms
    limits: dict[int, LimitRow]
    appliances: list[ApplianceRecord]
    schedules: list[ScheduleRow]
    exceptions: list[ExceptionRow]
    plans: list[PlanRow]
    holds: list[HoldRow]


# -- words ---------------------------------------------------------------------------------------
def _day_runs(days: set[int]) -> str:
    if len(days) == 7:
        return "Mon-Sun"
    names = [d.capitalize() for d in DAY_NAMES]
    runs = []
    for start in range(7):
        if start in days and (start - 1) % 7 not in days:
            end = start
            while (end + 1) % 7 in days:
                end = (end + 1) % 7
            runs.append(names[start] if end == start else f"{names[start]}-{names[end]}")
    return ",".join(runs)


def window_text(window: dict, *, with_days: bool = True) -> str:
    """A stored window as the operator types it: ``Sun-Thu 23:00-06:00``."""
    times = f"{window['off']}-{window['on']}"
    return f"{_day_runs(set(window['days']))} {times}" if with_days else times


def _paths(nodes: dict[int, NodeRecord]) -> dict[int, str]:
    """Every node's place below the campus (as the window's ``CampusIndex.path`` says it)."""
    out: dict[int, str] = {}
    for node_id, n in nodes.items():
        names, cur = [], n
        while cur is not None:
            if cur.kind != "campus":
                names.append(cur.name)
            cur = nodes.get(cur.parent_id) if cur.parent_id is not None else None
        out[node_id] = " › ".join(reversed(names)) or n.name
    return out


def targets_of(nodes: dict[int, NodeRecord], paths: dict[int, str]) -> list[Target]:
    """The nodes above the rooms, each with the one word that names it to the operations
    (``control.named_node``); a node no word names alone is left out."""
    children: dict[int | None, list[int]] = {}
    for n in nodes.values():  # in (sort key, id) order
        children.setdefault(n.parent_id if n.parent_id in nodes else None, []).append(n.id)
    above, stack = [], list(reversed(children.get(None, [])))
    while stack:  # the tree's order: a building, its floors, the next building
        n = nodes[stack.pop()]
        if n.kind not in ("room", "shop"):
            above.append(n)
            stack.extend(reversed(children.get(n.id, [])))
    uses: dict[str, int] = {}
    for n in nodes.values():
        if n.kind != "room":  # what control.named_node looks at
            for word in {n.name, n.code} - {""}:
                uses[word] = uses.get(word, 0) + 1
    out = []
    for n in above:
        key = next((w for w in (n.name, n.code) if w and uses.get(w) == 1), None)
        if key is not None:
            out.append(Target(n.id, key, paths[n.id], n.kind))
    return out


def _target_text(node_id: int | None, group: str, paths: dict[int, str]) -> str:
    if node_id is not None:
        return paths.get(node_id, str(node_id))
    return _("tariff group {group}").format(group=group)


def _detail(reason: str, detail: str) -> str:
    if not detail:
        return ""
    if reason == "arrears":
        return _("balance {balance}").format(balance=detail)
    if reason in ("power_limit", "malicious_load"):
        return _("drawing {power} W").format(power=detail)
    if reason == "plan":
        return _("applied by {name}").format(name=detail)
    if reason == "schedule":
        return ""  # its end: in ``ends``
    return detail  # the operator's reason


def _ends(reason: str, detail: str) -> str:
    if reason == "arrears":
        return _("when the account is recharged")
    if reason == "schedule":
        return _("when the window ends ({end})").format(end=detail) if detail \
            else _("when the window ends")
    if reason == "plan":
        return _("when the plan is undone")
    return _("until an operator acts")


# -- questions ----------------------------------------------------------------------------------
def hold_rows(operator: Operator) -> list[HoldRow]:
    """Every meter the station keeps off, and why, by room."""
    require(operator, Permission.VIEW)
    nodes = {n.id: n for n in campus.nodes()}
    buses = {b.id: b.name for b in campus.buses()}
    meters = {m.id: m for m in campus.meters()}
    return _holds(nodes, buses, meters)


def _holds(nodes, buses, meters) -> list[HoldRow]:
    out = []
    for h in hold_store.holds():
        m = meters.get(h.meter_id)
        node = nodes.get(m.node_id) if m is not None and m.node_id is not None else None
        source = h.source or (_("the station") if h.reason != "operator" else "")
        out.append(HoldRow(
            h.id, node.id if node else None, (node.code or node.name) if node else "–",
            campus.bus_address(m, buses) if m else str(h.meter_id), h.reason,
            _(REASON_TEXT.get(h.reason, h.reason)), _detail(h.reason, h.detail), source,
            h.since, h.restore_at, _ends(h.reason, h.detail), h.overridden_by))
    return sorted(out, key=lambda r: (r.room, r.meter, r.since))


def appliances_by_room(operator: Operator) -> list[tuple[ApplianceRecord, str]]:
    """The allowed appliances, each with its room's number."""
    require(operator, Permission.VIEW)
    nodes = {n.id: n for n in campus.nodes()}
    return [(a, (nodes[a.node_id].code or nodes[a.node_id].name) if a.node_id in nodes
             else "-") for a in store.appliances()]


def _plan_rooms(plan) -> int:
    if plan.applied_at is not None:
        return len(store.undo_rows(plan.id))
    try:
        return len(limit_plans.plan_rooms(plan))
    except UserFacingError:  # its building has no room (any more)
        return 0


def plan_room_count(operator: Operator, name: str) -> int:
    """How many rooms applying (or, in force, undoing) the plan changes."""
    require(operator, Permission.VIEW)
    plan = store.plan_named(name.strip())
    if plan is None:
        raise UserFacingError(_("no plan named {name!r}").format(name=name))
    return _plan_rooms(plan)


def snapshot(operator: Operator) -> RulesSnapshot:
    """Everything the screen shows, read at once."""
    require(operator, Permission.VIEW)
    nodes = {n.id: n for n in campus.nodes()}
    paths = _paths(nodes)
    groups: dict[str, int] = {}
    for a in account_store.open_accounts():
        groups[a.tariff_group] = groups.get(a.tariff_group, 0) + 1
    schedules = store.schedules()
    names = {s.id: s.name for s in schedules}
    return RulesSnapshot(
        targets=targets_of(nodes, paths),
        groups=dict(sorted(groups.items())),
        limits={r.node_id: LimitRow(r.node_id, r.power_limit_w, r.updated_by, r.updated_at)
                for r in store.rules()},
        appliances=store.appliances(),
        schedules=[ScheduleRow(s.name, s.node_id, s.tariff_group,
                               _target_text(s.node_id, s.tariff_group, paths),
                               [window_text(w) for w in s.windows], s.enabled, s.applied)
                   for s in schedules],
        exceptions=[ExceptionRow(e.id, e.day, names.get(e.schedule_id, f"#{e.schedule_id}")
                                 if e.schedule_id is not None else None,
                                 [window_text(w, with_days=False) for w in e.windows], e.note)
                    for e in store.exceptions()],
        plans=[PlanRow(p.name, p.action, p.limit_w, p.node_id, p.tariff_group,
                       _target_text(p.node_id, p.tariff_group, paths), _plan_rooms(p),
                       p.applied_at, p.applied_by) for p in store.plans()],
        holds=_holds(nodes, {b.id: b.name for b in campus.buses()},
                     {m.id: m for m in campus.meters()}),
    )
