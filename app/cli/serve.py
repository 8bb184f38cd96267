"""``main.py serve``: the reading service without a window, all year.

Logs to a rotating file (next to the database unless ``--log-file``) and to stderr. If another
process holds the polling lease, it says who and stands by, taking over when that lease expires.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import signal
import threading
from pathlib import Path

from app.cli import add_db
from app.core.service import LEASE_TTL_S, ReadingService
from app.core.station import open_station
from app.i18n import _

log = logging.getLogger("voltkeeper.serve")


def register(sub) -> dict:
    p = sub.add_parser("serve", help=_("run the reading service without a window"))
    add_db(p)
    p.add_argument("--log-file", type=Path, default=None,
                   help=_("rotating log file (default: next to the database)"))
    return {"serve": serve_command}


def add_file_log(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=10 * 1024 * 1024,
                                                   backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def _log_thread_deaths() -> None:
    """A thread that dies of an exception is in the log file, not only on stderr (the
    service's loops are supervised; this is for anything that is not)."""
    def hook(exc: threading.ExceptHookArgs) -> None:
        if exc.exc_type is SystemExit:
            return
        name = exc.thread.name if exc.thread is not None else "?"
        log.critical("thread %s died", name,
                     exc_info=(exc.exc_type, exc.exc_value, exc.exc_traceback))

    threading.excepthook = hook


def serve_command(args: argparse.Namespace) -> int:
    log_file = args.log_file or args.db.with_suffix(".log")
    add_file_log(log_file)
    _log_thread_deaths()
    open_station(args.db, create=False)
    stop = threading.Event()

    def _on_signal(signum, _frame):
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    service = ReadingService(role="serve", db_path=args.db)
    told = False
    while not stop.is_set():
        ok, info = service.start()
        if ok:
            break
        if not told:
            print(_("the buses of {db} are polled by {holder}; standing by until it stops")
                  .format(db=args.db, holder=info.describe()), flush=True)
            told = True
        stop.wait(LEASE_TTL_S / 3)
    if stop.is_set():
        return 0
    try:
        print(_("polling {buses} buses; log in {log}").format(buses=len(service.pollers),
                                                              log=log_file), flush=True)
    except BrokenPipeError:  # nobody reads stdout any more: poll on, the log has it all
        log.info("standard output closed; polling goes on")
    try:
        while not stop.is_set() and not service.lost_lease:
            stop.wait(0.5)
    finally:
        service.stop()
    return 0
