"""The station's database, as the front ends open it: checked, upgraded, bound for this
process; and the per-thread connection a worker gives back when it is done."""

from __future__ import annotations

from pathlib import Path

from app.core import commands
from app.storage import db, migrations


def open_station(path: Path | str, *, create: bool = True) -> None:
    """Open (create or upgrade) the station database at ``path`` for this process. A damaged
    file is refused with a message that says what to do. After an upgrade to signed commands,
    the commands queued before are signed here."""
    db.open_database(path, create=create)
    if migrations.upgraded_from is not None and 0 < migrations.upgraded_from < 5:
        commands.sign_rows_from_before_signing()


def database_file() -> Path | None:
    """The file of the station database this process has open."""
    return db.database_path()


def release_connection() -> None:
    """Close this thread's database connection (a worker thread that is done)."""
    db.close_database()
