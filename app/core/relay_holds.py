"""Why the station keeps a relay open, and the one place that trips and closes automatically.

Every automatic trip is a *hold* on the meter with its reason: ``arrears`` (a station-money
account at zero), ``power_limit`` and ``malicious_load`` (the station saw the room over its
limit or switch on a heater), ``schedule`` (lights-out), ``plan`` (selective limiting); an
operator's confirmed trip is a hold too (``operator``). The meter is tripped while it has an
effective hold and closed when its last one goes, so a room tripped for two reasons is closed
only when both are over, and a recharge never closes a room an operator or a schedule tripped.

* **Keep power (保电) overrides every automatic trip**: nothing here trips a meter in
  keep-power; its holds wait, and take effect if keep-power is switched off while they last.
* **An operator's close** removes the event holds (operator, power_limit, malicious_load:
  somebody looked) and *overrides* the condition holds (arrears, schedule, plan) until their
  condition ends: tonight's lights-out is not repeated after the warden let a room back on, but
  tomorrow's is; a room in arrears closed by hand stays on until it is recharged and sinks
  again.
* **Automatic restore**: a hold with ``restore_at`` goes by itself then (``restore_due``); the
  restores are logged, so the power-limit rule can count them (``core/power_limits``).

All commands go through the signed outbox like the desk's and the operator's, so the process
that polls the meter's bus sends them and reads the relay back. ``sync`` (run every few
seconds by the reading service) trips the held meters whose relay is not open and no trip is on
its way, e.g. after keep-power ended or someone closed the relay at the meter.
"""

from __future__ import annotations

import logging
import time

from app.core import commands, sms_outbox
from app.storage import accounts as account_store
from app.storage import commands as command_store
from app.storage import holds as store
from app.storage.holds import HoldRecord, RelayState
from app.storage.models import database

log = logging.getLogger("voltkeeper.control")

REASONS = ("operator", "arrears", "power_limit", "malicious_load", "schedule", "plan")
#: Holds an operator's close removes: each was one event, and somebody has looked.
EVENT_REASONS = frozenset({"operator", "power_limit", "malicious_load"})
#: Holds an operator's close only overrides: their condition ends them.
CONDITION_REASONS = frozenset({"arrears", "schedule", "plan"})

#: An operator's trip is sent and followed by ``core/control`` itself (and its hold dropped if
#: it failed): ``sync`` leaves such a hold alone this long, so a trip reported failed is never
#: sent afterwards by the station.
OPERATOR_SENDING_S = 15 * 60

#: The trips the room's occupants are texted about (``core/sms_outbox``), at most one text a
#: room, reason and hour: not arrears (the low-balance level-3 text says it) nor lights-out (it
#: happens every night at a time everyone knows).
TEXTED = frozenset({"operator", "power_limit", "malicious_load", "plan"})


def hold(meter_ids: list[int], reason: str, *, source: str = "", detail: str = "",
         restore_at: float | None = None, trip: bool = True, tell: bool = True,
         now: float | None = None) -> list[HoldRecord]:
    """Hold the meters open for ``reason`` (one hold per meter, reason and source: holding
    again adds nothing) and queue their trips (``trip=False``: the caller sends its own);
    ``tell``: text the rooms' occupants (``TEXTED`` reasons). Returns the holds added. In the
    caller's transaction, or one of its own."""
    if reason not in REASONS:
        raise ValueError(f"unknown hold reason {reason!r}")
    now = time.time() if now is None else now
    added: list[HoldRecord] = []
    with database.atomic():
        for meter_id in meter_ids:
            hold_id = store.add_hold(meter_id, reason, source, now, restore_at, detail)
            if hold_id is not None:
                added.append(HoldRecord(hold_id, meter_id, reason, source, now, restore_at,
                                        "", detail))
        off = _trip([h.meter_id for h in added], reason, now) if trip and added else \
            [h.meter_id for h in added]
        if off and tell and reason in TEXTED:
            _tell_occupants([h for h in added if h.meter_id in set(off)], now)
    return added


def _tell_occupants(added: list[HoldRecord], now: float) -> None:
    """Text each room's occupants once (a room with two meters is one room)."""
    rooms = store.meter_nodes([h.meter_id for h in added])
    for node_id in sorted(set(rooms.values())):
        acct = account_store.open_account_for_node(node_id)
        if acct is not None:
            reason = added[0].reason
            sms_outbox.notify(f"trip_{reason}", acct.id,
                              event=f"trip:{reason}:{node_id}:{int(now // 3600)}")


def release(meter_ids: list[int] | None, reason: str, *, source: str | None = None,
            close_unheld: bool = False, now: float | None = None) -> list[int]:
    """End the holds of ``reason`` (and ``source``) on the meters (None: on every meter);
    close the meters left without an effective hold. ``close_unheld``: also close those of
    ``meter_ids`` tripped without any hold (a station-money account's meter tripped before
    holds were kept, or by the meter's own arrears rule). Returns the meters closed."""
    now = time.time() if now is None else now
    with database.atomic():
        gone = store.holds(meter_ids, reason=reason, source=source)
        store.delete_holds([h.id for h in gone])
        freed = {h.meter_id for h in gone}
        if close_unheld and meter_ids is not None:
            freed.update(meter_ids)
        return _close_free(sorted(freed), reason, now)


def renew(meter_ids: list[int], reason: str, *, source: str = "",
          now: float | None = None) -> None:
    """The holds of ``reason``/``source`` on the meters count again (a new window of a
    schedule: an operator's close during the last one no longer overrides); the meters not
    off are tripped."""
    now = time.time() if now is None else now
    with database.atomic():
        found = [h for h in store.holds(meter_ids, reason=reason, source=source)
                 if not h.effective]
        store.override_holds([h.id for h in found], "")
        if found:
            _trip(sorted({h.meter_id for h in found}), reason, now)


def forget(meter_ids: list[int], reason: str, *, source: str | None = None) -> None:
    """Drop holds whose trip never happened (an operator's trip that failed): no command."""
    if meter_ids:
        store.delete_holds([h.id for h in store.holds(meter_ids, reason=reason, source=source)])


def operator_closes(meter_ids: list[int], operator: str) -> None:
    """An operator closes these meters: event holds go, condition holds are overridden (see
    the module's note). The caller queues the close itself."""
    with database.atomic():
        found = store.holds(meter_ids)
        store.delete_holds([h.id for h in found if h.reason in EVENT_REASONS])
        store.override_holds([h.id for h in found if h.reason in CONDITION_REASONS
                              and h.effective], operator)


def restore_due(now: float | None = None) -> list[int]:
    """Automatic restores: the holds whose time has come go; their meters close unless held
    otherwise. Returns the meters closed."""
    now = time.time() if now is None else now
    closed: list[int] = []
    with database.atomic():
        due = store.due_restores(now)
        store.delete_holds([h.id for h in due])
        for reason in sorted({h.reason for h in due}):
            closed += _close_free(sorted({h.meter_id for h in due if h.reason == reason}),
                                  reason, now)
    return closed


def sync(now: float | None = None) -> int:
    """Trip the meters with an effective hold whose relay is not open and no trip is on its
    way (keep-power ones excepted). Returns the trips queued."""
    now = time.time() if now is None else now
    with database.atomic():
        held = store.holds(sorted(store.held_meters()))
        first_reason: dict[int, str] = {}
        for h in held:
            if h.effective and not (h.reason == "operator" and now - h.since < OPERATOR_SENDING_S):
                first_reason.setdefault(h.meter_id, h.reason)
        states = store.relay_states(sorted(first_reason))
        queued = 0
        for meter_id, reason in first_reason.items():
            if needs_trip(states[meter_id]):
                _queue(meter_id, "trip", reason, now)
                queued += 1
        return queued


def needs_trip(s: RelayState) -> bool:
    """Whether a held meter must be sent a trip: not in keep-power, not read open, and no
    trip on its way or confirmed since it was last read."""
    if s.keep_power or s.control_mode == "forced_trip":
        return False
    if s.last_action == "trip" and (s.last_state == "pending" or s.read_at is None
                                    or (s.last_at or 0) >= s.read_at):
        return False
    return True


def _trip(meter_ids: list[int], reason: str, now: float) -> list[int]:
    """Trip the meters that need it; a restore's close not sent yet is withdrawn instead of
    answered with a trip. Returns the meters that are or will be off (not keep-power ones)."""
    states = store.relay_states(meter_ids)
    off = []
    for meter_id in meter_ids:
        s = states[meter_id]
        if s.keep_power:
            continue
        off.append(meter_id)
        if s.last_action == "close" and s.last_state == "pending":
            pending = [i.id for i in command_store.pending_relay_commands(meter_id)]
            if set(pending) <= command_store.withdraw(pending, f"held again: {reason}") \
                    and s.control_mode == "forced_trip":
                continue  # the relay never closed
            s = store.relay_states([meter_id])[meter_id]  # without what was withdrawn
        if needs_trip(s):
            _queue(meter_id, "trip", reason, now)
    return off


def _close_free(meter_ids: list[int], reason: str, now: float) -> list[int]:
    """Close the meters among ``meter_ids`` left without an effective hold. A trip still
    pending is answered with a close queued after it (never withdrawn: the bus may be sending
    it this moment, and a withdrawn trip that lands anyway would leave the room dark with no
    reason)."""
    still = {h.meter_id for h in store.holds(meter_ids) if h.effective}
    free = [m for m in meter_ids if m not in still]
    states = store.relay_states(free)
    closed = []
    for meter_id in free:
        s = states[meter_id]
        if s.last_action == "close" and s.last_state == "pending":
            closed.append(meter_id)  # already on its way
            continue
        trip_unread = s.last_action == "trip" and (
            s.last_state == "pending" or s.read_at is None or (s.last_at or 0) >= s.read_at)
        if s.control_mode == "forced_trip" or trip_unread:
            _queue(meter_id, "close", reason, now)
            closed.append(meter_id)
    return closed


def _queue(meter_id: int, action: str, reason: str, now: float) -> None:
    commands.queue(meter_id, action)
    store.log(now, meter_id, action, reason)
    log.info("automatic %s of meter %s (%s)", action, meter_id, reason)
