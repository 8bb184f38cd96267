"""``main.py scan``: which slave ids answer on a line, or on a bus of the database.

    scan (--serial PORT [--bauds 9600,19200] [--parities N,E] | --tcp HOST:PORT
          [--rtu-over-tcp]) [--ids 1-247] [--timeout-ms 200] [--json]
    scan --db PATH --bus NAME [--operator NAME] [--bauds ...] [--parities ...] [...]

Prints each id that answered with its baud, parity, model and serial number (``--json``:
``{"found": [{"id", "baud", "parity", "model", "serial"}], "scanned": N}``, and with
``--db``/``--bus`` also ``missing``, ``unexpected``, ``other_setting`` and ``serial_mismatch``).
A bus of the database is taken from its poller for the scan and given back after (other buses
go on polling); without ``--operator`` the scan is audited under the account that ran it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from app.cli import add_db
from app.cli.auth import signed_in
from app.core import scan
from app.core.operators import Operator
from app.core.progress import Progress
from app.drivers.modbus_link import LinkConfig
from app.errors import UsageError
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("scan", help=_("find which slave ids answer on a line or a bus"))
    where = p.add_mutually_exclusive_group()
    where.add_argument("--serial", metavar="PORT", help=_("a serial port (RS485 adapter)"))
    where.add_argument("--tcp", metavar="HOST:PORT", help=_("a Modbus-TCP gateway"))
    p.add_argument("--rtu-over-tcp", action="store_true",
                   help=_("with --tcp: the gateway passes RTU frames through"))
    add_db(p, required=False)
    p.add_argument("--bus", metavar="NAME", help=_("with --db: scan this bus of the database"))
    p.add_argument("--operator", metavar="NAME",
                   help=_("with --db: who takes the bus (default: the account running this)"))
    p.add_argument("--bauds", metavar="LIST", help=_("serial: baud rates to try, such as "
                                                     "9600,19200 (default: the line's)"))
    p.add_argument("--parities", metavar="LIST",
                   help=_("serial: parities to try, such as N,E (default: the line's)"))
    p.add_argument("--ids", default="1-247", metavar="RANGE",
                   help=_("slave ids to ask, such as 1-247 or 1-30,100 (default 1-247)"))
    p.add_argument("--timeout-ms", type=int, default=200, metavar="MS",
                   help=_("how long each id may take to answer (default 200)"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return {"scan": scan_command}


def _link(args: argparse.Namespace) -> LinkConfig:
    if args.serial:
        if args.rtu_over_tcp:
            raise UsageError(_("--rtu-over-tcp goes with --tcp"))
        return LinkConfig("rtu", device=args.serial)
    host, colon, port = args.tcp.rpartition(":")
    if not colon or not port.isdigit() or not host:
        raise UsageError(_("--tcp takes HOST:PORT, not {text!r}").format(text=args.tcp))
    if args.bauds or args.parities:
        raise UsageError(_("--bauds and --parities are for serial lines (a gateway has its "
                           "own speed)"))
    return LinkConfig("rtu-tcp" if args.rtu_over_tcp else "tcp", host=host, port=int(port))


def _progress() -> Progress | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, text: str) -> None:
        print(f"\r{done}/{total} {text:<40}", end="", file=sys.stderr, flush=True)

    return Progress(show)


def scan_command(args: argparse.Namespace) -> int:
    ids = scan.parse_ids(args.ids)
    bauds = scan.parse_bauds(args.bauds) if args.bauds else []
    parities = scan.parse_parities(args.parities) if args.parities else []
    progress = _progress()
    if args.db is not None or args.bus is not None:
        if args.serial or args.tcp:
            raise UsageError(_("scan a port (--serial/--tcp) or a bus of the database "
                               "(--db and --bus), not both"))
        if args.db is None or args.bus is None:
            raise UsageError(_("a bus of the database takes both --db and --bus"))
        from app.core.station import open_station

        open_station(args.db, create=False)
        operator = signed_in(args.operator, "scan") if args.operator else Operator.system(
            _("{user} (command line)").format(user=getpass.getuser()))
        bus = scan.bus_access.find_bus(args.bus)
        if LinkConfig.from_url(bus.link).transport != "rtu" and (bauds or parities):
            raise UsageError(_("--bauds and --parities are for serial lines (a gateway has its "
                               "own speed)"))
        result = scan.scan_bus(operator, args.bus, ids, timeout_ms=args.timeout_ms,
                               bauds=bauds, parities=parities, progress=progress)
    else:
        if not (args.serial or args.tcp):
            raise UsageError(_("name what to scan: --serial PORT, --tcp HOST:PORT, or --db and "
                               "--bus"))
        if args.operator:
            raise UsageError(_("--operator goes with --db and --bus"))
        result = scan.scan_link(_link(args), ids, timeout_ms=args.timeout_ms, bauds=bauds,
                                parities=parities, progress=progress)
    if progress is not None:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
        return 0
    _print(result)
    return 0


def _setting(baud: int | None, parity: str | None) -> str:
    return "-" if baud is None else f"{baud} 8{parity}1"


def _print(result: scan.ScanResult) -> None:
    for f in result.found:
        print(_("id {id:>3}  {setting:<11} {model:<10} serial {serial}").format(
            id=f.id, setting=_setting(f.baud, f.parity), model=f.model or "?",
            serial=f.serial or "-"))
    print(_("{found} of {scanned} ids answered").format(found=len(result.found),
                                                        scanned=result.scanned))
    for i, baud, parity in result.noise:
        print(_("id {id:>3}  {setting:<11} bytes without a valid frame (another speed? "
                "wiring?)").format(id=i, setting=_setting(baud, parity)))
    for problem in result.problems:
        print(problem)
    if not result.bus:
        return
    for e in result.missing:
        print(_("missing: id {id} ({room}) did not answer").format(id=e.id, room=e.room or "-"))
    for f in result.unexpected:
        print(_("unexpected: id {id} answered but the database has no meter there").format(
            id=f.id))
    for e, f in result.other_setting:
        print(_("id {id} ({room}) answers at {found}, the bus runs at {bus}").format(
            id=e.id, room=e.room or "-", found=_setting(f.baud, f.parity),
            bus=_setting(result.bus_baud, result.bus_parity)))
    for e, f in result.serial_mismatch:
        print(_("id {id} ({room}): serial {found}, the database says {expected}").format(
            id=e.id, room=e.room or "-", found=f.serial, expected=e.serial))
