"""Starting the window: ``run_gui`` (``python main.py`` and ``python main.py --demo``)."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.errors import UserFacingError
from app.i18n import _
from app.paths import data_dir, default_key_file, demo_db
from app.storage.db import close_database
from app.ui import settings
from app.ui.app import configure_application
from app.ui.context import AppContext, build_context
from app.ui.language import apply_language
from app.ui.settings import UiSettings

log = logging.getLogger("voltkeeper.ui")


def default_database(ui: UiSettings) -> Path:
    configured = ui.get(settings.DATABASE)
    return Path(configured) if configured else data_dir() / "voltkeeper.db"


def run_gui(db: Path | None = None, demo: bool = False, language: str | None = None) -> int:
    """Open the campus window; with ``demo``, on the demo campus with its simulator beside."""
    app = QApplication.instance() or QApplication(sys.argv)
    configure_application(app)
    ui = UiSettings()
    apply_language(language or ui.get(settings.LANGUAGE))
    simulator = None
    ctx: AppContext | None = None
    try:
        if demo:
            from app.simulator.process import SimulatorProcess, ensure_demo_database

            db_path = demo_db()
            simulator = SimulatorProcess(ensure_demo_database(db_path), default_key_file())
            simulator.start()
        else:
            db_path = db if db is not None else default_database(ui)
            if db is not None:
                ui.set(settings.DATABASE, str(db))
        ctx = build_context(db_path, ui, demo=demo)
        from app.views.main_window import MainWindow

        window = MainWindow(ctx)
        ctx.start()
        window.show()
        _quit_on_signals(app)
        return app.exec()
    except UserFacingError as exc:
        QMessageBox.critical(None, "VoltKeeper", str(exc))
        return 1
    except Exception as exc:
        log.exception("the window could not start")
        QMessageBox.critical(None, "VoltKeeper",
                             _("The window could not start: {error}").format(error=exc))
        return 1
    finally:
        if ctx is not None:
            ctx.close()
        if simulator is not None:
            simulator.stop()
        close_database()



def _quit_on_signals(app: QApplication) -> None:
    """Ctrl+C and SIGTERM close the window cleanly (Qt's loop lets Python check twice a
    second)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_args: app.closeAllWindows())
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(500)
