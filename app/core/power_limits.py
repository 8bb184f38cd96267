"""Rooms' power limits and allowed appliances, written to the meters and enforced by the station.

A room's power limit (W) is written to its meters (the meter trips itself over it, where it
can) and watched by the station on every reading as well (``LimitWatch``): a meter that lacks the
register, or whose own rule is off, is held to it all the same. Over the limit the station
trips the room (a ``power_limit`` hold, ``core/relay_holds``) and restores it after
``control.restore_delay_s``; after ``control.max_restores`` automatic restores within an hour
the room stays off until an operator closes it. A malicious load the station sees
(``core/load_detector``; a room's allowed appliances are its whitelist) is tripped and restored
the same way. Keep power (保电) overrides both: the alarm is raised, nothing is tripped.

The meter's own malicious-load rule (on/off, the step threshold) is configured through its
profile (``configure_detection``). Settings go to meters through the signed outbox like
every command; the sender reads the value back (and keeps the value it replaced, so a limiting
plan can be undone exactly: ``core/limit_plans``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from app.core import commands, control, relay_holds, settings
from app.core.alarms import raise_alarm
from app.core.audit import act
from app.core.load_detector import Appliance as DetectorAppliance
from app.core.operators import Operator, Permission
from app.errors import UserFacingError
from app.i18n import _
from app.storage import holds as hold_store
from app.storage import rules as store
from app.storage.models import database

log = logging.getLogger("voltkeeper.control")

MAX_LIMIT_W = 100_000
#: How often the watch reads the rules again (they change by an operator's act).
RULES_MAX_AGE_S = 30.0


# -- operations ---------------------------------------------------------------------------------
def set_power_limit(operator: Operator, rooms: list[int], limit_w: int | None, *,
                    selection: str = "") -> int:
    """Give the rooms a power limit (W), written to their meters; ``None`` removes the
    station's limit (the meters keep theirs). Returns how many meters were sent it."""
    if limit_w is not None and not 0 < limit_w <= MAX_LIMIT_W:
        raise UserFacingError(_("a power limit is from 1 to {max} W").format(max=MAX_LIMIT_W))
    before = store.power_limits(rooms)
    with act(operator, Permission.CONTROL_BATCH, "power_limit",
             target=selection or f"{len(rooms)} rooms",
             before={str(k): v for k, v in before.items()}) as a:
        sent = 0
        for node_id in rooms:
            if limit_w is None:
                store.drop_rule(node_id)
            else:
                store.set_power_limit(node_id, limit_w, operator.name)
                sent += len(write_setting(node_id, "power_limit", limit_w))
        a.after = {"limit_w": limit_w, "rooms": len(rooms), "meters": sent}
    return sent


def write_setting(node_id: int, action: str, value: int) -> list[int]:
    """Queue a setting for the room's enabled meters (in the caller's transaction); their
    outbox ids."""
    meters = hold_store.enabled_meters_of_nodes([node_id])
    return [commands.queue(meter_id, action, amount_cents=int(value)) for meter_id in meters]


def configure_detection(operator: Operator, rooms: list[int], *, enabled: bool | None = None,
                        threshold_w: int | None = None, selection: str = "") -> int:
    """Switch the meters' own malicious-load rule on or off and/or set its step threshold
    (W). Returns how many settings were queued."""
    if enabled is None and threshold_w is None:
        raise UserFacingError(_("say what to set: detection on or off, or the threshold"))
    if threshold_w is not None and not 0 < threshold_w <= 10_000:
        raise UserFacingError(_("a malicious-load threshold is from 1 to 10000 W"))
    with act(operator, Permission.CONTROL_BATCH, "malicious_load_rule",
             target=selection or f"{len(rooms)} rooms") as a:
        queued = 0
        for node_id in rooms:
            if enabled is not None:
                queued += len(write_setting(node_id, "malicious_load_detection", int(enabled)))
            if threshold_w is not None:
                queued += len(write_setting(node_id, "malicious_load_threshold", threshold_w))
        a.after = {"enabled": enabled, "threshold_w": threshold_w, "settings": queued}
    return queued


def add_appliance(operator: Operator, node_id: int, name: str, rated_w: int, *,
                  room: str = "") -> int:
    """Allow an appliance in a room (a 1,200 W kettle): a step of its rating there is no
    malicious load."""
    name = name.strip()
    if not name:
        raise UserFacingError(_("give the appliance's name"))
    if not control.is_room(node_id):
        raise UserFacingError(_("appliances are allowed in a room or a shop"))
    if not 0 < rated_w <= 20_000:
        raise UserFacingError(_("an appliance's rated power is from 1 to 20000 W"))
    with act(operator, Permission.CONTROL_BATCH, "appliance_allow", target=room or str(node_id),
             node_id=node_id) as a:
        appliance_id = store.add_appliance(node_id, name, rated_w, operator.name)
        a.after = {"name": name, "rated_w": rated_w}
    return appliance_id


def remove_appliance(operator: Operator, appliance_id: int) -> None:
    with act(operator, Permission.CONTROL_BATCH, "appliance_remove",
             target=str(appliance_id)) as a:
        gone = store.remove_appliance(appliance_id)
        if gone is None:
            raise UserFacingError(_("no allowed appliance {id}").format(id=appliance_id))
        a.before = {"name": gone.name, "rated_w": gone.rated_w, "node": gone.node_id}
        a.node_id = gone.node_id


# -- the station's own enforcement --------------------------------------------------------------
@dataclass(frozen=True)
class RestorePolicy:
    delay_s: int
    max_restores: int

    @classmethod
    def from_settings(cls) -> RestorePolicy:
        return cls(settings.get(settings.RESTORE_DELAY_S), settings.get(settings.MAX_RESTORES))


def restore_time(policy: RestorePolicy, restores_last_hour: int, now: float) -> float | None:
    """When a room tripped now is restored: after the delay, or never by itself (None) once
    it was restored ``max_restores`` times within the hour."""
    if restores_last_hour >= policy.max_restores:
        return None
    return now + policy.delay_s


def trip_room_meter(meter_id: int, reason: str, params: dict[str, object],
                    policy: RestorePolicy, now: float) -> float | bool | None:
    """Trip a meter the station saw over its limit or with a malicious load: a hold with its
    automatic restore (``restore_time``), and the alarm. Returns the restore time (None:
    stays off until an operator acts), or False when it was held already."""
    with database.atomic():
        if hold_store.holds([meter_id], reason=reason):
            return False
        restores = hold_store.restores_since(meter_id, now - 3600, (reason,))
        restore_at = restore_time(policy, restores, now)
        relay_holds.hold([meter_id], reason, restore_at=restore_at, now=now,
                         detail=str(params.get("power", "")))
        raise_alarm(reason, 3, {**params, "meter": meter_id, "variant": "station",
                                "locked_out": restore_at is None,
                                "restores": restores},
                    meter_id=meter_id, once=False, t=now)
    return restore_at


@dataclass
class RuleCache:
    """The rooms' limits and whitelists per meter, read again every ``RULES_MAX_AGE_S``."""

    max_age_s: float = RULES_MAX_AGE_S
    limits: dict[int, int] = field(default_factory=dict)
    whitelists: dict[int, list[DetectorAppliance]] = field(default_factory=dict)
    _read_at: float = field(default=-1e18, init=False)

    def fresh(self, now: float | None = None) -> RuleCache:
        now = time.monotonic() if now is None else now
        if self.stale(now):
            self.limits = store.meter_limits()
            self.whitelists = {m: [DetectorAppliance(a.name, float(a.rated_w)) for a in rows]
                               for m, rows in store.meter_whitelists().items()}
            self._read_at = now
        return self

    def stale(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now - self._read_at >= self.max_age_s

    def expire(self) -> None:
        self._read_at = -1e18


def over_limit(power_w: float | None, limit_w: int | None) -> bool:
    """Whether a reading is over the room's limit (strictly above it)."""
    return power_w is not None and limit_w is not None and abs(power_w) > limit_w
