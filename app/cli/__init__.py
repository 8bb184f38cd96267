"""The command line: the window (default), ``--demo``, and the headless and admin commands.

Every command is a thin shell over the core: it parses flags, signs the operator in where the
command acts, calls core operations, prints what was done and maps a refusal to one message
and an exit code. Each module of this package registers its commands (``register``).

Exit codes: 0 done; 1 refused (the message says why; a wrong password too); 2 wrong flags;
3 the operator's role does not allow it; 4 done only in part (the failures are listed);
130 interrupted; 141 its output was cut off (``status | head``: the reader went away).

A database or a file that cannot be used (missing, empty, damaged, not VoltKeeper's, read-only,
a full disk) is one line on stderr saying what is wrong and what to do, never a traceback, and
exit code 1 (a ``serve`` also writes it to its log file).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from app.core.operators import PermissionDenied
from app.errors import UsageError, UserFacingError, database_problem, file_problem
from app.i18n import _, set_language

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_DENIED = 3
EXIT_PARTIAL = 4
EXIT_INTERRUPTED = 130
#: Like a program killed by SIGPIPE (128 + 13): whoever read the output stopped reading.
EXIT_BROKEN_PIPE = 141

log = logging.getLogger("voltkeeper.cli")

Handler = Callable[[argparse.Namespace], int]


def add_db(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--db", type=Path, required=required, help=_("path of the SQLite database"))


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    from app.cli import (
        alarms,
        audit,
        backup,
        buses,
        commission,
        control,
        demo,
        desk,
        health,
        meter_tools,
        operators,
        paysim,
        portal,
        report,
        rules,
        scan,
        serve,
        sms,
        station_settings,
        status,
    )
    from app.simulator import cli as sim_cli

    parser = argparse.ArgumentParser(
        prog="main.py",
        description=_("VoltKeeper: station software for campus prepaid electricity."),
    )
    parser.add_argument("--demo", action="store_true",
                        help=_("open the window on a simulated campus (created once)"))
    parser.add_argument("--port", dest="demo_port", type=int, default=None, metavar="P",
                        help=_("with --demo: the demo simulator's ports, bus k on P + k "
                               "(default: the demo's own, 5020 when it is made)"))
    add_db(parser, required=False)
    parser.add_argument("--language", default=None, help=_("en or zh_CN (default: system)"))
    parser.add_argument("-v", "--verbose", action="store_true", help=_("log debug details"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers: dict[str, Handler] = {}
    p = sub.add_parser("simulate", help=_("serve a campus of simulated meters over Modbus"))
    sim_cli.add_arguments(p)
    handlers["simulate"] = sim_cli.run
    for module in (demo, serve, status, desk, control, rules, alarms, operators, audit, backup,
                   sms, station_settings, report, scan, health,
                   buses, commission, meter_tools, portal, paysim):
        handlers.update(module.register(sub))
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    set_language(None)  # the system's language already for --help
    parser, handlers = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if any(a == "--password" or a.startswith("--password=") for a in argv):
        parser.error(_("a password never goes on the command line (others can read it there): "
                       "set VOLTKEEPER_PASSWORD or answer the prompt"))
    args = parser.parse_args(argv)
    if args.demo_port is not None and (args.command or not args.demo):
        parser.error(_("--port before a command goes with --demo only"))
    if args.language:
        set_language(args.language)
    # a command prints its result; the running programs (the window, serve, the simulator)
    # tell what they do as they go
    chatty = args.command in (None, "serve", "simulate")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if chatty else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("peewee").setLevel(logging.INFO)  # its debug lines carry the data
    try:
        if args.command:
            code = handlers[args.command](args)
        elif args.demo:
            code = _demo(args)
        else:
            from app.views.startup import run_gui

            code = run_gui(db=args.db, language=args.language)
        sys.stdout.flush()  # a reader that went away is told here, not at exit
        return code
    except BrokenPipeError:
        return broken_pipe()
    except PermissionDenied as exc:
        return _refuse(exc, EXIT_DENIED)
    except UsageError as exc:
        return _refuse(exc, EXIT_USAGE)
    except UserFacingError as exc:
        return _refuse(exc, EXIT_REFUSED)
    except (KeyboardInterrupt, EOFError):  # Ctrl+C, or Ctrl+D at a prompt
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        problem = database_problem(exc, getattr(args, "db", None))
        if problem is None and isinstance(exc, OSError):
            problem = file_problem(exc)
        if problem is None:
            raise  # a defect: its traceback is what tells where
        log.debug("%s", exc, exc_info=True)
        return _refuse(problem, EXIT_REFUSED)


def _refuse(exc: Exception, code: int) -> int:
    """One line on stderr (and in a log file, when the command keeps one); the exit code."""
    message = _("error: {message}").format(message=exc)
    try:
        print(message, file=sys.stderr, flush=True)
    except BrokenPipeError:
        pass
    _to_log_files(str(exc))
    return code


def _to_log_files(message: str) -> None:
    """Write ``message`` to the log files only (stderr has it already): why ``serve`` stopped."""
    record = logging.LogRecord("voltkeeper.cli", logging.ERROR, __file__, 0, "%s", (message,),
                               None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def broken_pipe() -> int:
    """Standard output's reader went away (``status | head -1``): stop quietly. Whatever is
    still buffered goes nowhere, so that flushing at exit does not complain either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _demo(args: argparse.Namespace) -> int:
    """``--demo [--port P]``: the demo campus (made once), its simulator beside (started, or
    joined when another demo window runs it), the window on it."""
    from app.simulator.process import open_demo
    from app.views.startup import run_gui

    demo = open_demo(port=args.demo_port)
    try:
        return run_gui(db=demo.db_path, demo=True, language=args.language)
    finally:
        demo.close()
