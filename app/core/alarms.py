"""Raising alarms: the one function every part of the station uses, and the alarm list.

An alarm has a kind, a level (1 notice, 2 warning, 3 danger), the meter and account it concerns,
and its parameters. Its text is written from the kind's template in the language of whoever
reads it (``alarm_text``), not frozen in the language of the moment it was raised; the
English text is also stored for anyone reading the database directly. By default an alarm is
raised once: while one of the same kind for the same meter and account is open, no second one.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import NamedTuple

from app.core.audit import act
from app.core.operators import Operator, Permission, require
from app.errors import UserFacingError
from app.i18n import N_, _
from app.storage import accounts as account_store
from app.storage import alarms as store
from app.storage import campus
from app.storage.alarms import AlarmRecord

log = logging.getLogger("voltkeeper.alarms")

#: The wording of each kind of alarm (parameters by name).
TEMPLATES = {
    "command_failed": N_("{action} for meter {meter} failed: {error}"),
    "reconciliation": N_("meter money {meter_money} differs from the ledger {ledger} by "
                         "{diff}: possible tampering or theft"),
    "backup_failed": N_("the daily backup of {db} failed: {error}"),
    "bad_reading": N_("meter {meter} sent a value that cannot be right ({point}: {value}); "
                      "it was left out and the meter's other values kept"),
    "documented_missing": N_("meter {meter} refuses registers its maker documents ({points}): "
                             "is it the model its profile says?"),
    "forged_command": N_("a command for meter {meter} was refused and not sent ({action} "
                         "{amount}, outbox {outbox}): {why}; someone wrote to the database "
                         "outside VoltKeeper"),
    "readings_unsent": N_("the database could not be written from {since} for {seconds} s "
                          "({error}): the readings of that time were held and are stored now"),
    "account_mode": N_("meter {meter} has no recharge token registers ({missing}): account "
                       "{account} now keeps its money at the station (trip at zero, close on "
                       "recharge); {tokens} waiting token(s) settled at the station"),
    "bad_profile": N_("meter {meter} (bus {bus}, address {address}) is not polled: its "
                      "profile {file} is refused ({key}: {problem})"),
    "power_limit": N_("meter {meter} tripped itself over its power limit (drawing {power} "
                      "W before)"),
    "malicious_load": N_("meter {meter} tripped itself on a malicious load, a resistive step "
                         "above its threshold (drawing {power} W before): an immersion heater "
                         "or a hot plate?"),
    "malicious_load.station": N_("meter {meter}: the station saw a resistive step of {power} "
                                 "W (power factor {pf}), a malicious load: an immersion heater "
                                 "or a hot plate?"),
    "power_limit.station": N_("meter {meter} drew {power} W, over its room's limit of {limit} "
                              "W: the station tripped it"),
    "schedule_trip": N_("schedule {schedule}: {rooms} meter(s) tripped until {until}"),
    "low_balance": N_("room {room} (account {account}) has {balance} left: low balance, "
                      "level {level}"),
    "meter_offline": N_("meter {meter} does not answer: {why}"),
    "bus_down": N_("bus {bus} is down: {error}"),
    "token_refused": N_("meter {meter} refused a recharge token (outbox {outbox}): {error}"),
    "payment_refused": N_("payment notification from {channel} refused (order {order}, "
                          "transaction {transaction}): {why}"),
}


def _render(kind: str, params: dict, translate: bool) -> str:
    """The alarm's text: its kind's template, or its variant's (``kind.variant``: the same kind
    said by another source)."""
    template = TEMPLATES.get(f"{kind}.{params.get('variant')}") or TEMPLATES.get(kind)
    if template is None:
        return params.get("message", kind)
    try:
        return (_(template) if translate else template).format(**params)
    except (KeyError, IndexError, ValueError):
        return template


def raise_alarm(kind: str, level: int, params: dict[str, object], *,
                meter_id: int | None = None, account_id: int | None = None,
                bus_id: int | None = None, once: bool = True,
                t: float | None = None) -> int | None:
    """Raise an alarm; returns its id, or None when an open one of the same kind exists."""
    if kind not in TEMPLATES:
        raise ValueError(f"no template for alarm kind {kind!r}")
    if once and store.open_alarm_exists(kind, meter_id, account_id, bus_id):
        return None
    params = {k: str(v) for k, v in params.items()}
    message = _render(kind, params, translate=False)
    alarm_id = store.insert_alarm(time.time() if t is None else t, kind, level, meter_id,
                                  account_id, message, json.dumps(params, ensure_ascii=False),
                                  bus_id)
    log.warning("alarm %s (%s): %s", alarm_id, kind, message)
    return alarm_id


def clear_alarm(kind: str, *, meter_id: int | None = None, bus_id: int | None = None,
                account_id: int | None = None, t: float | None = None) -> int:
    """The condition is over (the meter answers, the bus polls, the balance is back): its open
    alarms clear."""
    return store.clear_alarms(kind, time.time() if t is None else t, meter_id=meter_id,
                              bus_id=bus_id, account_id=account_id)


def clear_alarm_ids(alarm_ids: list[int], *, t: float | None = None) -> int:
    """Clear these alarms (a condition without a meter, bus or account: a schedule's night)."""
    return store.clear_ids(alarm_ids, time.time() if t is None else t)


def acknowledge(operator: Operator, alarm_id: int, comment: str) -> bool:
    """Acknowledge an alarm with a comment (audited); False when it was already."""
    alarm = store.get(alarm_id)
    if alarm is None:
        raise UserFacingError(_("no alarm {id}").format(id=alarm_id))
    with act(operator, Permission.VIEW, "alarm_ack", target=f"{alarm.kind} #{alarm_id}") as a:
        done = store.acknowledge(alarm_id, operator.name, comment.strip(), time.time())
        a.detail = comment.strip()
    return done


def alarm_rows(operator: Operator, *, active: bool = False, limit: int = 1000) -> list[dict]:
    """The alarm list as ``main.py alarms --json`` gives it (keys in the README): the room and
    the meter as the station shows them, the text in the reader's language. ``active``: not
    cleared."""
    require(operator, Permission.VIEW)
    nodes = {n.id: n for n in campus.nodes()}
    buses = {b.id: b.name for b in campus.buses()}
    meters = {m.id: m for m in campus.meters()}
    accounts = {a.id: a for a in account_store.open_accounts()}
    out = []
    for a in store.find_alarms(open_only=active, limit=limit):
        meter = meters.get(a.meter_id) if a.meter_id is not None else None
        node_id = meter.node_id if meter is not None else (
            accounts[a.account_id].node_id if a.account_id in accounts else None)
        node = nodes.get(node_id) if node_id is not None else None
        out.append({
            "id": a.id, "kind": a.kind, "level": a.level,
            "room": (node.code or node.name) if node is not None else None,
            "meter": campus.bus_address(meter, buses)
            if meter is not None else (buses.get(a.bus_id) if a.bus_id is not None else None),
            "raised_at": a.t, "cleared_at": a.cleared_at,
            "acknowledged_by": a.acknowledged_by, "text": alarm_text(a),
        })
    return out


@dataclass(frozen=True)
class AlarmView:
    id: int
    t: float
    kind: str
    level: int
    meter_id: int | None
    account_id: int | None
    text: str  # in the reader's language
    cleared_at: float | None


def alarm_text(a: AlarmRecord) -> str:
    try:
        params = json.loads(a.data) if a.data.startswith("{") else None
    except ValueError:
        params = None
    if not isinstance(params, dict):
        return a.message
    return _render(a.kind, params, translate=True)


def alarm_list(operator: Operator, *, open_only: bool = True, kind: str | None = None,
               meter_ids: list[int] | None = None, account_id: int | None = None,
               limit: int = 1000) -> list[AlarmView]:
    """The alarm list, newest first, each in the reader's language."""
    require(operator, Permission.VIEW)
    return [AlarmView(a.id, a.t, a.kind, a.level, a.meter_id, a.account_id, alarm_text(a),
                      a.cleared_at)
            for a in store.find_alarms(open_only=open_only, kind=kind, meter_ids=meter_ids,
                                       account_id=account_id, limit=limit)]


# -- what the window watches: each room's worst open alarm, and the new ones ----------------------
#: The level of a danger alarm (the window sounds it).
DANGER = 3


class RoomAlarm(NamedTuple):
    """A room's worst open alarm: its level, its text (in the reader's language), and how many
    alarms the room has open."""

    level: int
    text: str
    count: int = 1


@dataclass(frozen=True)
class RaisedAlarm:
    """An open alarm raised since the window last looked."""

    id: int
    t: float
    kind: str
    level: int
    node_id: int | None  # the room it concerns, if any
    text: str  # in the reader's language


@dataclass(frozen=True)
class OpenAlarms:
    rooms: dict[int, RoomAlarm]  # room (node id) -> its worst open alarm
    raised: list[RaisedAlarm]  # open alarms newer than ``after_id``, of ``min_level`` or above
    last_id: int  # what to pass as ``after_id`` next time


def open_alarms(operator: Operator, *, after_id: int | None = None,
                min_level: int = DANGER) -> OpenAlarms:
    """The open alarms as the window shows them, from one query: each room's worst (highest
    level, then newest; an alarm belongs to a room through its meter, or else its account),
    and those raised since ``after_id`` at ``min_level`` or above, oldest first. With no
    ``after_id`` (the first look) none counts as raised: ``last_id`` is then the newest alarm's,
    open or cleared, so an alarm that existed before is never news."""
    require(operator, Permission.VIEW)
    found = store.open_alarms_with_node()
    worst: dict[int, AlarmRecord] = {}
    counts: dict[int, int] = {}
    for node_id, a in found:
        if node_id is None:
            continue
        counts[node_id] = counts.get(node_id, 0) + 1
        best = worst.get(node_id)
        if best is None or (a.level, a.t, a.id) > (best.level, best.t, best.id):
            worst[node_id] = a
    rooms = {n: RoomAlarm(a.level, alarm_text(a), counts[n]) for n, a in worst.items()}
    if after_id is None:
        return OpenAlarms(rooms, [], store.last_id())
    raised = [RaisedAlarm(a.id, a.t, a.kind, a.level, node_id, alarm_text(a))
              for node_id, a in found if a.id > after_id and a.level >= min_level]
    return OpenAlarms(rooms, raised, max([after_id, *(a.id for _n, a in found)]))


def room_alarms(operator: Operator) -> dict[int, RoomAlarm]:
    """Each room's worst open alarm: {node id: (level, text, count)}."""
    return open_alarms(operator).rooms
