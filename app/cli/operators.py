"""``main.py operator add|passwd|disable|enable|list``: who may sign in, with which role.

Passwords never come from a flag: the acting operator's from ``VOLTKEEPER_PASSWORD`` or a
prompt, a new one from standard input (or asked twice on a terminal). The station's first
administrator is added without ``--operator`` while the database has no operator at all.
"""

from __future__ import annotations

import argparse
import json
import time

from app.cli import add_db
from app.cli.auth import add_operator_flag, new_password, password_of, signed_in
from app.core import operators
from app.core.operators import PERSON_ROLES, Operator, role_text, sign_in
from app.core.station import open_station
from app.errors import UsageError
from app.i18n import _


def register(sub) -> dict:
    p = sub.add_parser("operator", help=_("add operators, change passwords, disable, list"))
    add_db(p)
    p.add_argument("action", choices=("add", "passwd", "disable", "enable", "list"))
    p.add_argument("--name", default=None, help=_("the operator concerned"))
    p.add_argument("--role", default=None, choices=[r.value for r in PERSON_ROLES])
    add_operator_flag(p, required=False)
    p.add_argument("--json", action="store_true", help=_("machine-readable output (list)"))
    return {"operator": run}


def run(args: argparse.Namespace) -> int:
    open_station(args.db, create=False)
    if args.action == "list":
        return _list(args)
    if not args.name:
        raise UsageError(_("name the operator with --name"))
    if args.action == "add":
        return _add(args)
    if args.action == "passwd":
        return _passwd(args)
    acting = _acting(args)
    operators.set_disabled(acting, args.name, args.action == "disable")
    text = _("{name} is disabled") if args.action == "disable" else _("{name} is enabled")
    print(text.format(name=args.name))
    return 0


def _acting(args: argparse.Namespace) -> Operator:
    if not args.operator:
        raise UsageError(_("operator {action} needs --operator NAME (an administrator)")
                              .format(action=args.action))
    return signed_in(args.operator, f"operator {args.action}")


def _add(args: argparse.Namespace) -> int:
    if not args.role:
        raise UsageError(_("give the new operator a role with --role"))
    first = not operators.has_operators()
    acting = None if first and not args.operator else _acting(args)
    password = new_password(_("New password for {name}: ").format(name=args.name))
    # the first administrator chose their own password; anyone else gets an initial one
    # from an administrator, to be changed at first sign-in
    change = operators.add_operator(acting, args.name, args.role, password,
                                    must_change=acting is not None)
    print(_("added {name} ({role})").format(name=change.operator.name,
                                            role=role_text(change.operator.role)))
    return 0


def _passwd(args: argparse.Namespace) -> int:
    if args.operator and args.operator != args.name:
        acting = _acting(args)  # an administrator gives an initial password
        password = new_password(_("New password for {name}: ").format(name=args.name))
        operators.reset_password(acting, args.name, password)
        print(_("{name} has a new initial password, to be changed at the next sign-in")
              .format(name=args.name))
        return 0
    current = password_of(args.name)
    me = sign_in(args.name, current, where="command line: operator passwd")
    password = new_password(_("New password for {name}: ").format(name=args.name))
    operators.change_own_password(me, current, password)
    print(_("the password of {name} is changed").format(name=args.name))
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = operators.list_operators(Operator.system("operator list"))
    if args.json:
        print(json.dumps([{"name": r.name, "role": r.role.value, "disabled": r.disabled,
                           "must_change_password": r.must_change_password,
                           "locked_until": r.locked_until, "last_sign_in_at": r.last_sign_in_at}
                          for r in rows], ensure_ascii=False, indent=1))
        return 0
    for r in rows:
        state = _("disabled") if r.disabled else (
            _("locked") if r.locked_until and r.locked_until > time.time() else _("active"))
        last = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.last_sign_in_at)) \
            if r.last_sign_in_at else "-"
        print(f"{r.name:<16} {role_text(r.role):<14} {state:<10} {last}")
    return 0
