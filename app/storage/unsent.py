"""Readings the storage writer could not store yet: spill files and the writer's side note.

While the database cannot be written (locked past the busy timeout, disk full) the writer keeps
what the meters sent. Beyond its memory bound it spills merged batches to files in
``<db>.unsent/`` (one per spill, named by process and sequence, mode 0600), written back oldest
first. Spill files are the writing process's own: a process that died left them behind, and the
next one deletes them, because its energy accounting resumes from the register stored in the
database and books that energy itself (replaying them would count it twice).

The side note ``<db>-unsent.json`` says, for ``status`` and the window, since when and how much
the writer holds and why: the database itself is what cannot be written.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from pathlib import Path

log = logging.getLogger("voltkeeper.storage.unsent")


def spill_dir(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".unsent")


def note_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.stem + "-unsent.json")


def spill(db_path: Path, seq: int, batch: object) -> Path:
    """Write a batch to a spill file of this process; raises OSError when the disk refuses."""
    folder = spill_dir(db_path)
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{os.getpid()}-{seq:06d}.pickle"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(batch, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def load(path: Path) -> object:
    """A spill file this process wrote (never one found on disk: see ``discard_left``)."""
    with open(path, "rb") as f:
        return pickle.load(f)  # our own file, of this process, mode 0600


def discard_left(db_path: Path) -> int:
    """Delete spill files other processes left behind (see the module's note); returns how
    many. Also removes a side note nobody keeps up to date any more."""
    folder = spill_dir(db_path)
    gone = 0
    if folder.is_dir():
        mine = f"{os.getpid()}-"
        for path in folder.iterdir():
            if not path.name.startswith(mine):
                path.unlink(missing_ok=True)
                gone += 1
        if gone:
            log.warning("%d spill file(s) of an earlier process deleted: their energy is "
                        "booked again from the stored register", gone)
    clear_note(db_path)
    return gone


def write_note(db_path: Path, *, since: float, unsent: int, error: str) -> None:
    """Best effort: the disk may be what is full."""
    try:
        note_path(db_path).write_text(json.dumps(
            {"pid": os.getpid(), "since": since, "unsent": unsent, "error": error,
             "updated_at": time.time()}), encoding="utf-8")
    except OSError:
        pass


def read_note(db_path: Path) -> dict | None:
    """The writer's note, if one is there and readable."""
    try:
        data = json.loads(note_path(db_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def clear_note(db_path: Path) -> None:
    try:
        note_path(db_path).unlink(missing_ok=True)
    except OSError:
        pass
