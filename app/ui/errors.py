"""The one way errors reach the operator (``present_error``).

A ``UserFacingError`` says its own message (already written for the operator, translated); a
database that cannot be written now (busy past its timeout, a full disk, read-only) says what is
wrong and what to do (``errors.database_problem``); anything else is a defect: its traceback
goes to the log and the operator reads a short generic message. Dialogs show the text; they
never format exceptions themselves.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox

from app.errors import UserFacingError, database_problem
from app.i18n import _

log = logging.getLogger("voltkeeper.ui")


def error_text(exc: BaseException, what: str = "") -> str:
    """What the operator reads for ``exc``: a UserFacingError's own message; for anything else
    a short generic message (the traceback goes to the log)."""
    if isinstance(exc, UserFacingError):
        return str(exc)
    problem = database_problem(exc, None)  # busy, full, read-only: not a defect, say what to do
    if problem is not None:
        log.warning("%s failed: %s", what or "an operation", exc)
        return str(problem)
    log.error("%s failed", what or "an operation", exc_info=exc)
    return _("Something went wrong ({kind}). The details are in the log.").format(
        kind=type(exc).__name__)


def present_error(parent, exc: BaseException, what: str = "") -> None:
    """Show ``exc`` to the operator in one message box (one, whatever the operation)."""
    QMessageBox.warning(parent, what or "VoltKeeper", error_text(exc, what))
