"""``main.py status``: each bus and each meter, as text or JSON (keys documented in README)."""

from __future__ import annotations

import argparse
import json
import time

from app.core.money import format_cents
from app.i18n import _
from app.storage import accounts as store
from app.storage import campus, lease, ledger, readings
from app.storage.db import open_database


def collect() -> dict:
    """The status as plain data (what ``--json`` prints)."""
    nodes = {n.id: n for n in campus.nodes()}
    latest = {r["meter_id"]: r for r in readings.latest()}
    states = readings.bus_states()
    holder = lease.holder()
    out = {
        "generated_at": time.time(),
        "polled_by": holder.describe() if holder else None,
        "buses": [],
        "meters": [],
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
        r = latest.get(m.id, {})
        node = nodes.get(m.node_id) if m.node_id else None
        out["meters"].append({
            "id": m.id, "bus": bus_names.get(m.bus_id), "address": m.address,
            "serial": m.serial, "room": node.code if node else None,
            "online": bool(r.get("online", False)), "read_at": r.get("read_at"),
            "voltage_v": r.get("voltage_v"), "power_w": r.get("power_w"),
            "energy_kwh": None if r.get("energy_wh") is None else r["energy_wh"] / 1000,
            "energy_wh": r.get("energy_wh"),
            "money_cents": r.get("money_cents"), "relay_closed": r.get("relay_closed"),
            "control_mode": r.get("control_mode"),
            "account": accounts_by_node[m.node_id].number
            if m.node_id in accounts_by_node else None,
            "balance_cents": balances.get(accounts_by_node[m.node_id].id, 0)
            if m.node_id in accounts_by_node else None,
        })
    return out


def _fmt(v, spec: str, none: str = "-") -> str:
    return none if v is None else format(v, spec)


def status_command(args: argparse.Namespace) -> int:
    open_database(args.db, create=False)
    data = collect()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return 0
    print(_("polled by: {holder}").format(holder=data["polled_by"] or _("nobody")))
    for b in data["buses"]:
        print(f"{b['name']:<6} {b['state']:<8} {_fmt(b['last_cycle_s'], '.2f')} s  "
              f"{b['meters_online']}/{b['meters_total']}  {b['link']}  {b['error']}")
    print()
    for m in data["meters"]:
        read_at = time.strftime("%H:%M:%S", time.localtime(m["read_at"])) if m["read_at"] else "-"
        money = format_cents(m["money_cents"])
        relay = {True: _("closed"), False: _("open"), None: "-"}[m["relay_closed"]]
        print(f"{m['bus']}/{m['address']:<3} {m['room'] or '-':<8} "
              f"{_('online') if m['online'] else _('offline'):<8} {read_at}  "
              f"{_fmt(m['voltage_v'], '.1f')} V  {_fmt(m['power_w'], '.0f')} W  "
              f"{_fmt(m['energy_kwh'], '.2f')} kWh  {money}  {relay}")
    return 0
