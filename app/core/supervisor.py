"""Keeping the reading service's long-running loops alive.

Each of them (a bus's poller, the storage writer, billing, the lease) runs under a
``Supervisor``: an exception nobody expected is logged with its traceback (``serve``'s log file
has it), the loop's state becomes ``error`` with the reason, and the loop is started again after
a back-off (1 s, doubling to 60 s; back to 1 s once it has run a minute without failing). The
loop itself decides what is expected: a bus that cannot be opened is ``down``, not an error.

Qt-free: the thread is whatever the service's ``thread_factory`` makes (a QThread in the
window); the supervisor is its target.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

log = logging.getLogger("voltkeeper.supervisor")

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 60.0
#: A loop that ran this long without failing starts its back-off from the beginning again.
HEALTHY_AFTER_S = 60.0
#: A loop that failed this many times in a row (each within HEALTHY_AFTER_S of its start) and
#: has not run healthily since is ``dead``.
DEAD_AFTER = 3


@dataclass(frozen=True)
class SupervisorState:
    """What a supervised loop is doing: ``running``, ``error`` (waiting to restart) or
    ``stopped``; its last error (kept after a restart) and how often it was restarted."""

    name: str
    state: str
    error: str = ""
    restarts: int = 0
    last_error_at: float | None = None
    changed_at: float = 0.0
    failures_in_row: int = 0  # failures without a healthy run between them

    def describe(self) -> str:
        if self.state == "error":
            return f"error: {self.error}"
        return self.state


StateListener = Callable[[SupervisorState], None]


class Supervisor:
    """Runs ``loop()`` until ``stop`` is set, restarting it after an exception."""

    def __init__(self, name: str, loop: Callable[[], None], stop: threading.Event, *,
                 on_state: StateListener | None = None, backoff_start_s: float = BACKOFF_START_S,
                 backoff_max_s: float = BACKOFF_MAX_S,
                 healthy_after_s: float = HEALTHY_AFTER_S) -> None:
        self.name = name
        self.loop = loop
        self.stop = stop
        self.on_state = on_state
        self.backoff_start_s = backoff_start_s
        self.backoff_max_s = backoff_max_s
        self.healthy_after_s = healthy_after_s
        self._lock = threading.Lock()
        self._state = SupervisorState(name, "starting", changed_at=time.time())
        self._consecutive = 0  # failures without a healthy run between them
        self._running_since: float | None = None

    @property
    def state(self) -> SupervisorState:
        with self._lock:
            return self._state

    def dead(self, after: int = DEAD_AFTER) -> bool:
        """True when the loop failed ``after`` times in a row and has not run healthily since
        (in error now, or restarted less than ``healthy_after_s`` ago)."""
        with self._lock:
            if self._consecutive < after:
                return False
            if self._state.state == "error":
                return True
            since = self._running_since
        return since is not None and time.monotonic() - since < self.healthy_after_s

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._state = replace(self._state, changed_at=time.time(), **changes)
            state = self._state
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception:  # reporting must never take the loop down
                log.exception("%s: could not report its state", self.name)

    def run(self) -> None:
        """The thread's target: run the loop until ``stop``; restart it when it fails."""
        backoff = self.backoff_start_s
        first = True
        while not self.stop.is_set():
            if first:
                self._set(state="running")
            else:
                self._set(state="running", restarts=self.state.restarts + 1)
            first = False
            started = time.monotonic()
            with self._lock:
                self._running_since = started
            try:
                self.loop()
            except Exception as exc:
                healthy = time.monotonic() - started >= self.healthy_after_s
                if healthy:
                    backoff = self.backoff_start_s
                with self._lock:
                    self._consecutive = 1 if healthy else self._consecutive + 1
                    in_row = self._consecutive
                reason = f"{type(exc).__name__}: {exc}"
                log.exception("%s failed (%s); restarting in %.0f s", self.name, reason, backoff)
                self._set(state="error", error=reason, last_error_at=time.time(),
                          failures_in_row=in_row)
                if self.stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            if not self.stop.is_set():
                log.warning("%s: its loop returned before the service stopped", self.name)
            break
        self._set(state="stopped")
