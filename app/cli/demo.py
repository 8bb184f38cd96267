"""``main.py init-demo``: a demo database whose buses point at ``main.py simulate``."""

from __future__ import annotations

import argparse

from app.errors import UserFacingError
from app.i18n import _
from app.simulator.demo_campus import create_demo_campus


def init_demo_command(args: argparse.Namespace) -> int:
    if args.db.exists():
        raise UserFacingError(_("{path} exists already; init-demo only creates a new database")
                              .format(path=args.db))
    counts = create_demo_campus(args.db, buses=args.buses, meters=args.meters, host=args.host,
                                port=args.port, transport=args.transport, profile=args.profile,
                                seed=args.seed)
    print(_("created {path}: {buildings} buildings, {rooms} rooms, {shops} shops, "
            "{meters} meters on {buses} buses").format(path=args.db, buses=args.buses, **counts))
    print(_("start its meters with: python main.py simulate --buses {buses} --meters {meters} "
            "--port {port} --transport {transport} --seed {seed}").format(
        buses=args.buses, meters=args.meters, port=args.port, transport=args.transport,
        seed=args.seed))
    return 0
