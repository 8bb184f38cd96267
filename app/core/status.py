"""The station's status as plain data: each bus and each meter (``main.py status --json``;
keys documented in the README).

What is stored is not taken for what is true now. A meter's ``state`` says what to believe:
``online`` (it answered at its last poll, its bus polls, and that read is fresh), ``stale``
(stored online, but its read is older than ``stale_after_s`` of its bus, its bus is not polling
or nobody polls at all), ``offline`` or ``never_read``; ``age_s`` is its last read's age.
``online`` keeps what the polling process stored (the meter answered at its last poll). When no
process holds the polling lease, ``polling`` is false and every bus is ``unpolled`` with no
meter online (``last_state``: what was stored when it was polled).

``storage`` says whether the polling process holds readings it could not store (the database
locked past its busy timeout, a full disk): ``unsent``, ``since`` and ``error`` from the writer's
side note (``storage/unsent.py``), all empty when everything is stored."""

from __future__ import annotations

import time

from app.core import balances as live
from app.drivers.meter_values import MeterValues
from app.storage import accounts as store
from app.storage import campus, capabilities, lease, readings, unsent
from app.storage.db import database_path

#: A read is stale when older than this many cycles of its bus (poll interval or the cycle's
#: own time, the longer), and never before STALE_MIN_S: a cycle that has not come round again.
STALE_CYCLES = 2
STALE_MIN_S = 30.0


def stale_after_s(poll_interval_s: float | None, last_cycle_s: float | None = None) -> float:
    """How old a meter's last read may be before it is stale, on a bus polled every
    ``poll_interval_s`` whose last cycle took ``last_cycle_s``."""
    cycle = max(poll_interval_s or 0.0, last_cycle_s or 0.0)
    return max(STALE_MIN_S, STALE_CYCLES * cycle)


def meter_state(stored_online: bool | None, read_at: float | None, bus_polled: bool,
                stale_after: float, now: float) -> str:
    """What to believe of a meter now: ``online``, ``stale``, ``offline`` or ``never_read``.
    ``stored_online``: what the polling process stored (None: nothing); ``bus_polled``: a
    process polls its bus now (it holds the lease and the bus is polling)."""
    if read_at is None:
        return "never_read"
    if not stored_online:
        return "offline"
    if not bus_polled or now - read_at > stale_after:
        return "stale"
    return "online"


#: A meter's reading keys, all ``None`` while it was never read.
_READING_KEYS = ("read_at", "voltage_v", "power_w", "energy_kwh", "energy_wh", "money_cents",
                "relay_closed", "control_mode")


def _reading(v: MeterValues | None) -> dict:
    """A meter's last read under the status keys (energy in kWh for reading, Wh exact)."""
    if v is None:
        return dict.fromkeys(_READING_KEYS)
    wh = v.energy_wh
    return {
        "read_at": v.read_at, "voltage_v": v.voltage_v, "power_w": v.active_power_w,
        "energy_kwh": None if wh is None else wh / 1000, "energy_wh": wh,
        "money_cents": v.remaining_money_cents, "relay_closed": v.relay_closed,
        "control_mode": v.control_mode,
    }


#: The writer rewrites its note at every flush that fails (about every 10 s): an older one
#: was left by a process that is gone.
NOTE_FRESH_S = 120.0


def _storage(now: float) -> dict:
    """What the polling process could not store yet, from its side note (the lease may have
    run out meanwhile: renewing it is a write too)."""
    path = database_path()
    note = unsent.read_note(path) if path is not None else None
    if not note or now - float(note.get("updated_at", 0)) > NOTE_FRESH_S:
        return {"unsent": 0, "since": None, "error": ""}
    return {"unsent": int(note.get("unsent", 0)), "since": note.get("since"),
            "error": str(note.get("error", ""))}


def collect(now: float | None = None) -> dict:
    """The status as plain data (what ``--json`` prints)."""
    now = time.time() if now is None else now
    nodes = {n.id: n for n in campus.nodes()}
    latest = {r.meter_id: r for r in readings.latest()}
    states = readings.bus_states()
    holder = lease.holder(now=now)
    caps = capabilities.load()
    out = {
        "generated_at": now,
        "polled_by": holder.describe() if holder else None,
        "polling": holder is not None,
        "buses": [],
        "meters": [],
        "storage": _storage(now),
        "workers": [{"name": w.name, "state": w.state, "error": w.error,
                     "restarts": w.restarts, "last_error_at": w.last_error_at,
                     "changed_at": w.changed_at} for w in capabilities.worker_states()],
    }
    buses = campus.buses()
    polled: dict[int, bool] = {}
    stale_after: dict[int, float] = {}
    for b in buses:
        s = states.get(b.id, {})
        stored = s.get("state", "unknown")
        state = stored if holder is not None else "unpolled"
        polled[b.id] = holder is not None and b.enabled and state == "polling"
        stale_after[b.id] = stale_after_s(b.poll_interval_s, s.get("last_cycle_s"))
        out["buses"].append({
            "id": b.id, "name": b.name, "link": b.link, "enabled": b.enabled,
            "state": state, "last_state": stored, "last_cycle_s": s.get("last_cycle_s"),
            "last_cycle_at": s.get("last_cycle_at"),
            # nothing answers through a bus that is down or that nobody polls
            "meters_online": 0 if state in ("down", "unpolled") else s.get("meters_online", 0),
            "meters_total": s.get("meters_total", 0), "error": s.get("error", ""),
        })
    bus_names = {b.id: b.name for b in buses}
    accounts_by_node = {a.node_id: a for a in store.open_accounts()}
    balances = live.balances()
    for m in campus.meters():
        r = latest.get(m.id)
        node = nodes.get(m.node_id) if m.node_id else None
        reading = _reading(r.values if r else None)
        read_at = reading["read_at"]
        out["meters"].append({
            "id": m.id, "bus": bus_names.get(m.bus_id), "address": m.address,
            "serial": m.serial, "room": node.code if node else None,
            "online": r is not None and r.online,
            "state": meter_state(r.online if r is not None else None, read_at,
                                 polled.get(m.bus_id, False) and m.enabled,
                                 stale_after.get(m.bus_id, STALE_MIN_S), now),
            "age_s": None if read_at is None else max(0.0, now - read_at),
            **reading,
            "account": accounts_by_node[m.node_id].number
            if m.node_id in accounts_by_node else None,
            "balance_cents": balances.get(accounts_by_node[m.node_id].id, 0)
            if m.node_id in accounts_by_node else None,
            "missing_points": list(caps[m.id].missing) if m.id in caps else [],
            "bad_values": caps[m.id].bad_values if m.id in caps else 0,
        })
    return out
