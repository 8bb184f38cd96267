"""What the station enforces by itself, from the command line: rooms' power limits and allowed
appliances, the meters' own malicious-load rule, lights-out schedules with holidays, limiting
plans, and why a relay is held open.

    main.py limit --db D --operator N (--room R | --building B | --group G) (--watts W | --none)
    main.py detection --db D --operator N (selection) [--on | --off] [--threshold W]
    main.py appliance add|remove|list --db D ...
    main.py schedule add|remove|except|list --db D ...
    main.py plan add|apply|undo|list --db D ...
    main.py holds --db D [--json]

Every change is an audited act of a signed-in operator (``control_batch``: administrators).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date

from app.cli import add_db
from app.cli.auth import add_operator_flag, signed_in
from app.core import control, control_rules, limit_plans, power_limits, schedules
from app.core.operators import Operator
from app.core.station import open_station
from app.errors import UsageError
from app.i18n import _

READER = Operator.system("command line")


def _selection(p: argparse.ArgumentParser, *, rooms: bool = True) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    if rooms:
        where.add_argument("--room", help=_("one room or shop, by its number"))
    where.add_argument("--building", metavar="NAME",
                       help=_("every room of a building (or floor) by its name in the tree"))
    where.add_argument("--group", metavar="NAME", help=_("every room of a tariff group"))


def _act(acts, name: str, help: str, acts_as_operator: bool = True) -> argparse.ArgumentParser:
    """An action's parser with ``--db`` (and ``--operator`` for a change)."""
    a = acts.add_parser(name, help=help)
    add_db(a)
    if acts_as_operator:
        add_operator_flag(a)
    return a


def _chosen(args: argparse.Namespace) -> tuple[list[int], str]:
    room = getattr(args, "room", None)
    rooms = control.select_rooms(room=room, building=args.building, group=args.group)
    return rooms, room or args.building or args.group


def _json_or_lines(args: argparse.Namespace, rows: list[dict], line) -> None:
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        for r in rows:
            print(line(r))


def register(sub) -> dict:
    p = sub.add_parser("limit", help=_("set the rooms' power limit, on the meters and enforced "
                                       "by the station"))
    add_db(p)
    add_operator_flag(p)
    _selection(p)
    value = p.add_mutually_exclusive_group(required=True)
    value.add_argument("--watts", type=int, metavar="W", help=_("the limit in watts"))
    value.add_argument("--none", action="store_true",
                       help=_("remove the station's limit (its meters keep the last one "
                              "written)"))

    p = sub.add_parser("detection", help=_("switch the meters' own malicious-load rule on or "
                                           "off, or set its threshold"))
    add_db(p)
    add_operator_flag(p)
    _selection(p)
    onoff = p.add_mutually_exclusive_group()
    onoff.add_argument("--on", action="store_true", help=_("detection on"))
    onoff.add_argument("--off", action="store_true", help=_("detection off"))
    p.add_argument("--threshold", type=int, metavar="W", help=_("step threshold in watts"))

    p = sub.add_parser("appliance", help=_("appliances a room is allowed (not a malicious "
                                           "load there)"))
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = _act(acts, "add", help=_("allow an appliance in a room"))
    a.add_argument("--room", required=True, help=_("the room or shop, by its number"))
    a.add_argument("--name", required=True, help=_("what it is, e.g. kettle"))
    a.add_argument("--watts", type=int, required=True, metavar="W", help=_("rated power"))
    a = _act(acts, "remove", help=_("no longer allow it"))
    a.add_argument("--id", type=int, required=True)
    a = _act(acts, "list", help=_("the allowed appliances"), acts_as_operator=False)
    a.add_argument("--json", action="store_true", help=_("machine-readable output"))

    p = sub.add_parser("schedule", help=_("lights-out schedules, holidays and exceptions"))
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = _act(acts, "add", help=_("create or change a schedule"))
    a.add_argument("--name", required=True)
    _selection(a, rooms=False)
    a.add_argument("--window", action="append", required=True, metavar="'Sun-Thu 23:00-06:00'",
                   help=_("off from the first time to the second on those days (repeat for "
                          "more)"))
    a.add_argument("--disabled", action="store_true", help=_("keep it, but not in force"))
    a = _act(acts, "remove", help=_("remove a schedule (its rooms close)"))
    a.add_argument("--name", required=True)
    a = _act(acts, "except", help=_("a holiday or another window on one day"))
    a.add_argument("--day", required=True, metavar="YYYY-MM-DD")
    a.add_argument("--name", help=_("the schedule (default: every schedule)"))
    a.add_argument("--window", action="append", default=[], metavar="'01:00-06:00'",
                   help=_("the day's window instead (none: a holiday)"))
    a.add_argument("--note", default="", help=_("why, e.g. 元旦"))
    a = _act(acts, "list", help=_("the schedules and their exceptions"), acts_as_operator=False)
    a.add_argument("--json", action="store_true", help=_("machine-readable output"))

    p = sub.add_parser("plan", help=_("selective limiting plans for a supply shortage"))
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = _act(acts, "add", help=_("define a plan"))
    a.add_argument("--name", required=True)
    a.add_argument("--do", required=True, choices=limit_plans.PLAN_ACTIONS,
                   help=_("lower the limit, or trip"))
    _selection(a, rooms=False)
    a.add_argument("--watts", type=int, metavar="W", help=_("the lowered limit"))
    for name, text in (("apply", _("put a plan in force")), ("undo", _("undo a plan exactly"))):
        a = _act(acts, name, help=text)
        a.add_argument("--name", required=True)
    a = _act(acts, "list", help=_("the plans"), acts_as_operator=False)
    a.add_argument("--json", action="store_true", help=_("machine-readable output"))

    p = sub.add_parser("holds", help=_("which meters the station keeps off, and why"))
    add_db(p)
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return {"limit": limit_command, "detection": detection_command,
            "appliance": appliance_command, "schedule": schedule_command,
            "plan": plan_command, "holds": holds_command}


def limit_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    operator = signed_in(args.operator, "limit")
    rooms, what = _chosen(args)
    limit = None if args.none else args.watts
    sent = power_limits.set_power_limit(operator, rooms, limit, selection=what)
    if limit is None:
        print(_("{what}: the station's power limit removed ({n} rooms)").format(
            what=what, n=len(rooms)))
    else:
        print(_("{what}: power limit {w} W for {n} rooms, sent to {m} meters").format(
            what=what, w=limit, n=len(rooms), m=sent))
    return 0


def detection_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    operator = signed_in(args.operator, "detection")
    rooms, what = _chosen(args)
    enabled = True if args.on else False if args.off else None
    n = power_limits.configure_detection(operator, rooms, enabled=enabled,
                                         threshold_w=args.threshold, selection=what)
    print(_("{what}: {n} settings sent to the meters").format(what=what, n=n))
    return 0


def appliance_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if args.action == "list":
        rows = [{"id": a.id, "room": room, "name": a.name, "watts": a.rated_w}
                for a, room in control_rules.appliances_by_room(READER)]
        _json_or_lines(args, rows, lambda r: f"{r['id']:>4} {r['room']:<10} {r['name']} "
                                             f"{r['watts']} W")
        return 0
    operator = signed_in(args.operator, f"appliance {args.action}")
    if args.action == "add":
        (node_id,) = control.select_rooms(room=args.room)
        new = power_limits.add_appliance(operator, node_id, args.name, args.watts,
                                         room=args.room)
        print(_("{room}: {name} ({w} W) allowed, number {id}").format(
            room=args.room, name=args.name.strip(), w=args.watts, id=new))
    else:
        power_limits.remove_appliance(operator, args.id)
        print(_("allowed appliance {id} removed").format(id=args.id))
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(_("{text!r} is not a date (use YYYY-MM-DD)").format(text=text)) \
            from None


def schedule_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if args.action == "list":
        snap = control_rules.snapshot(READER)
        rows = [{"name": r.name, "for": r.target, "windows": r.windows, "enabled": r.enabled,
                 "in_force": r.in_force_since is not None,
                 "exceptions": [{"id": e.id, "day": e.day, "windows": e.windows,
                                 "note": e.note} for e in snap.exceptions
                                if e.schedule in (None, r.name)]}
                for r in snap.schedules]
        _json_or_lines(args, rows, _schedule_line)
        return 0
    operator = signed_in(args.operator, f"schedule {args.action}")
    if args.action == "add":
        windows = [schedules.parse_window(w) for w in args.window]
        schedules.save_schedule(operator, args.name, windows, building=args.building,
                                group=args.group, enabled=not args.disabled)
        print(_("schedule {name} saved").format(name=args.name.strip()))
    elif args.action == "remove":
        schedules.delete_schedule(operator, args.name)
        print(_("schedule {name} removed").format(name=args.name.strip()))
    else:
        windows = [schedules.parse_window(w, every_day=True) for w in args.window]
        schedules.add_exception(operator, _day(args.day), windows, schedule=args.name,
                                note=args.note)
        print(_("{day}: {what}").format(day=args.day, what=_("no lights-out (holiday)")
                                        if not windows else ", ".join(args.window)))
    return 0


def _schedule_line(r: dict) -> str:
    state = _("in force now") if r["in_force"] else _("enabled") if r["enabled"] \
        else _("disabled")
    lines = [f"{r['name']}: {r['for']}, {'; '.join(r['windows'])} ({state})"]
    lines += [f"    {e['day']} [{e['id']}]: {'; '.join(e['windows']) or _('none')} {e['note']}"
              for e in r["exceptions"]]
    return "\n".join(lines)


def plan_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if args.action == "list":
        rows = [{"name": p.name, "action": p.action, "limit_w": p.limit_w, "for": p.target,
                 "rooms": p.rooms, "in_force": p.applied_at is not None,
                 "applied_by": p.applied_by or None}
                for p in control_rules.snapshot(READER).plans]
        _json_or_lines(args, rows, lambda r: f"{r['name']}: {r['action']} "
                       f"{r['limit_w'] or ''} {r['for']} ({r['rooms']})"
                       + (f" ({_('in force now')})" if r["in_force"] else ""))
        return 0
    operator = signed_in(args.operator, f"plan {args.action}")
    if args.action == "add":
        limit_plans.save_plan(operator, args.name, args.do, building=args.building,
                              group=args.group, limit_w=args.watts)
        print(_("plan {name} saved").format(name=args.name.strip()))
    elif args.action == "apply":
        n = limit_plans.apply_plan(operator, args.name)
        print(_("plan {name} in force for {n} rooms").format(name=args.name.strip(), n=n))
    else:
        n = limit_plans.undo_plan(operator, args.name)
        print(_("plan {name} undone for {n} rooms").format(name=args.name.strip(), n=n))
    return 0


def holds_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    rows = [{"room": h.room, "meter": h.meter, "reason": h.reason, "source": h.source,
             "since": h.since, "restore_at": h.restore_at,
             "overridden_by": h.overridden_by or None}
            for h in control_rules.hold_rows(READER)]
    _json_or_lines(args, rows, lambda r: (
        f"{r['room']:<10} {r['meter']:<8} {r['reason']} {r['source']} {_when(r['since'])}"
        + (f" -> {_when(r['restore_at'])}" if r["restore_at"] else "")
        + (f" ({_('overridden by {name}').format(name=r['overridden_by'])})"
           if r["overridden_by"] else "")))
    return 0


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
