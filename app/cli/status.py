"""``main.py status``: each bus and each meter, as text or JSON (keys documented in README).

Nothing stored is shown as live when it is not: a meter whose read is old, whose bus is down
or that nobody polls shows ``stale`` (or ``offline``) with its read's age, and when no process
polls at all the first line says so with the age of the newest read.
"""

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


def age_text(seconds: float) -> str:
    """``12 s``, ``5 min``, ``3 h``, ``2 d``: how old a read is, roughly."""
    s = max(0, int(seconds))
    if s < 120:
        return _("{n} s").format(n=s)
    if s < 2 * 3600:
        return _("{n} min").format(n=s // 60)
    if s < 2 * 86400:
        return _("{n} h").format(n=s // 3600)
    return _("{n} d").format(n=s // 86400)


def _when(t: float, now: float) -> str:
    """A read's time: the clock today, the date and clock before."""
    local = time.localtime(t)
    if time.strftime("%Y-%m-%d", local) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M", local)


def _state_text(state: str) -> str:
    return {"online": _("online"), "offline": _("offline"), "stale": _("stale"),
            "never_read": _("never read"), "unpolled": _("not polled"),
            "held": _("taken by a tool")}.get(state, state)


def status_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    data = collect()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return 0
    now = data["generated_at"]
    if data["polled_by"]:
        print(_("polled by: {holder}").format(holder=data["polled_by"]))
    else:
        reads = [m["read_at"] for m in data["meters"] if m["read_at"]]
        if reads:
            print(_("polled by: nobody: nothing is read now; the values below are the last "
                    "stored (the newest {age} ago)").format(age=age_text(now - max(reads))))
        else:
            print(_("polled by: nobody: nothing is read now"))
    held = data["storage"]
    if held["unsent"]:
        print(_("NOT STORED: {n} readings held since {since}: the database cannot be written "
                "({error})").format(n=held["unsent"], since=_when(held["since"], now),
                                   error=held["error"]))
    for b in data["buses"]:
        print(f"{b['name']:<6} {_state_text(b['state']):<10} {_fmt(b['last_cycle_s'], '.2f')} s  "
              f"{b['meters_online']}/{b['meters_total']}  {b['link']}  {b['error']}")
    print()
    for m in data["meters"]:
        read_at = _when(m["read_at"], now) if m["read_at"] else "-"
        if m["state"] in ("stale", "offline") and m["age_s"] is not None:
            read_at += " " + _("({age} ago)").format(age=age_text(m["age_s"]))
        money = format_cents(m["money_cents"])
        relay = {True: _("closed"), False: _("open"), None: "-"}[m["relay_closed"]]
        print(f"{m['bus']}/{m['address']:<3} {m['room'] or '-':<8} "
              f"{_state_text(m['state']):<10} {read_at}  "
              f"{_fmt(m['voltage_v'], '.1f')} V  {_fmt(m['power_w'], '.0f')} W  "
              f"{_fmt(m['energy_kwh'], '.2f')} kWh  {money}  {relay}")
    return 0
