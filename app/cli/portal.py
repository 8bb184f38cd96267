"""The residents' portal from the command line (issue 13):

    main.py portal --db D [--host 127.0.0.1] [--port 8080] [--kiosk] [--secret-file F]

Serves the web portal (``app/portal``) under uvicorn until interrupted. It opens an existing
station database and writes only the portal's own rows (sessions, sign-in attempts,
requests) and their audit entries: it moves no money and commands no meter.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import add_db
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("portal", help=_("serve the residents' web portal"))
    add_db(p)
    p.add_argument("--host", default="127.0.0.1",
                   help=_("address to listen on (default 127.0.0.1)"))
    p.add_argument("--port", type=int, default=8080, help=_("port (default 8080)"))
    p.add_argument("--kiosk", action="store_true",
                   help=_("kiosk mode: large type, framing allowed, sessions end after "
                          "60 s idle"))
    p.add_argument("--secret-file", type=Path, default=None,
                   help=_("the portal's signing key (made with mode 0600 if missing; "
                          "default: in the data folder)"))
    return {"portal": portal_command}


def portal_command(args: argparse.Namespace) -> int:
    import uvicorn

    from app.portal.app import create_app

    app = create_app(args.db, kiosk=args.kiosk, secret_file=args.secret_file)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", server_header=False)
    return 0
