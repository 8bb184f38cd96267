"""``--demo``: the demo database (created once) and the simulator process beside the window.

The demo's simulator keeps its meters' memory in the data folder (``demo-sim.json``, see
:mod:`app.simulator.state`), so the demo's meters and books stay in step across restarts. Its
process is recorded in ``demo-sim.pid`` (JSON: its pid, the demo's settings it serves, its
endpoints, and the pids of the demo windows using it). A second demo window joins the
simulator that runs rather than starting another that cannot listen; the last window to close
stops it. ``demo-sim.lock`` serialises the windows starting and stopping; the simulator's output
goes to ``logs/demo-simulator.log``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.core import operators
from app.core.operators import PASSWORD_ENV
from app.errors import UserFacingError
from app.i18n import _
from app.simulator.demo_campus import (
    DEFAULT_DEMO_PORT,
    add_demo_operators,
    create_demo_campus,
    demo_settings,
    repoint_demo_buses,
)
from app.storage import campus
from app.storage.db import open_database

log = logging.getLogger("voltkeeper.ui.demo")

MAIN = Path(__file__).resolve().parent.parent.parent / "main.py"
#: The demo settings a running simulator must share with the database to serve it.
SERVED_SETTINGS = ("demo_buses", "demo_meters", "demo_port", "demo_host", "demo_transport",
                   "demo_profile", "demo_seed")
_STOP_TIMEOUT_S = 10.0


def ensure_demo_database(path: Path, port: int | None = None,
                         state_file: Path | None = None) -> dict[str, str]:
    """Create the seed's campus at ``path`` unless it holds one; return its demo settings.

    ``port``: the simulator's first port (bus k on port + k); a new demo is made with it, an
    existing one has its buses re-pointed at it (without it, a demo keeps its own ports).
    ``state_file``: the demo simulator's memory, removed when a new demo is made (its fresh
    meters go with a fresh campus)."""
    if path.exists():
        open_database(path)
        if not campus.is_empty():
            if not operators.has_operators():  # a demo made before operators existed
                add_demo_operators(os.environ.get(PASSWORD_ENV) or None)
            settings = demo_settings()
            if port is not None and settings.get("demo_port") != str(port):
                log.info("the demo's buses now point at ports %d and up", port + 1)
                repoint_demo_buses(port)
                settings = demo_settings()
            return settings
    log.info("creating the demo campus in %s", path)
    if state_file is not None and state_file.exists():
        log.info("a new demo campus: its simulator starts afresh (removing %s)", state_file)
        state_file.unlink()
    # the window signs in as the demo's administrator without a password; scripts may fix
    # one for the command line with VOLTKEEPER_PASSWORD
    create_demo_campus(path, port=DEFAULT_DEMO_PORT if port is None else port,
                       password=os.environ.get(PASSWORD_ENV) or None)
    return demo_settings()


# -- the record of the running demo simulator ----------------------------------------------------
def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _is_simulator(pid: int, state_file: Path | None) -> bool:
    """True when ``pid`` is alive and (where /proc tells) ``main.py simulate`` on our state."""
    if not _alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc here: alive is all we can tell
    words = [a.decode("utf-8", "replace") for a in argv]
    return "simulate" in words and (state_file is None or str(state_file) in words)


@dataclass
class Running:
    """What ``demo-sim.pid`` says."""

    pid: int
    settings: dict[str, str]
    endpoints: list[str]
    users: list[int] = field(default_factory=list)

    def live_users(self) -> list[int]:
        return [u for u in self.users if _alive(u)]

    def serves(self, settings: dict[str, str]) -> bool:
        return all(self.settings.get(k) == settings.get(k) for k in SERVED_SETTINGS)

    def describe(self) -> str:
        first = int(self.settings.get("demo_port", DEFAULT_DEMO_PORT))
        return _("process {pid}, ports {first}..{last}").format(
            pid=self.pid, first=first + 1, last=first + int(self.settings.get("demo_buses", 1)))


def read_running(pid_file: Path, state_file: Path | None) -> Running | None:
    """The demo simulator that runs, or None (a stale record is removed)."""
    try:
        data = json.loads(pid_file.read_text(encoding="utf-8"))
        running = Running(int(data["pid"]), {str(k): str(v) for k, v in data["settings"].items()},
                          [str(e) for e in data["endpoints"]], [int(u) for u in data["users"]])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignoring a damaged %s", pid_file)
        with contextlib.suppress(OSError):
            pid_file.unlink()
        return None
    if not _is_simulator(running.pid, state_file):
        with contextlib.suppress(OSError):
            pid_file.unlink()
        return None
    return running


def write_running(pid_file: Path, running: Running) -> None:
    tmp = pid_file.with_name(pid_file.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"pid": running.pid, "settings": running.settings,
                               "endpoints": running.endpoints, "users": running.users}),
                   encoding="utf-8")
    os.replace(tmp, pid_file)


@contextlib.contextmanager
def demo_lock(path: Path) -> Iterator[None]:
    """One demo window at a time starts, joins or stops the demo's simulator."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; windows rarely start together
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _answers(host: str, port: int) -> bool:
    """True when something accepts connections at ``host``:``port``."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _terminate(pid: int, timeout_s: float = _STOP_TIMEOUT_S) -> None:
    """SIGTERM a process that is not our child and wait for it to go."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        log.warning("the demo simulator (process %d) did not stop; killing it", pid)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


class SimulatorProcess:
    """``main.py simulate`` with the demo database's flags, as a child process; or the one
    another demo window started, joined (``state_file``/``pid_file`` given: see the module)."""

    def __init__(self, demo: dict[str, str], key_file: Path, state_file: Path | None = None,
                 pid_file: Path | None = None, log_file: Path | None = None) -> None:
        self.settings = {k: demo[k] for k in SERVED_SETTINGS if k in demo}
        self.buses = int(demo.get("demo_buses", 12))
        self.port = int(demo.get("demo_port", DEFAULT_DEMO_PORT))
        self.host = demo.get("demo_host", "127.0.0.1")
        self.args = [
            sys.executable, str(MAIN), "simulate",
            "--buses", str(self.buses), "--meters", demo.get("demo_meters", "27"),
            "--port", str(self.port), "--host", self.host,
            "--transport", demo.get("demo_transport", "tcp"),
            "--profile", demo.get("demo_profile", "acrel-ddsy1352"),
            "--seed", demo.get("demo_seed", "1"), "--key-file", str(key_file),
        ]
        if state_file is not None:
            self.args += ["--state", str(state_file)]
        self.state_file = state_file
        self.pid_file = pid_file
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoints: list[str] = []
        self.joined: int | None = None  # the pid of a simulator this window joined

    @property
    def _lock_file(self) -> Path | None:
        return None if self.pid_file is None else self.pid_file.with_suffix(".lock")

    # -- starting ------------------------------------------------------------------------
    def join(self, running: Running) -> None:
        """Use ``running`` (another window's) and count this window among its users."""
        self.joined = running.pid
        self.endpoints = list(running.endpoints)
        running.users = [*running.live_users(), os.getpid()]
        if self.pid_file is not None:
            write_running(self.pid_file, running)
        log.info("joining the demo simulator that runs (%s)", running.describe())

    def start(self, timeout_s: float = 20.0) -> bool:
        """Start it and wait until every bus listens. False if it could not (ports taken by
        another program, say): the window opens anyway and shows the buses down."""
        log.info("starting the simulator: %s", " ".join(self.args[1:]))
        log_path = self.log_file
        if log_path is None:
            from app.paths import log_dir

            log_path = log_dir() / "demo-simulator.log"
        out = open(log_path, "wb")  # the child keeps writing it after we close ours
        try:
            # its own session: Ctrl+C in the terminal reaches the window, which stops polling
            # first and then stops the simulator (not both at once); and it may outlive this
            # window while another demo window uses it. Its output goes to a file, not a pipe
            # that would break when this window closes first.
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        finally:
            out.close()
        try:
            lines = self._wait_listening(log_path, timeout_s)
        except BaseException:  # Ctrl+C while it starts: it goes too, not left behind
            self._stop_child()
            self.proc = None
            raise
        started = len(self.endpoints) >= self.buses
        if not started:
            tail = " | ".join(line for line in lines[-3:] if line)
            log.warning("the simulator did not start every bus (%d of %d): %s",
                        len(self.endpoints), self.buses, tail or _("no output"))
            if self.proc.poll() is not None:
                self.proc = None
                return False
            # still starting (a slow machine): it is this window's all the same
        if self.pid_file is not None:
            write_running(self.pid_file, Running(self.proc.pid, dict(self.settings),
                                                 list(self.endpoints), [os.getpid()]))
        return started

    def _wait_listening(self, log_path: Path, timeout_s: float) -> list[str]:
        """Read the simulator's output until every bus listens, it exits, or time is up."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        lines: list[str] = []
        pending = b""
        with open(log_path, "rb") as f:
            while len(self.endpoints) < self.buses:
                chunk = f.read()
                if chunk:
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for raw in complete:
                        line = raw.decode("utf-8", "replace").rstrip()
                        lines.append(line)
                        log.info("simulator: %s", line)
                        if " listening on " in line:
                            self.endpoints.append(
                                line.split(" listening on ", 1)[1].split(" ", 1)[0])
                    continue
                if self.proc.poll() is not None:
                    if pending:
                        lines.append(pending.decode("utf-8", "replace").rstrip())
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        return lines

    # -- stopping ------------------------------------------------------------------------
    def stop(self) -> None:
        """This window is done with the simulator: stop it unless another window still uses
        it (the last one out stops it)."""
        lock = self._lock_file
        with demo_lock(lock) if lock is not None else contextlib.nullcontext():
            running = None
            if self.pid_file is not None:
                running = read_running(self.pid_file, self.state_file)
            if running is not None:
                others = [u for u in running.live_users() if u != os.getpid()]
                if others:
                    running.users = others
                    write_running(self.pid_file, running)  # type: ignore[arg-type]
                    log.info("leaving the demo simulator running for the other demo window "
                             "(process %s)", ", ".join(map(str, others)))
                    return
            if self.proc is not None and self.proc.poll() is None:
                self._stop_child()
            elif running is not None and self.joined == running.pid:
                _terminate(running.pid)
            if running is not None and self.pid_file is not None:
                with contextlib.suppress(OSError):
                    self.pid_file.unlink()

    def _stop_child(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _stop_unused(running: Running, pid_file: Path) -> None:
    """Stop a demo simulator no window uses (left by a window that was killed); the caller
    goes on without it (this returns None for ``running = _stop_unused(...)``)."""
    log.info("stopping the demo simulator nobody uses (%s)", running.describe())
    _terminate(running.pid)
    pid_file.unlink(missing_ok=True)


@dataclass
class Demo:
    """The demo as a window uses it: its database and its simulator."""

    db_path: Path
    settings: dict[str, str]
    simulator: SimulatorProcess

    def close(self) -> None:
        self.simulator.stop()


def open_demo(port: int | None = None, start_timeout_s: float = 20.0) -> Demo:
    """The demo database (made once; ``port`` re-points it) and its simulator running: started
    here, or joined when another demo window runs it. UserFacingError when a running demo
    serves other ports or another campus, and another window still uses it."""
    from app.paths import default_key_file, demo_db, demo_pid_file, demo_state_file, log_dir

    if port is not None and not 0 < port <= 65535 - 999:  # bus k listens on port + k
        raise UserFacingError(_("--port {port} is not a port the demo can use (1..64536)")
                              .format(port=port))
    db_path, pid_file, state_file = demo_db(), demo_pid_file(), demo_state_file()
    with demo_lock(pid_file.with_suffix(".lock")):
        running = read_running(pid_file, state_file)
        if running is not None and port is not None \
                and running.settings.get("demo_port") != str(port):
            if running.live_users():
                raise UserFacingError(_(
                    "the demo runs already with its simulator on other ports ({running}); close "
                    "its window first, or start without --port to join it")
                    .format(running=running.describe()))
            running = _stop_unused(running, pid_file)
        if running is not None and not db_path.exists():  # the demo was removed to start over
            if running.live_users():
                raise UserFacingError(_(
                    "a demo window still uses the demo simulator ({running}) whose database "
                    "{path} is gone; close that window first").format(
                    running=running.describe(), path=db_path))
            running = _stop_unused(running, pid_file)
        settings = ensure_demo_database(db_path, port=port, state_file=state_file)
        simulator = SimulatorProcess(settings, default_key_file(), state_file=state_file,
                                     pid_file=pid_file,
                                     log_file=log_dir() / "demo-simulator.log")
        if running is not None and not running.serves(simulator.settings):
            if running.live_users():
                raise UserFacingError(_(
                    "a demo simulator for another campus runs ({running}); close the demo "
                    "window using it first").format(running=running.describe()))
            running = _stop_unused(running, pid_file)
        if running is not None:
            simulator.join(running)
        elif not simulator.start(start_timeout_s):
            first, last = simulator.port + 1, simulator.port + simulator.buses
            if _answers(simulator.host, first):
                log.warning("the demo's simulator could not listen on ports %d..%d: something "
                            "answers there already (a simulator started by hand?); the window "
                            "polls it, but the demo keeps no memory of its meters. Choose "
                            "other ports with --demo --port P", first, last)
            else:
                log.warning("the demo's simulator could not start; the window shows its buses "
                            "down (see %s)", simulator.log_file)
    return Demo(db_path, settings, simulator)
