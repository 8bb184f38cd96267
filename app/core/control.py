"""Remote control (拉闸, 合闸, 保电): trip, close, keep power on or off, for a room or a batch.

An operation like any other: the operator's role is checked (one room: ``control_meter``; a
floor, a building, a tariff group or a hand-picked list: ``control_batch``), the reason is
required, and the commands and the audit entry are written in one transaction. The commands go
through the outbox (``core/commands.queue``, signed), so whichever process polls a meter's bus
sends them, all buses in parallel, each ahead of its meter's next poll, and confirms each by
reading the relay's state back (``core/outbox.py``). ``control`` then follows them until every
meter has confirmed or failed, or ``wait_s`` runs out, telling ``progress`` per meter
(queued, sent, confirmed, failed with the reason); cancelling it withdraws what was not sent
yet. What is still unconfirmed at the end is withdrawn and reported failed, with the reason
(the meter is offline, nobody polls its bus, its bus is down), so a trip the operator was told
failed does not land an hour later. The outcome is audited too (``control_result``).

A trip holds the relay open from the moment it is queued until an operator closes it
(``core/relay_holds``): a recharge, the end of lights-out or an automatic restore does not
close it; a trip that failed holds nothing. A close ends the
holds an operator may end. Keep power (保电) overrides every automatic trip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from app.core import commands, relay_holds
from app.core.audit import act, record
from app.core.operators import Operator, Permission
from app.core.progress import Progress
from app.errors import Cancelled, UserFacingError
from app.i18n import N_, _
from app.storage import accounts as account_store
from app.storage import campus, lease, readings
from app.storage import commands as command_store

#: The command line's words for the actions, and the profile's control names.
ACTIONS = {"trip": "trip", "close": "close", "keep-power-on": "keep_power_on",
           "keep-power-off": "keep_power_off"}
ACTION_TEXT = {"trip": N_("trip"), "close": N_("close"), "keep_power_on": N_("keep power on"),
               "keep_power_off": N_("keep power off")}
DEFAULT_WAIT_S = 60.0
#: How often the commands' states are looked at while waiting.
FOLLOW_EVERY_S = 0.3
#: After withdrawing, how long a command a bus was sending at that moment may take to be
#: confirmed (one write and one read-back, with room): it is then reported as it ended.
WITHDRAW_GRACE_S = 0.6


@dataclass(frozen=True)
class ControlTarget:
    meter_id: int
    meter: str  # as the station shows it: bus/address (B01/3)
    room: str  # the room's or shop's number (code), or its name
    node_id: int | None


@dataclass(frozen=True)
class ControlOutcome:
    room: str
    meter: str
    outcome: str  # queued, sent, confirmed, failed
    reason: str = ""

    def as_json(self) -> dict:
        return {"room": self.room, "meter": self.meter, "outcome": self.outcome,
                "reason": self.reason}


def _node_name(n: campus.NodeRecord) -> str:
    return n.code or n.name


def select_nodes(*, room: str | None = None, building: str | None = None,
                 group: str | None = None, node_ids: list[int] | None = None) -> set[int]:
    """The nodes a selection names: a room (its number), a building or any node of the tree by
    its name or code as the tree shows it (with everything under it), the rooms of a tariff
    group's open accounts, or hand-picked nodes (each with everything under it). Refuses a
    name that names nothing."""
    nodes = {n.id: n for n in campus.nodes()}
    children: dict[int | None, list[int]] = {}
    for n in nodes.values():
        children.setdefault(n.parent_id, []).append(n.id)
    chosen: set[int] = set()

    def with_everything_under(roots: list[int]) -> None:
        stack = list(roots)
        while stack:
            nid = stack.pop()
            chosen.add(nid)
            stack.extend(children.get(nid, ()))

    if room is not None:
        found = [n.id for n in nodes.values() if n.code == room.strip()
                 and n.kind in ("room", "shop")]
        if not found:
            raise UserFacingError(_("no room {room!r}").format(room=room))
        chosen.update(found)
    if building is not None:
        with_everything_under([named_node(building, nodes)])
    if group is not None:
        found = [a.node_id for a in account_store.open_accounts()
                 if a.tariff_group == group.strip()]
        if not found:
            raise UserFacingError(_("no open account is in the group {group!r}")
                                  .format(group=group))
        chosen.update(found)
    if node_ids is not None:
        with_everything_under(node_ids)
    return chosen


#: What ``--building`` may name: the campus, a building or a floor (not a room or a shop).
ABOVE_ROOMS = ("campus", "building", "floor")


def named_node(name: str, nodes: dict[int, campus.NodeRecord] | None = None) -> int:
    """The campus, building or floor the tree shows as ``name`` (its name or its code).
    Refuses a name that names nothing, or several (every building has a floor "1F": its code,
    e.g. 1-1F, names one)."""
    key = name.strip()
    nodes = {n.id: n for n in campus.nodes()} if nodes is None else nodes
    found = [n for n in nodes.values() if n.kind in ABOVE_ROOMS and key in (n.name, n.code)]
    if not found:
        raise UserFacingError(_("no building or part of the campus named {name!r}")
                              .format(name=name))
    by_code = [n for n in found if n.code == key]
    if len(found) > 1 and len(by_code) == 1:
        return by_code[0].id
    if len(found) > 1:
        raise UserFacingError(_("{name!r} names {n} parts of the campus: give the code of the "
                                "one you mean ({codes})").format(
            name=name, n=len(found), codes=", ".join(n.code or n.name for n in found[:6])))
    return found[0].id


def is_room(node_id: int) -> bool:
    return any(n.id == node_id and n.kind in ("room", "shop") for n in campus.nodes())


def select_rooms(**selection) -> list[int]:
    """The rooms and shops (node ids) of a selection (see ``select_nodes``)."""
    chosen = select_nodes(**selection)
    rooms = sorted(n.id for n in campus.nodes() if n.id in chosen and n.kind in ("room", "shop"))
    if not rooms:
        raise UserFacingError(_("the selection has no room"))
    return rooms


def targets(*, room: str | None = None, building: str | None = None,
            group: str | None = None, node_ids: list[int] | None = None) -> list[ControlTarget]:
    """The enabled meters of a selection (see ``select_nodes``)."""
    chosen = select_nodes(room=room, building=building, group=group, node_ids=node_ids)
    nodes = {n.id: n for n in campus.nodes()}
    buses = {b.id: b.name for b in campus.buses()}
    out = [ControlTarget(m.id, campus.bus_address(m, buses),
                         _node_name(nodes[m.node_id]) if m.node_id in nodes else "-", m.node_id)
           for m in campus.meters() if m.enabled and m.node_id in chosen]
    if not out:
        raise UserFacingError(_("the selection has no meter"))
    return out


Listener = Callable[[ControlOutcome], None]


def control(operator: Operator, chosen: list[ControlTarget], action: str, reason: str, *,
            selection: str = "", wait_s: float = DEFAULT_WAIT_S,
            progress: Progress | None = None,
            on_outcome: Listener | None = None) -> list[ControlOutcome]:
    """Send ``action`` (a key or value of ``ACTIONS``) to every chosen meter and follow it
    until each has confirmed or failed (see the module's note). ``selection``: what the
    operator chose, as shown (the audit's target); ``on_outcome``: told each meter's outcome as
    it changes."""
    action = ACTIONS.get(action, action)
    if action not in ACTION_TEXT:
        raise UserFacingError(_("unknown action {action!r} (use: {known})").format(
            action=action, known=", ".join(ACTIONS)))
    if not reason.strip():
        raise UserFacingError(_("give the reason for the command"))
    if not chosen:
        raise UserFacingError(_("the selection has no meter"))
    single = len({t.node_id for t in chosen}) == 1
    permission = Permission.CONTROL_METER if single else Permission.CONTROL_BATCH
    with act(operator, permission, "control",
             target=selection or ", ".join(sorted({t.room for t in chosen}))) as a:
        meter_ids = [t.meter_id for t in chosen]
        if action == "close":  # see core/relay_holds: an operator's close ends the holds
            relay_holds.operator_closes(meter_ids, operator.name)
        elif action == "trip":  # held open from now on: never closed by a recharge or a restore
            relay_holds.hold(meter_ids, "operator", source=operator.name,
                             detail=reason.strip()[:500], trip=False)
        items = {commands.queue(t.meter_id, action): t for t in chosen}
        a.after = {"action": action, "meters": len(items)}
        a.detail = reason.strip()
    outcomes = _follow(items, wait_s, progress, on_outcome)
    if action == "trip":  # a trip that failed (withdrawn, never sent) holds nothing
        by_meter = {t.meter: t.meter_id for t in chosen}
        relay_holds.forget([by_meter[o.meter] for o in outcomes if o.outcome != "confirmed"],
                           "operator", source=operator.name)
    confirmed = sum(1 for o in outcomes if o.outcome == "confirmed")
    record(operator.name, "control_result", target=selection or a.target,
           after={"action": action, "confirmed": confirmed,
                  "failed": len(outcomes) - confirmed},
           detail="; ".join(f"{o.meter} {o.reason}" for o in outcomes
                            if o.outcome != "confirmed")[:2000])
    return outcomes


def _follow(items: dict[int, ControlTarget], wait_s: float, progress: Progress | None,
            on_outcome: Listener | None) -> list[ControlOutcome]:
    """Watch the commands' states until each is done, the time is up or ``progress`` is
    cancelled; withdraw what is left."""
    shown: dict[int, str] = {}
    deadline = time.monotonic() + wait_s
    cancelled = False
    while True:
        states = {i.id: i for i in account_store.outbox_items_with_ids(list(items))}
        done = 0
        for item_id, target in items.items():
            item = states.get(item_id)
            state = _outcome(item)
            if state in ("confirmed", "failed"):
                done += 1
            if shown.get(item_id) != state:
                shown[item_id] = state
                if on_outcome is not None:
                    on_outcome(ControlOutcome(target.room, target.meter, state,
                                              _reason(item) if state == "failed" else ""))
        if progress is not None:
            try:
                progress.step(done, len(items))
            except Cancelled:
                cancelled = True
        if done == len(items) or cancelled or time.monotonic() >= deadline:
            break
        time.sleep(FOLLOW_EVERY_S)
    why = _("cancelled by the operator") if cancelled else None
    withdrawn = command_store.withdraw([i for i, s in shown.items()
                                        if s not in ("confirmed", "failed")],
                                       why or "not confirmed in time")
    if withdrawn:  # one being sent as it was withdrawn is confirmed by its bus just after
        time.sleep(WITHDRAW_GRACE_S)
    outcomes = []
    final = {i.id: i for i in account_store.outbox_items_with_ids(list(items))}
    states = {item_id: _outcome(final.get(item_id)) for item_id in items}
    # failed on its own (its reason is its row's), or not confirmed in time (the station's)
    own = {i for i, state in states.items() if state == "failed" and i not in withdrawn}
    unconfirmed = [t for i, t in items.items() if states[i] != "confirmed" and i not in own]
    reasons = {} if why or not unconfirmed else _unconfirmed_reasons(unconfirmed, wait_s)
    for item_id, target in items.items():
        item, state = final.get(item_id), states[item_id]
        if state == "confirmed":
            outcomes.append(ControlOutcome(target.room, target.meter, "confirmed"))
            continue
        reason = _reason(item) if item_id in own else (why or reasons[target.meter_id])
        outcomes.append(ControlOutcome(target.room, target.meter, "failed", reason))
        if on_outcome is not None and shown.get(item_id) != "failed":
            on_outcome(outcomes[-1])
    return outcomes


def _outcome(item) -> str:
    if item is None:
        return "failed"
    if item.state == "applied":
        return "confirmed"
    if item.state in ("failed", "withdrawn"):
        return "failed"
    return "sent" if item.attempts else "queued"


def _reason(item) -> str:
    if item is None:
        return _("the command is gone")
    return item.last_error or _("refused")


def _unconfirmed_reasons(chosen: list[ControlTarget], wait_s: float) -> dict[int, str]:
    """Why each meter did not confirm in time, as far as the station knows (asked of the
    database once for them all)."""
    if lease.holder() is None:
        return dict.fromkeys((t.meter_id for t in chosen),
                             _("nobody polls the buses (start serve or the window)"))
    offline = {r.meter_id for r in readings.latest([t.meter_id for t in chosen])
               if not r.online}
    states = readings.bus_states()
    bus_state = {b.name: states.get(b.id, {}).get("state") for b in campus.buses()}
    out = {}
    for t in chosen:
        state = bus_state.get(t.meter.split("/")[0])
        if t.meter_id in offline:
            out[t.meter_id] = _("the meter is offline")
        elif state in ("down", "error"):
            out[t.meter_id] = _("its bus is {state}").format(state=state)
        else:
            out[t.meter_id] = _("not confirmed within {s:.0f} s").format(s=wait_s)
    return out
