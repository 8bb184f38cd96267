"""Facts a process publishes in the database's ``Meta`` table for other processes to find
(``frames.endpoint``: where the polling process serves its bus frames)."""

from __future__ import annotations

from app.storage.models import Meta, database


def get(key: str) -> str | None:
    row = Meta.get_or_none(Meta.key == key)
    return None if row is None else row.value


def put(key: str, value: str) -> None:
    with database.atomic():
        Meta.insert(key=key, value=value).on_conflict_replace().execute()


def withdraw(key: str, value: str) -> None:
    """Remove ``key`` if it still says ``value`` (another process may have replaced it)."""
    with database.atomic():
        Meta.delete().where((Meta.key == key) & (Meta.value == value)).execute()
