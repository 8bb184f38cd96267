"""``main.py backup`` and ``main.py restore``.

``backup --db PATH [--to DIR] [--keep N] [--operator NAME]`` copies the database while the
reading service writes, checks the copy and keeps the newest N backups of that database in DIR
(default: the station's backup folder). ``restore --db PATH --from FILE [--operator NAME]
[--yes]`` checks the backup, asks on a terminal, and replaces the database, keeping the
replaced file beside it. Without ``--operator`` the OS user acts (audited as ``os:<user>``);
with it, the password is checked against the operators in the backup (the current database may
be damaged), and restoring needs an administrator.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from app.cli import add_db
from app.cli.auth import add_operator_flag, password_of, signed_in
from app.core import backup
from app.core.station import open_station
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("backup", help=_("copy the database while it is in use, check the copy, "
                                        "keep the newest N"))
    add_db(p)
    p.add_argument("--to", type=Path, default=None, metavar="DIR",
                   help=_("the backup folder (default: the station's, else 'backups' beside "
                          "the database)"))
    p.add_argument("--keep", type=int, default=None, metavar="N",
                   help=_("backups of this database kept in the folder (default: the "
                          "station's setting, 30)"))
    add_operator_flag(p, required=False)
    r = sub.add_parser("restore", help=_("replace the database with a checked backup (the "
                                         "replaced file is kept)"))
    add_db(r)
    r.add_argument("--from", dest="from_file", type=Path, required=True, metavar="FILE",
                   help=_("the backup file"))
    add_operator_flag(r, required=False)
    r.add_argument("--yes", action="store_true", help=_("do not ask for confirmation"))
    r.add_argument("--other-station", action="store_true",
                   help=_("restore a backup made of another station's database"))
    return {"backup": backup_command, "restore": restore_command}


def _size(n: int) -> str:
    return _("{mb:.1f} MB").format(mb=n / 1_000_000) if n >= 100_000 else \
        _("{kb:.1f} kB").format(kb=n / 1000)


def backup_command(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    operator = signed_in(args.operator, "backup") if args.operator else backup.os_operator()
    result = backup.backup(operator, args.db, to_dir=args.to, keep=args.keep)
    print(_("backup {path} ({size}), checked: sound").format(path=result.path,
                                                             size=_size(result.size)))
    if result.removed:
        print(_("removed {n} older backups: {names}").format(
            n=len(result.removed), names=", ".join(p.name for p in result.removed)))
    return 0


def _ask(db: Path, backup_file: Path) -> bool:
    """On a terminal, ask; a script (stdin not a terminal) proceeds."""
    if not sys.stdin.isatty():
        return True
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(backup_file.stat().st_mtime))
    answer = input(_("replace {db} with {backup} (made {when})? Whatever was booked since "
                     "then is no longer in the books (the replaced file is kept). [y/N] ")
                   .format(db=db, backup=backup_file, when=when))
    return answer.strip().lower() in ("y", "yes", _("y"), _("yes"))


def restore_command(args: argparse.Namespace) -> int:
    operator = None
    if args.operator:  # checked against the backup; restore then checks the whole file
        operator = backup.sign_in_for_restore(args.from_file, args.operator,
                                              password_of(args.operator))
    result = backup.restore(operator, args.db, args.from_file,
                            confirm=None if args.yes else _ask,
                            other_station=args.other_station)
    print(_("restored {db} from {backup}").format(db=result.db_path, backup=result.backup_file))
    if result.replaced_path is not None:
        print(_("the replaced database is kept as {path}").format(path=result.replaced_path))
    return 0
