"""The one way the window runs core operations: off the UI thread, with progress and cancel,
and one typed signal that says what changed.

``OperationRunner.run(work, ...)`` runs ``work`` (a core operation bound to its arguments) in a
worker thread with its own database connection. A long one receives a core ``Progress``; the
runner shows a progress dialog whose Cancel asks the work to stop at its next step. When the
work returns, ``on_done`` gets the result on the UI thread and, if the result says what it
changed (``.changes``), ``changed`` carries that ``Changes`` to every view that listens: a
recharge redraws the tree, the room's panel and the room table from one signal. A failure goes
to ``on_error`` or to the one error presenter (``ui/errors.present_error``): a user-facing
message as it is, anything else as a short message with the details in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from app.core.changes import Changes
from app.core.progress import Progress
from app.core.station import release_connection
from app.errors import Cancelled
from app.i18n import _
from app.ui.errors import present_error
from app.ui.workers import WorkerThread

log = logging.getLogger("voltkeeper.ui.runner")

#: A progress dialog appears only for work that takes longer than this.
PROGRESS_AFTER_MS = 400


@dataclass
class Job:
    """One run of an operation; ``result`` or ``error`` once it is done."""

    title: str
    progress: Progress = field(default_factory=Progress)
    result: Any = None
    error: BaseException | None = None
    done: bool = False
    dialog: QProgressDialog | None = None  # its progress dialog, when it shows progress
    quiet: bool = False  # a background question: not "busy", its failure only logged

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, Cancelled)


class _Relay(QObject):
    """Carries a worker's news to the UI thread (queued connections)."""

    progressed = Signal(int, int, str)
    finished = Signal()


class OperationRunner(QObject):
    #: what an operation changed (a ``Changes``): views redraw what concerns them
    changed = Signal(object)
    #: every job, once it is done (successful, failed or cancelled): ``Job``
    jobDone = Signal(object)
    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[int, tuple[Job, WorkerThread, _Relay, QProgressDialog | None]] = {}
        self._spent: _Relay | None = None
        self._closed = False  # the window is going: results are no longer shown

    @property
    def busy(self) -> bool:
        """An operation the operator started is running (background questions aside)."""
        return any(not job.quiet for job, *_rest in self._running.values())

    def run(self, work: Callable[..., Any], *, title: str, parent: QWidget | None = None,
            on_done: Callable[[Any], None] | None = None,
            on_error: Callable[[BaseException], None] | None = None,
            progress: bool = False, label: str = "", quiet: bool = False,
            on_progress: Callable[[int, int, str], None] | None = None) -> Job:
        """Run ``work()`` (``work(progress)`` when ``progress``) off the UI thread. ``quiet``:
        a question the window asks by itself (a refresh): a failure goes to the log only.
        ``on_progress``: the screen shows the progress itself (its own bar and Cancel, which
        calls ``job.progress.cancel``), on the UI thread; no progress dialog."""
        job = Job(title, quiet=quiet)
        relay = _Relay()
        dialog = None
        if progress and on_progress is not None:
            job.progress = Progress(lambda n, total, text: relay.progressed.emit(n, total, text))
            relay.progressed.connect(
                lambda n, total, text: None if job.progress.cancelled
                else on_progress(n, total, text), Qt.ConnectionType.QueuedConnection)
        elif progress:
            dialog = QProgressDialog(label or title, _("Cancel"), 0, 0, parent)
            dialog.setWindowTitle(title)
            dialog.setWindowModality(Qt.WindowModality.WindowModal)
            dialog.setMinimumDuration(PROGRESS_AFTER_MS)
            dialog.setAutoClose(False)
            dialog.setAutoReset(False)
            job.dialog = dialog
            job.progress = Progress(lambda n, total, text: relay.progressed.emit(n, total, text))
            dialog.canceled.connect(job.progress.cancel)

            def show_progress(n: int, total: int, text: str, d: QProgressDialog = dialog) -> None:
                if job.progress.cancelled:
                    return
                d.setMaximum(max(total, 0))
                d.setValue(min(n, total) if total else 0)
                if text:
                    d.setLabelText(text)

            relay.progressed.connect(show_progress, Qt.ConnectionType.QueuedConnection)

        if self._closed:  # the window is going: the work stops at its first step
            job.progress.cancel()

        def body() -> None:
            try:
                job.result = work(job.progress) if progress else work()
            except BaseException as exc:  # handed to the UI thread, which decides what to show
                job.error = exc
            finally:
                release_connection()  # this thread's own database connection
                relay.finished.emit()

        thread = WorkerThread(body, f"op-{title}")
        key = id(job)
        self._running[key] = (job, thread, relay, dialog)
        relay.finished.connect(lambda: self._finish(key, parent, on_done, on_error),
                               Qt.ConnectionType.QueuedConnection)
        thread.start()
        if not quiet and sum(1 for j, *_r in self._running.values() if not j.quiet) == 1:
            self.busyChanged.emit(True)
        return job

    def _finish(self, key: int, parent: QWidget | None,
                on_done: Callable[[Any], None] | None,
                on_error: Callable[[BaseException], None] | None) -> None:
        entry = self._running.pop(key, None)
        if entry is None:
            return
        job, thread, relay, dialog = entry
        thread.wait()
        # a relay must outlive the signal that is calling us (PySide crashes on a sender freed
        # inside its own queued call): it is let go when the next job ends
        self._spent = relay
        job.done = True
        if dialog is not None:
            dialog.close()
            dialog.deleteLater()
        if self._closed:  # the screens that asked are gone
            self.jobDone.emit(job)
            return
        try:
            if job.error is None:
                if on_done is not None:
                    on_done(job.result)
                changes = getattr(job.result, "changes", None)
                if isinstance(changes, Changes):
                    self.changed.emit(changes)
            elif on_error is not None:
                on_error(job.error)
            elif job.quiet:
                log.warning("%s failed: %s", job.title, job.error)
            elif not job.cancelled:
                present_error(parent, job.error, job.title)
        finally:
            self.jobDone.emit(job)
            if not job.quiet and not self.busy:
                self.busyChanged.emit(False)

    def close(self) -> None:
        """The window closes: let the running jobs end, show nothing of what they return."""
        self._closed = True
        self.wait_all()

    def wait_all(self) -> None:
        """Let every running job end (cancelling those that can be)."""
        running = list(self._running.values())
        for job, _thread, _relay, _dialog in running:
            job.progress.cancel()
        for _job, thread, _relay, _dialog in running:
            thread.wait()
