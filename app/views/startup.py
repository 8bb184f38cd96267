"""Starting the window: ``run_gui`` (``python main.py`` and ``python main.py --demo``)."""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from app.core import operators, queries
from app.core.operators import Operator
from app.core.station import open_station, release_connection
from app.errors import UserFacingError, database_problem
from app.i18n import _
from app.paths import data_dir, demo_db
from app.ui import settings
from app.ui.app import configure_application
from app.ui.context import AppContext, build_context
from app.ui.language import apply_language
from app.ui.runner import OperationRunner
from app.ui.settings import UiSettings
from app.views.password_dialogs import ChangePasswordDialog, FirstAdministratorDialog
from app.views.sign_in import SignInDialog

log = logging.getLogger("voltkeeper.ui")

#: ``--demo`` signs in as this demo operator, without a password.
DEMO_ADMINISTRATOR = "admin"


def default_database(ui: UiSettings) -> Path:
    configured = ui.get(settings.DATABASE)
    return Path(configured) if configured else data_dir() / "voltkeeper.db"


def run_gui(db: Path | None = None, demo: bool = False, language: str | None = None) -> int:
    """Open the campus window; with ``demo``, on the demo campus (its simulator already runs).

    The database is checked first (a damaged one is refused with what to do); then someone
    signs in: the demo's administrator at once, the station's first administrator on the very
    first start, otherwise an operator with their password (an initial password is changed
    before the window opens)."""
    app = QApplication.instance() or QApplication(sys.argv)
    configure_application(app)
    ui = UiSettings()
    apply_language(language or ui.get(settings.LANGUAGE))
    ctx: AppContext | None = None
    db_path: Path | None = db
    try:
        if demo:  # the command line made the demo campus and started its simulator
            db_path = db if db is not None else demo_db()
        else:
            db_path = db if db is not None else default_database(ui)
            if db is not None and not Path(db).exists() and not ask_to_create(Path(db)):
                return 0  # a mistyped path does not make a new, empty station
        open_station(db_path)
        if db is not None and not demo:
            ui.set(settings.DATABASE, str(db))  # the next start opens it again
        runner = OperationRunner()
        operator = sign_in_at_start(runner, demo)
        if operator is None:
            return 0
        ctx = build_context(db_path, ui, operator, demo=demo, runner=runner)
        from app.views.main_window import MainWindow

        window = MainWindow(ctx)
        ctx.start()
        window.show()
        _quit_on_signals(app)
        return app.exec()
    except UserFacingError as exc:
        return start_refused(str(exc))
    except Exception as exc:
        problem = database_problem(exc, db_path)
        if problem is not None:  # the database file or its disk: what to do, no traceback
            log.debug("the window could not start", exc_info=True)
            return start_refused(str(problem))
        log.exception("the window could not start")
        return start_refused(_("The window could not start: {error}").format(error=exc))
    finally:
        if ctx is not None:
            ctx.close()
        release_connection()


def start_refused(message: str) -> int:
    """The window does not open: one line on stderr (for whoever started it from a terminal or
    a script) and the same in a message box. Returns the exit code (1)."""
    try:
        print(_("error: {message}").format(message=message), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
    QMessageBox.critical(None, "VoltKeeper", message)
    return 1


def ask_to_create(path: Path) -> bool:
    """A --db that does not exist: a new station there only if the operator says so."""
    answer = QMessageBox.question(
        None, "VoltKeeper",
        _("There is no database at {path}. Create a new, empty station there?").format(
            path=path),
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def sign_in_at_start(runner: OperationRunner, demo: bool) -> Operator | None:
    """Who works at this window; None when they gave up (the window does not open)."""
    if demo:
        return operators.demo_sign_in(DEMO_ADMINISTRATOR)
    if not operators.has_operators():
        first = FirstAdministratorDialog(runner)
        if first.exec() != QDialog.DialogCode.Accepted:
            return None
        return first.result_value  # type: ignore[return-value]
    dialog = SignInDialog(runner, campus=queries.campus_name())
    if dialog.exec() != QDialog.DialogCode.Accepted or dialog.operator is None:
        return None
    operator = dialog.operator
    if operator.must_change_password:
        change = ChangePasswordDialog(runner, operator, forced=True)
        if change.exec() != QDialog.DialogCode.Accepted:
            return None
        operator = dataclasses.replace(operator, must_change_password=False)
    return operator


def _quit_on_signals(app: QApplication) -> None:
    """Ctrl+C and SIGTERM close the window cleanly (Qt's loop lets Python check twice a
    second)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_args: app.closeAllWindows())
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(500)
