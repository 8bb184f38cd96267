"""``main.py paysim --db PATH [--host 127.0.0.1] [--port 8090]``: the payment provider simulator.

Makes its keys on first start (``paysim/`` beside the database, mode 0600), writes the public
halves and the APIv3 key where the station reads them (``payment-keys/``), and answers the
portal's hand-over at ``http://HOST:PORT/pay?...`` until interrupted. For tests and demos
only: it plays Alipay and WeChat Pay, it is neither.
"""

from __future__ import annotations

import argparse

from app.cli import add_db
from app.core import online_payments
from app.errors import UserFacingError
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("paysim", help=_("run the payment provider simulator (tests and demos)"))
    add_db(p)
    p.add_argument("--host", default="127.0.0.1", help=_("address to listen on (default "
                                                         "127.0.0.1)"))
    p.add_argument("--port", type=int, default=8090, help=_("port to listen on (default 8090)"))
    return {"paysim": paysim_command}


def paysim_command(args: argparse.Namespace) -> int:
    from app.simulator.paysim import PaySim, make_server

    db = args.db.resolve()
    if not db.is_file():
        raise UserFacingError(_("there is no database at {path}").format(path=db))
    sim = PaySim.beside(db)
    sim.install(db.parent / online_payments.KEY_DIR_NAME)
    server = make_server(sim, args.host, args.port)
    print(_("paysim: the provider's keys are in {folder}; the station's in {keys}").format(
        folder=sim.folder, keys=db.parent / online_payments.KEY_DIR_NAME), flush=True)
    print(_("paysim: hand-over page at http://{host}:{port}/pay").format(
        host=args.host, port=server.server_address[1]), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
