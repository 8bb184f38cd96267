"""``main.py meter-setup`` and ``main.py registers``: a meter's settings, and any register.

    meter-setup --db PATH --operator NAME --meter ROOM_OR_ID [--set NAME=VALUE] [--json]
    meter-setup --db PATH --operator NAME --bus NAME --set baud=VALUE
    registers --db PATH --operator NAME --bus NAME --id N --fc 3 --start 0x0000 --count 2
              [--type u32] [--word-order big|little] [--write VALUES] [--json]

``meter-setup`` prints every setting the meter's profile has, as the meter says it now, or
changes one and prints before and after (an address is confirmed at the new address before the
database follows; a bus's speed is set on every meter of it, then on the bus). ``registers``
reads (function 01-04) or writes (05, 06, 0F, 10: ``--write 1,2,3``) and prints each value in
decimal and hex. Both take the bus from its poller while they talk to the meter and give it back.
"""

from __future__ import annotations

import argparse
import json

from app.cli import add_db
from app.cli.auth import add_operator_flag, signed_in
from app.core import bus_speed, meter_setup, raw_registers
from app.core.station import open_station
from app.errors import UsageError
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("meter-setup", help=_("read a meter's settings, or change one"))
    add_db(p)
    add_operator_flag(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--meter", metavar="ROOM_OR_ID",
                       help=_("the meter: its room's number, #ID or BUS/ADDRESS"))
    which.add_argument("--bus", metavar="NAME",
                       help=_("with --set baud=N: every meter of this bus, then the bus"))
    p.add_argument("--set", metavar="NAME=VALUE", dest="change",
                   help=_("change one setting (address, baud, price, power_limit, "
                          "malicious_step, keep_power, ...)"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))

    r = sub.add_parser("registers", help=_("read or write any register of a slave on a bus"))
    add_db(r)
    add_operator_flag(r)
    r.add_argument("--bus", required=True, metavar="NAME", help=_("the bus"))
    r.add_argument("--id", required=True, metavar="N", help=_("the slave id (1-247)"))
    r.add_argument("--fc", required=True, metavar="FC",
                   help=_("function code: 1, 2, 3, 4 read; 5, 6, 15 (0x0F), 16 (0x10) write"))
    r.add_argument("--start", required=True, metavar="ADDRESS",
                   help=_("first register or coil, decimal or 0x hex"))
    r.add_argument("--count", default="1", metavar="N", help=_("how many to read (default 1)"))
    r.add_argument("--type", default="u16", choices=raw_registers.TYPES,
                   help=_("how registers are shown and written (default u16)"))
    r.add_argument("--word-order", default="big", choices=raw_registers.WORD_ORDERS,
                   help=_("big: high word first (default); little: words swapped"))
    r.add_argument("--write", metavar="VALUES",
                   help=_("with a write function: the values, separated by commas"))
    r.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return {"meter-setup": meter_setup_command, "registers": registers_command}


def meter_setup_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    name = value = ""
    if args.change is not None:
        name, eq, value = args.change.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or not value:
            raise UsageError(_("--set takes NAME=VALUE, such as power_limit=2000"))
    if args.bus is not None:
        if name != "baud":
            raise UsageError(_("--bus goes with --set baud=N (the speed of the whole bus)"))
        if not value.isdigit():
            raise UsageError(_("baud={value} is not a baud rate").format(value=value))
        operator = signed_in(args.operator, "meter-setup")
        print(bus_speed.change_bus_baud(operator, args.bus, int(value)))
        return 0
    operator = signed_in(args.operator, "meter-setup")
    meter = meter_setup.find_meter(args.meter)
    if name:
        change = meter_setup.change_setting(operator, meter.id, name, value)
        if args.json:
            print(json.dumps({"setting": name, "before": meter_setup.json_value(change.before),
                              "after": meter_setup.json_value(change.after)},
                             ensure_ascii=False))
        else:
            print(change.message)
        return 0
    settings = meter_setup.read_settings(operator, meter.id)
    if args.json:
        print(json.dumps(settings.as_json(), ensure_ascii=False, indent=1))
        return 0
    print(_("meter #{id} on bus {bus} at address {address}, room {room}, {model}").format(
        id=settings.meter.id, bus=settings.bus, address=settings.meter.address,
        room=settings.room or "-", model=settings.model))
    for v in settings.values:
        print(f"  {v.setting.name:<22} {_(v.setting.label):<34} {v.text}")
    return 0


def registers_command(args: argparse.Namespace) -> int:
    fc = raw_registers.parse_number(args.fc, _("the function code"), 1, 16)
    request = raw_registers.RawRequest(
        bus=args.bus, unit=raw_registers.parse_number(args.id, _("the slave id"), 1, 247),
        function=fc, start=raw_registers.parse_number(args.start, _("the start address"), 0,
                                                      0xFFFF),
        count=raw_registers.parse_number(args.count, _("the count"), 1, raw_registers.MAX_BITS),
        dtype=args.type, word_order=args.word_order,
        values=tuple(raw_registers.split_values(args.write or "")) if args.type != "string"
        else ((args.write,) if args.write else ()))
    if request.is_write != bool(args.write):
        raise UsageError(_("functions 5, 6, 15 and 16 write and take --write; 1 to 4 read "
                           "and do not"))
    open_station(args.db, create=False)
    operator = signed_in(args.operator, "registers")
    result = raw_registers.transact(operator, request)
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
        return 0
    if request.is_write:
        print(_("written to slave {id} on bus {bus} in {ms:.0f} ms; read back:").format(
            id=request.unit, bus=request.bus, ms=result.elapsed_ms))
    for address, raw, shown in result.rows():
        print(f"0x{address:04X} ({address:>5})  {raw:<20} {shown}")
    if request.is_write and result.after_problem:
        print(_("could not read it back: {why}").format(why=result.after_problem))
    return 0
