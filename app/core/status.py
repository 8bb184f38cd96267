"""The station's status as plain data: each bus and each meter (``main.py status --json``;
keys documented in the README)."""

from __future__ import annotations

import time

from app.drivers.meter_values import MeterValues
from app.storage import accounts as store
from app.storage import campus, capabilities, lease, ledger, readings

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


def collect() -> dict:
    """The status as plain data (what ``--json`` prints)."""
    nodes = {n.id: n for n in campus.nodes()}
    latest = {r.meter_id: r for r in readings.latest()}
    states = readings.bus_states()
    holder = lease.holder()
    caps = capabilities.load()
    out = {
        "generated_at": time.time(),
        "polled_by": holder.describe() if holder else None,
        "buses": [],
        "meters": [],
        "workers": [{"name": w.name, "state": w.state, "error": w.error,
                     "restarts": w.restarts, "last_error_at": w.last_error_at,
                     "changed_at": w.changed_at} for w in capabilities.worker_states()],
    }
    for b in campus.buses():
        s = states.get(b.id, {})
        out["buses"].append({
            "id": b.id, "name": b.name, "link": b.link, "enabled": b.enabled,
            "state": s.get("state", "unknown"), "last_cycle_s": s.get("last_cycle_s"),
            "last_cycle_at": s.get("last_cycle_at"), "meters_online": s.get("meters_online", 0),
            "meters_total": s.get("meters_total", 0), "error": s.get("error", ""),
        })
    bus_names = {b.id: b.name for b in campus.buses()}
    accounts_by_node = {a.node_id: a for a in store.open_accounts()}
    balances = ledger.balances()
    for m in campus.meters():
        r = latest.get(m.id)
        node = nodes.get(m.node_id) if m.node_id else None
        out["meters"].append({
            "id": m.id, "bus": bus_names.get(m.bus_id), "address": m.address,
            "serial": m.serial, "room": node.code if node else None,
            "online": r is not None and r.online, **_reading(r.values if r else None),
            "account": accounts_by_node[m.node_id].number
            if m.node_id in accounts_by_node else None,
            "balance_cents": balances.get(accounts_by_node[m.node_id].id, 0)
            if m.node_id in accounts_by_node else None,
            "missing_points": list(caps[m.id].missing) if m.id in caps else [],
            "bad_values": caps[m.id].bad_values if m.id in caps else 0,
        })
    return out
