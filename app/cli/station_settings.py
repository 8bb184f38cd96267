"""``main.py settings``: the station's settings (every desk and the reading service see the
same), listed, or one changed by a signed-in administrator (audited with before and after), so
a station that runs only ``serve`` is configured without the window.

    main.py settings --db D [--json]
    main.py settings --db D set --key sms.sender --value modem --operator NAME

A change to what the reading service starts with (e.g. ``sms.sender``) takes effect when it
is restarted.
"""

from __future__ import annotations

import argparse
import json

from app.cli import add_db
from app.cli.auth import add_operator_flag, signed_in
from app.core import settings
from app.core.station import open_station
from app.errors import UserFacingError
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("settings", help=_("list the station's settings, or change one"))
    add_db(p)
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    s = acts.add_parser("set", help=_("change a setting (administrators)"))
    s.add_argument("--key", required=True, help=_("the setting's name, as listed"))
    s.add_argument("--value", required=True)
    add_operator_flag(s)
    return {"settings": settings_command}


def settings_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if args.action == "set":
        option = settings.OPTIONS.get(args.key)
        if option is None:
            raise UserFacingError(_("no setting {key!r} (see: main.py settings --db ...)")
                                  .format(key=args.key))
        operator = signed_in(args.operator, "settings set")
        done = settings.change(operator, option, args.value)
        print(_("{key}: {before} -> {after}").format(key=done.key, before=done.before,
                                                    after=done.after))
        return 0
    now = settings.values()
    if args.json:
        print(json.dumps(now, ensure_ascii=False, indent=1))
        return 0
    for key, option in settings.OPTIONS.items():
        print(f"{key:<28} {now[key]!s:<12} {_(option.label)}")
    return 0
