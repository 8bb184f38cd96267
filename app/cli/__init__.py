"""The command line: the window (default), ``--demo``, and the headless and admin commands.

Every command is a thin shell over the core: it parses flags, calls one core function, prints
what was done and exits non-zero with one clear message on any refusal.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from app.errors import UserFacingError
from app.i18n import _, set_language


def _add_db(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--db", type=Path, required=required, help=_("path of the SQLite database"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description=_("VoltKeeper: station software for campus prepaid electricity."),
    )
    parser.add_argument("--demo", action="store_true",
                        help=_("open the window on a simulated campus (created once)"))
    _add_db(parser, required=False)
    parser.add_argument("--language", default=None, help=_("en or zh_CN (default: system)"))
    parser.add_argument("-v", "--verbose", action="store_true", help=_("log debug details"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from app.simulator import cli as sim_cli

    p = sub.add_parser("simulate", help=_("serve a campus of simulated meters over Modbus"))
    sim_cli.add_arguments(p)

    p = sub.add_parser("init-demo", help=_("create a demo database for the simulator"))
    _add_db(p)
    p.add_argument("--buses", type=int, default=12)
    p.add_argument("--meters", type=int, default=27, help=_("meters per bus"))
    p.add_argument("--port", type=int, default=5020,
                   help=_("the simulator's --port (bus k listens on port + k)"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--transport", choices=("tcp", "rtu-tcp"), default="tcp")
    p.add_argument("--profile", default="acrel-ddsy1352")
    p.add_argument("--seed", type=int, default=1)

    p = sub.add_parser("serve", help=_("run the reading service without a window"))
    _add_db(p)
    p.add_argument("--log-file", type=Path, default=None,
                   help=_("rotating log file (default: next to the database)"))

    p = sub.add_parser("recharge", help=_("sell electricity to a room (book and send)"))
    _add_db(p)
    p.add_argument("--room", required=True,
                   help=_("room number, account number, occupant name or student number"))
    p.add_argument("--amount", required=True, help=_("yuan, e.g. 12.34"))
    p.add_argument("--method", required=True,
                   choices=("cash", "campus_card", "wechat", "alipay", "bank"))
    p.add_argument("--operator", required=True)
    p.add_argument("--reference", default=None, help=_("external payment id (applied once)"))
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help=_("wait this long for the meter to confirm"))

    p = sub.add_parser("import-payments", help=_("import a payment statement (.xlsx or .csv)"))
    _add_db(p)
    p.add_argument("file", type=Path)
    p.add_argument("--operator", default="import")
    p.add_argument("--method", default="campus_card",
                   help=_("payment method for rows that do not name one"))
    p.add_argument("--skip-bad", action="store_true",
                   help=_("book the valid rows even if some rows are wrong"))
    p.add_argument("--dry-run", action="store_true", help=_("only check the file"))

    p = sub.add_parser("account", help=_("open or close a room's account; occupants in and out"))
    _add_db(p)
    p.add_argument("action", choices=("open", "close", "move-in", "move-out", "show"))
    p.add_argument("--room", required=True, help=_("room or shop number"))
    p.add_argument("--operator", default="desk")
    p.add_argument("--mode", choices=("meter", "station"), default=None,
                   help=_("who keeps the money (default: the meter, if the room has one)"))
    p.add_argument("--group", default=None, help=_("tariff group (default: dorm or shop)"))
    p.add_argument("--carry", action="store_true",
                   help=_("on closing, carry the balance to the resident's next term"))
    p.add_argument("--method", default="cash", help=_("how a closing balance is refunded"))
    p.add_argument("--name", default="")
    p.add_argument("--person-no", default="")
    p.add_argument("--phone", default="")

    p = sub.add_parser("tariff", help=_("list tariffs or add a tariff version"))
    _add_db(p)
    p.add_argument("action", choices=("list", "set"))
    p.add_argument("--group", default="dorm")
    p.add_argument("--from", dest="starts_on", default=None, help=_("first day, YYYY-MM-DD"))
    p.add_argument("--price", default=None, help=_("yuan per kWh, e.g. 0.588"))
    p.add_argument("--tiers", default="",
                   help=_("monthly tiers, e.g. 50:0.588,200:0.638,*:0.888 (kWh:price)"))
    p.add_argument("--allowance", default="0", help=_("free kWh per account and month"))
    p.add_argument("--operator", default="finance")

    p = sub.add_parser("status", help=_("print each bus and meter"))
    _add_db(p)
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return parser


def main(argv: list[str] | None = None) -> int:
    set_language(None)  # the system's language already for --help
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.language:
        set_language(args.language)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return _dispatch(args)
    except UserFacingError as exc:
        print(_("error: {message}").format(message=exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "simulate":
        from app.simulator import cli as sim_cli

        return sim_cli.run(args)
    if command == "init-demo":
        from app.cli.demo import init_demo_command

        return init_demo_command(args)
    if command == "serve":
        from app.cli.serve import serve_command

        return serve_command(args)
    if command in ("recharge", "import-payments", "account", "tariff"):
        from app.cli import desk as desk_commands

        return desk_commands.run(args)
    if command == "status":
        from app.cli.status import status_command

        return status_command(args)
    from app.views.startup import run_gui

    return run_gui(db=args.db, demo=args.demo, language=args.language)
