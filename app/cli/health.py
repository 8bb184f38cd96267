"""``main.py health``: each bus's and meter's health over the last minutes or hours, from the
figures the polling process keeps (``core/bus_health``), as text or JSON.

    main.py health --db PATH [--bus NAME] [--minutes N | --hours N] [--worst N] [--json]

Per bus: transactions per second, success rate, timeouts, CRC errors, exceptions, mean and
worst response time, cycle time (mean, worst) against the wire-time limit; then its worst
meters; then the campus's worst meters. Read only: no operator.
"""

from __future__ import annotations

import argparse
import json

from app.cli import add_db
from app.core import bus_health
from app.core.operators import Operator
from app.core.station import open_station
from app.errors import UsageError
from app.i18n import _

READER = Operator.system("command line")


def register(sub) -> dict:
    p = sub.add_parser("health", help=_("each bus's and meter's communication health over the "
                                        "last minutes or hours, worst meters first"))
    add_db(p)
    p.add_argument("--bus", metavar="NAME", help=_("only this bus"))
    span = p.add_mutually_exclusive_group()
    span.add_argument("--minutes", type=int, metavar="N",
                      help=_("the last N minutes (default 15)"))
    span.add_argument("--hours", type=int, metavar="N", help=_("the last N hours"))
    p.add_argument("--worst", type=int, default=5, metavar="N",
                   help=_("show the N worst meters per bus and of the campus (default 5)"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return {"health": health_command}


def _num(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _rate(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f} %"


def _limit(b: bus_health.BusHealth) -> str:
    if b.wire_limit_s is not None:
        return _("{s} s").format(s=f"{b.wire_limit_s:.2f}")
    return _("none (Modbus-TCP)") if b.link.startswith("tcp:") else "-"


def _meter_line(m: bus_health.MeterHealth) -> str:
    f = m.figures
    return "  " + _("{bus}/{address:<3} {room:<8} {health:<8} {rate:>8}  {tx} tx  timeouts {to}  "
                    "CRC {crc}  exceptions {exc}  {mean} / {worst} ms").format(
        bus=m.bus, address=m.address, room=m.room or "-", health=bus_health.health_text(m.health),
        rate=_rate(f.success_rate), tx=f.transactions, to=f.timeouts, crc=f.crc_errors,
        exc=f.exceptions, mean=_num(f.mean_latency_ms, ".1f"),
        worst=_num(f.worst_latency_ms, ".1f"))


def health_command(args: argparse.Namespace) -> int:
    for flag, value in (("--minutes", args.minutes), ("--hours", args.hours),
                        ("--worst", args.worst)):
        if value is not None and value < 1:
            raise UsageError(_("{flag} must be 1 or more").format(flag=flag))
    open_station(args.db, create=False)
    report = bus_health.health(READER, minutes=args.minutes, hours=args.hours, bus=args.bus,
                               worst=args.worst)
    if args.json:
        print(json.dumps(report.as_dict(args.worst), ensure_ascii=False, indent=1))
        return 0
    for b in report.buses:
        f = b.figures
        print(_("{bus}: {health}, {tps} transactions/s, success {rate}, timeouts {to}, "
                "CRC errors {crc}, exceptions {exc}, response {mean} / {worst} ms (mean / "
                "worst)").format(
            bus=b.name, health=bus_health.health_text(b.health),
            tps=f"{b.transactions_per_s:.1f}", rate=_rate(f.success_rate), to=f.timeouts,
            crc=f.crc_errors, exc=f.exceptions, mean=_num(f.mean_latency_ms, ".1f"),
            worst=_num(f.worst_latency_ms, ".1f")))
        print("  " + _("cycle {mean} / {worst} s (mean / worst) over {n} cycles; wire-time "
                       "limit {limit}").format(
            mean=_num(b.cycle_mean_s, ".2f"), worst=_num(b.cycle_max_s, ".2f"), n=b.cycles,
            limit=_limit(b)))
        for m in b.meters[:args.worst]:
            print(_meter_line(m))
    if args.bus is None and report.worst:
        print(_("worst meters of the campus:"))
        for m in report.worst:
            print(_meter_line(m))
    if not report.buses:
        print(_("no buses"))
    return 0
