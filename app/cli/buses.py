"""``main.py bus`` and ``main.py meter``: the campus's buses and meters, added, edited, moved and
removed without touching the database by hand.

    main.py bus add --db D --operator N --name B03 --link tcp://10.0.0.7:502 [--interval 5]
    main.py bus edit --db D --operator N --name B03 [--new-name B3] [--link L] [--interval S]
                     [--enabled yes|no]
    main.py bus remove --db D --operator N --name B03
    main.py bus list --db D [--json]
    main.py meter add --db D --operator N --bus B03 --address 7 --profile acrel-ddsy1352
                      [--serial S] [--room 3-204] [--enabled yes|no]
    main.py meter edit --db D --operator N --bus B03 --address 7 [--to-address A] [--serial S]
                       [--profile P] [--enabled yes|no]
    main.py meter move --db D --operator N --bus B03 --address 7 [--to-bus B] [--to-address A]
                       [--to-room R | --no-room]
    main.py meter remove --db D --operator N --bus B03 --address 7
    main.py meter list --db D [--bus B03] [--json]

Every change is an audited act of a signed-in operator with the ``commission`` permission
(maintenance, administrators); a running ``serve`` (or window) picks it up within seconds and
restarts only the buses that changed.
"""

from __future__ import annotations

import argparse
import json

from app.cli import add_db
from app.cli.auth import add_operator_flag, signed_in
from app.core import campus_edit
from app.core.campus_edit import CampusEdit
from app.core.operators import Operator
from app.core.station import open_station
from app.errors import UsageError
from app.i18n import _

READER = Operator.system("command line")
YES, NO = ("yes", "y", "on", "true", "1"), ("no", "n", "off", "false", "0")


def _yes_no(text: str) -> bool:
    word = text.strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise argparse.ArgumentTypeError(_("yes or no, not {text!r}").format(text=text))


def _act(acts, name: str, help: str, acts_as_operator: bool = True) -> argparse.ArgumentParser:
    a = acts.add_parser(name, help=help)
    add_db(a)
    if acts_as_operator:
        add_operator_flag(a)
    return a


def _enabled_flag(a: argparse.ArgumentParser) -> None:
    a.add_argument("--enabled", type=_yes_no, default=None, metavar="yes|no",
                   help=_("polled (yes) or kept but not polled (no)"))


def _meter_flags(a: argparse.ArgumentParser) -> None:
    a.add_argument("--bus", required=True, metavar="NAME", help=_("the meter's bus"))
    a.add_argument("--address", type=int, required=True, metavar="N",
                   help=_("the meter's Modbus address on it (1-247)"))


def register(sub) -> dict:
    p = sub.add_parser("bus", help=_("add, change, remove or list the buses"))
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = _act(acts, "add", help=_("add a bus"))
    a.add_argument("--name", required=True, help=_("the bus's name, e.g. B03"))
    a.add_argument("--link", required=True, metavar="URL",
                   help=_("where it is: rtu:///dev/ttyUSB0?baud=9600&parity=N, "
                          "tcp://HOST:PORT or rtu-tcp://HOST:PORT"))
    a.add_argument("--interval", type=float, default=5.0, metavar="S",
                   help=_("seconds between two polls of its meters (default 5)"))
    _enabled_flag(a)
    a = _act(acts, "edit", help=_("change a bus"))
    a.add_argument("--name", required=True, help=_("the bus to change"))
    a.add_argument("--new-name", default=None, help=_("its new name"))
    a.add_argument("--link", default=None, metavar="URL", help=_("its new link"))
    a.add_argument("--interval", type=float, default=None, metavar="S",
                   help=_("its new poll interval in seconds"))
    _enabled_flag(a)
    a = _act(acts, "remove", help=_("remove a bus that has no meter left"))
    a.add_argument("--name", required=True, help=_("the bus to remove"))
    a = _act(acts, "list", help=_("the buses"), acts_as_operator=False)
    a.add_argument("--json", action="store_true", help=_("machine-readable output"))

    p = sub.add_parser("meter", help=_("add, change, move, remove or list the meters"))
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = _act(acts, "add", help=_("add a meter to a bus"))
    _meter_flags(a)
    a.add_argument("--profile", required=True,
                   help=_("its meter profile, e.g. acrel-ddsy1352"))
    a.add_argument("--serial", default="", help=_("its serial number"))
    a.add_argument("--room", default=None, metavar="ROOM",
                   help=_("the room or shop it serves, by its number"))
    _enabled_flag(a)
    a = _act(acts, "edit", help=_("change a meter's address, serial number or profile"))
    _meter_flags(a)
    a.add_argument("--to-address", type=int, default=None, metavar="N",
                   help=_("its new address on the same bus"))
    a.add_argument("--serial", default=None, help=_("its serial number"))
    a.add_argument("--profile", default=None, help=_("its meter profile"))
    _enabled_flag(a)
    a = _act(acts, "move", help=_("move a meter to another bus, address or room"))
    _meter_flags(a)
    a.add_argument("--to-bus", default=None, metavar="NAME", help=_("the bus it moves to"))
    a.add_argument("--to-address", type=int, default=None, metavar="N",
                   help=_("its address there"))
    room = a.add_mutually_exclusive_group()
    room.add_argument("--to-room", default=None, metavar="ROOM",
                      help=_("the room or shop it serves now"))
    room.add_argument("--no-room", action="store_true", help=_("it serves no room now"))
    a = _act(acts, "remove", help=_("remove a meter and its history"))
    _meter_flags(a)
    a = _act(acts, "list", help=_("the meters"), acts_as_operator=False)
    a.add_argument("--bus", default=None, metavar="NAME", help=_("only this bus's meters"))
    a.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return {"bus": bus_command, "meter": meter_command}


def _bus_dict(b) -> dict:
    return {"id": b.id, "name": b.name, "link": b.link, "poll_interval_s": b.poll_interval_s,
            "enabled": b.enabled}


def _bus_line(b) -> str:
    state = "" if b.enabled else "  " + _("(not polled)")
    return f"{b.name:<8} {b.link:<40} {b.poll_interval_s:g} s{state}"


def _meter_dict(r: campus_edit.MeterRow) -> dict:
    m = r.meter
    return {"id": m.id, "bus": r.bus, "address": m.address, "serial": m.serial,
            "profile": m.profile, "room": r.room, "enabled": m.enabled}


def _meter_line(r: campus_edit.MeterRow) -> str:
    m = r.meter
    state = "" if m.enabled else "  " + _("(not polled)")
    return (f"{r.bus + '/' + str(m.address):<10} {m.serial or '-':<14} {m.profile:<18} "
            f"{r.room or '-'}{state}")


def _said(done: CampusEdit, text: str) -> int:
    print(text)
    if done.changes.campus:
        print(_("a running reading service (serve or the window) picks this up within "
                "seconds"))
    return 0


def bus_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if args.action == "list":
        buses = campus_edit.setup(READER).buses
        if args.json:
            print(json.dumps([_bus_dict(b) for b in buses], ensure_ascii=False, indent=1))
        else:
            for b in buses:
                print(_bus_line(b))
        return 0
    operator = signed_in(args.operator, f"bus {args.action}")
    if args.action == "add":
        done = campus_edit.add_bus(operator, args.name, args.link, args.interval,
                                   enabled=args.enabled is not False)
        return _said(done, _("bus {name} added: {link}").format(name=done.bus.name,
                                                                link=done.bus.link))
    bus = campus_edit.find_bus(args.name)
    if args.action == "edit":
        if (args.new_name, args.link, args.interval, args.enabled) == (None,) * 4:
            raise UsageError(_("say what to change: --new-name, --link, --interval or "
                               "--enabled"))
        done = campus_edit.edit_bus(operator, bus.id, name=args.new_name, link=args.link,
                                    poll_interval_s=args.interval, enabled=args.enabled)
        if not done.changes.campus:
            print(_("bus {name}: nothing to change").format(name=bus.name))
            return 0
        return _said(done, _("bus {name} changed: {line}").format(
            name=bus.name, line=_bus_line(done.bus)))
    done = campus_edit.remove_bus(operator, bus.id)
    return _said(done, _("bus {name} removed").format(name=bus.name))


def meter_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if args.action == "list":
        setup = campus_edit.setup(READER)
        rows = setup.meters
        if args.bus:
            rows = setup.meters_on(campus_edit.find_bus(args.bus).id)
        if args.json:
            print(json.dumps([_meter_dict(r) for r in rows], ensure_ascii=False, indent=1))
        else:
            for r in rows:
                print(_meter_line(r))
        return 0
    operator = signed_in(args.operator, f"meter {args.action}")
    where = f"{args.bus}/{args.address}"
    if args.action == "add":
        bus = campus_edit.find_bus(args.bus)
        done = campus_edit.add_meter(operator, bus.id, args.address, args.profile, args.serial,
                                     args.room, enabled=args.enabled is not False)
        return _said(done, _("meter {where} added").format(where=f"{bus.name}/{args.address}"))
    meter = campus_edit.find_meter(args.bus, args.address)
    if args.action == "edit":
        if (args.to_address, args.serial, args.profile, args.enabled) == (None,) * 4:
            raise UsageError(_("say what to change: --to-address, --serial, --profile or "
                               "--enabled"))
        done = campus_edit.edit_meter(operator, meter.id, address=args.to_address,
                                      serial=args.serial, profile=args.profile,
                                      enabled=args.enabled)
    elif args.action == "move":
        room = "" if args.no_room else args.to_room
        if (args.to_bus, args.to_address, room) == (None,) * 3:
            raise UsageError(_("say where to: --to-bus, --to-address, --to-room or --no-room"))
        to_bus = campus_edit.find_bus(args.to_bus).id if args.to_bus else None
        done = campus_edit.move_meter(operator, meter.id, bus_id=to_bus,
                                      address=args.to_address, room=room)
    else:
        done = campus_edit.remove_meter(operator, meter.id)
        return _said(done, _("meter {where} removed, with its readings and energy").format(
            where=where))
    if not done.changes.campus:
        print(_("meter {where}: nothing to change").format(where=where))
        return 0
    row = next(r for r in campus_edit.setup(READER).meters if r.meter.id == meter.id)
    return _said(done, _("meter {where} changed: {line}").format(where=where,
                                                                  line=_meter_line(row)))
