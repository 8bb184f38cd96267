"""``main.py init-demo``: a demo database whose buses point at ``main.py simulate``."""

from __future__ import annotations

import argparse
import os

from app.cli import add_db
from app.core.operators import PASSWORD_ENV
from app.errors import UserFacingError
from app.i18n import _
from app.simulator.demo_campus import DEMO_OPERATORS, create_demo_campus


def register(sub) -> dict:
    p = sub.add_parser("init-demo", help=_("create a demo database for the simulator"))
    add_db(p)
    p.add_argument("--buses", type=int, default=12)
    p.add_argument("--meters", type=int, default=27, help=_("meters per bus"))
    p.add_argument("--port", type=int, default=5020,
                   help=_("the simulator's --port (bus k listens on port + k)"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--transport", choices=("tcp", "rtu-tcp"), default="tcp")
    p.add_argument("--profile", default="acrel-ddsy1352")
    p.add_argument("--seed", type=int, default=1)
    return {"init-demo": init_demo_command}


def init_demo_command(args: argparse.Namespace) -> int:
    if args.db.exists():
        raise UserFacingError(_("{path} exists already; init-demo only creates a new database")
                              .format(path=args.db))
    counts, generated = create_demo_campus(
        args.db, buses=args.buses, meters=args.meters, host=args.host, port=args.port,
        transport=args.transport, profile=args.profile, seed=args.seed,
        password=os.environ.get(PASSWORD_ENV) or None)
    print(_("created {path}: {buildings} buildings, {rooms} rooms, {shops} shops, "
            "{meters} meters on {buses} buses").format(path=args.db, buses=args.buses, **counts))
    print(_("start its meters with: python main.py simulate --buses {buses} --meters {meters} "
            "--port {port} --transport {transport} --seed {seed}").format(
        buses=args.buses, meters=args.meters, port=args.port, transport=args.transport,
        seed=args.seed))
    names = ", ".join(name for name, _role in DEMO_OPERATORS)
    if generated:
        print(_("operators {names}: initial password {password} (shown only now; each "
                "changes it at the first sign-in)").format(names=names, password=generated))
    else:
        print(_("operators {names}: the password in VOLTKEEPER_PASSWORD").format(names=names))
    return 0
