"""Who acts on the command line: ``--operator NAME`` and the password from the environment
variable ``VOLTKEEPER_PASSWORD`` or a prompt (never from a flag: flags show in ``ps`` and in
shell histories). New passwords are read from standard input when it is not a terminal."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from app.core.operators import PASSWORD_ENV, Operator, sign_in
from app.errors import UserFacingError
from app.i18n import _


def add_operator_flag(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--operator", required=required, metavar="NAME",
                        help=_("who acts; the password comes from VOLTKEEPER_PASSWORD or a "
                               "prompt"))


def password_of(name: str) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise UserFacingError(_("no password for {name}: set VOLTKEEPER_PASSWORD or run in a "
                                "terminal").format(name=name))
    return getpass.getpass(_("Password for {name}: ").format(name=name))


def signed_in(name: str, command: str, *, allow_initial: bool = False) -> Operator:
    """Sign ``name`` in for one command (audited like any sign-in)."""
    operator = sign_in(name, password_of(name), where=f"command line: {command}")
    if operator.must_change_password and not allow_initial:
        raise UserFacingError(_("{name} must change the initial password first: main.py "
                                "operator passwd --db DB --name {name}").format(name=name))
    return operator


def new_password(prompt: str, tries: int = 3) -> str:
    """A new password: asked twice on a terminal (again when the two differ), else one line
    of standard input."""
    if sys.stdin.isatty():
        for _attempt in range(tries):
            first = getpass.getpass(prompt)
            if getpass.getpass(_("Again: ")) == first:
                return first
            print(_("The two passwords differ; once more."), file=sys.stderr)
        raise UserFacingError(_("the two passwords differ"))
    line = sys.stdin.readline()
    if not line:
        raise UserFacingError(_("no new password on standard input"))
    return line.rstrip("\r\n")
