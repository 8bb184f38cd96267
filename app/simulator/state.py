"""``simulate --state FILE``: the meters' memory across restarts, as a real meter's survives a
power cut.

A real prepaid meter keeps its money, energy registers, purchase count, relay state (and why it
is open), control mode, the settings written to it and its breach count in non-volatile memory.
A simulator that forgot them at every restart would put the meters out of step with the
station's books: money recharged gone, a tripped room powered again, energy registers going
back (counter resets). So the campus's state is kept in one JSON file:

```
{"format": "voltkeeper-simulator-state", "version": 1, "saved_at": <wall clock, epoch s>,
 "campus": {"buses": 12, "meters": 27, "profile": "acrel-ddsy1352", "seed": 1},
 "sim_time": <meter time when saved, epoch s>,
 "meters": {"1.1": {<SimMeter.memory()>}, ...}}
```

- Read at start. A missing file starts the seed's fresh meters (and is written from then on).
  A file that cannot be read, is not this format, or belongs to another campus (bus or meter
  count, profile, seed) is refused with one line, and the simulator does not start: silently
  starting fresh is exactly what puts meters and books out of step. Remove the file (or give
  another) to start afresh.
- Meter time resumes at the later of the saved meter time and the clock's start (``--start``,
  or now): it never runs backwards, and the time the simulator was down passed as a power cut
  (no energy used). Serials and keys come from the seed and the master key, as before.
- Written atomically (a temporary file, fsync, ``os.replace``): soon after the station writes
  to a meter (a token, a control, a setting), every few seconds while meters change, and at the
  end (SIGTERM, SIGINT, SIGHUP), when every meter is brought up to the moment it stops. A
  simulator killed outright (SIGKILL) loses at most the last moments before the kill.
- One simulator per file: a second one is refused while the first holds ``FILE.lock``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from app.i18n import _
from app.simulator.campus import SimCampus
from app.simulator.meter import check_memory

log = logging.getLogger("voltkeeper.simulator.state")

FORMAT = "voltkeeper-simulator-state"
VERSION = 1
#: How often the keeper looks; a write by the station is saved at the next look.
TICK_S = 0.25
#: How often the state is saved while meters only change with time and reads.
SAVE_EVERY_S = 5.0


class StateFileError(Exception):
    """The state file cannot be used; the message (one line) says which file and why."""


# -- values written to a meter (``extra``): JSON keeps their type --------------------------------
def _encode_value(value: object) -> object:
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, str):
        return {"str": value}
    raise TypeError(f"cannot save a {type(value).__name__}")


def _decode_value(data: object) -> object:
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    if isinstance(data, dict) and len(data) == 1:
        (kind, text), = data.items()
        try:
            if kind == "bool" and isinstance(text, bool):
                return text
            if kind == "float" and isinstance(text, str):
                return float(text)
            if kind == "decimal" and isinstance(text, str):
                return Decimal(text)
            if kind == "bytes" and isinstance(text, str):
                return base64.b64decode(text, validate=True)
            if kind == "str" and isinstance(text, str):
                return text
        except (ValueError, InvalidOperation):
            pass
    raise ValueError("bad 'extra'")


# -- the file --------------------------------------------------------------------------------
def campus_identity(campus: SimCampus) -> dict[str, Any]:
    """What a state file must match to be this campus's."""
    return {"buses": len(campus.bus_numbers), "meters": campus.meters_per_bus,
            "profile": campus.profile.name, "seed": campus.seed}


def capture(campus: SimCampus, sync: bool = False) -> dict[str, Any]:
    """The campus's state as the file holds it. ``sync`` brings every meter up to the clock's
    now first (at the end: what the meters used up to the power cut); otherwise each meter is
    as it was when last read or written."""
    with campus.lock:
        if sync:
            for bus in campus.bus_numbers:
                for meter in campus.meters_on(bus).values():
                    meter.sync()
        meters = {}
        for bus in campus.bus_numbers:
            for unit, meter in campus.meters_on(bus).items():
                memory = meter.memory()
                memory["extra"] = {k: _encode_value(v) for k, v in memory["extra"].items()}
                meters[f"{bus}.{unit}"] = memory
        sim_time = campus.clock.now()
    return {"format": FORMAT, "version": VERSION, "saved_at": time.time(),
            "campus": campus_identity(campus), "sim_time": sim_time, "meters": meters}


def write_state(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new, whole."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError, AttributeError):  # the rename itself, where possible
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_state(path: Path) -> dict[str, Any] | None:
    """The file's data, or None when there is no file. StateFileError when it is unreadable or
    not a simulator state file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateFileError(_("state file {path} cannot be read: {error}")
                             .format(path=path, error=getattr(exc, "strerror", None) or exc)
                             ) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise StateFileError(_("state file {path} is damaged (not JSON); remove it to start "
                               "the meters afresh").format(path=path)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StateFileError(_("{path} is not a simulator state file").format(path=path))
    if data.get("version") != VERSION:
        raise StateFileError(_("state file {path} has version {version}; this simulator "
                               "reads version {supported}").format(
            path=path, version=data.get("version"), supported=VERSION))
    return data


def _describe(identity: Mapping[str, Any]) -> str:
    """A campus as the flags that make it."""
    return "--buses {buses} --meters {meters} --profile {profile} --seed {seed}".format(
        buses=identity.get("buses"), meters=identity.get("meters"),
        profile=identity.get("profile"), seed=identity.get("seed"))


def restore(campus: SimCampus, data: Mapping[str, Any], path: Path) -> None:
    """Give every meter of ``campus`` its saved memory; meter time resumes at the later of the
    saved time and the clock's now. StateFileError (changing nothing) when ``data`` is another
    campus's or malformed."""
    mine = campus_identity(campus)
    theirs = data.get("campus")
    if not isinstance(theirs, dict) or any(theirs.get(k) != v for k, v in mine.items()):
        raise StateFileError(_(
            "state file {path} holds another campus ({theirs}), not this one ({mine}); remove "
            "it or give another --state").format(path=path, theirs=_describe(theirs or {}),
                                      mine=_describe(mine)))
    meters = data.get("meters")
    sim_time = data.get("sim_time")
    if not isinstance(meters, dict) or not isinstance(sim_time, (int, float)) \
            or isinstance(sim_time, bool):
        raise StateFileError(_("state file {path} is damaged: {why}").format(
            path=path, why=_("no meters or no meter time")))
    decoded: dict[str, dict[str, Any]] = {}
    for bus in campus.bus_numbers:
        for unit in campus.meters_on(bus):
            key = f"{bus}.{unit}"
            memory = meters.get(key)
            try:
                if not isinstance(memory, dict):
                    raise ValueError("missing")
                extra = memory.get("extra")
                if not isinstance(extra, dict):
                    raise ValueError("bad 'extra'")
                decoded[key] = {**memory,
                                "extra": {k: _decode_value(v) for k, v in extra.items()}}
                check_memory(decoded[key], campus.profile)
            except ValueError as exc:
                raise StateFileError(_("state file {path} is damaged: meter {meter}: {why}")
                                     .format(path=path, meter=key, why=exc)) from None
    with campus.lock:
        now = campus.clock.now()
        if sim_time > now:
            campus.clock.advance(sim_time - now)
        resume = campus.clock.now()
        for bus in campus.bus_numbers:
            for unit, meter in campus.meters_on(bus).items():
                meter.restore(decoded[f"{bus}.{unit}"], resume)


class StateKeeper:
    """Keeps ``campus``'s state in ``path``: :meth:`load` at start, :meth:`run` while serving,
    :meth:`save` with ``final=True`` at the end."""

    def __init__(self, campus: SimCampus, path: Path) -> None:
        self.campus = campus
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_fd: int | None = None
        self._write_lock = threading.Lock()
        self._seq = 0
        self._written_seq = 0
        self._saved_version = -1
        self._saved_writes = -1
        self._saved_at = 0.0
        self._last_error = ""

    # -- at start --------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the file for this process. StateFileError when another simulator keeps it or
        its folder cannot be made."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateFileError(_("cannot keep the state in {path}: {error}").format(
                path=self.path, error=exc.strerror or exc)) from None
        try:
            import fcntl
        except ImportError:  # no advisory locks here (Windows): trust the user
            self._lock_fd = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise StateFileError(_("another simulator (process {pid}) keeps {path}; stop it "
                                   "first or give another --state").format(
                pid=other, path=self.path)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # closing drops the lock
            self._lock_fd = None

    def load(self) -> bool:
        """Restore the saved state: True if there was one, False for a fresh campus."""
        data = read_state(self.path)
        if data is None:
            return False
        restore(self.campus, data, self.path)
        self._mark_saved()
        return True

    # -- while serving -------------------------------------------------------------------
    def _versions(self) -> tuple[int, int]:
        version = writes = 0
        for bus in self.campus.bus_numbers:
            for meter in self.campus.meters_on(bus).values():
                version += meter.version
                writes += meter.writes
        return version, writes

    def _mark_saved(self) -> None:
        self._saved_version, self._saved_writes = self._versions()
        self._saved_at = time.monotonic()

    def due(self) -> bool:
        """True when something changed: a write since the last save (at once), or the meters'
        time and readings (every SAVE_EVERY_S)."""
        version, writes = self._versions()
        if writes != self._saved_writes:
            return True
        return version != self._saved_version and (
            time.monotonic() - self._saved_at >= SAVE_EVERY_S)

    def _take(self, final: bool) -> tuple[int, dict[str, Any]]:
        with self.campus.lock:
            data = capture(self.campus, sync=final)
            self._mark_saved()
            self._seq += 1
            return self._seq, data

    def _write(self, seq: int, data: Mapping[str, Any]) -> bool:
        """Write a capture unless a newer one is on disk already. False on failure (warned
        once per distinct error; the next save tries again)."""
        with self._write_lock:
            if seq <= self._written_seq:
                return True
            try:
                write_state(self.path, data)
            except OSError as exc:
                message = _("simulate: cannot save the meters' state to {path}: {error}").format(
                    path=self.path, error=exc.strerror or exc)
                if message != self._last_error:
                    print(message, file=sys.stderr, flush=True)
                    self._last_error = message
                self._saved_writes = -1  # try again at the next look
                return False
            self._written_seq = seq
            self._last_error = ""
            return True

    def save(self, final: bool = False) -> bool:
        """Save now (``final``: every meter brought up to now first). True when written."""
        return self._write(*self._take(final))

    async def run(self) -> None:
        """Save whenever :meth:`due`, until cancelled; the file is written off the loop."""
        while True:
            await asyncio.sleep(TICK_S)
            if self.due():
                seq, data = self._take(final=False)
                await asyncio.to_thread(self._write, seq, data)
