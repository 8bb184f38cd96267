"""``main.py status``: each bus and each meter, as text or JSON (keys documented in README)."""

from __future__ import annotations

import argparse
import json
import time

from app.cli import add_db
from app.core.money import format_cents
from app.core.station import open_station
from app.core.status import collect
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("status", help=_("print each bus and meter"))
    add_db(p)
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return {"status": status_command}


def _fmt(v, spec: str, none: str = "-") -> str:
    return none if v is None else format(v, spec)


def status_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
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
