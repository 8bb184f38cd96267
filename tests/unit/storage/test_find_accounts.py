"""The account search: a contains-search for finding (``_``, ``%`` and ``\\`` are characters,
not LIKE's wildcards), an exact one for booking."""

from __future__ import annotations

import pytest

from app.core import accounts
from app.storage import campus
from app.storage.accounts import find_accounts
from app.storage.db import close_database, open_database
from tests.helpers import operator


@pytest.fixture
def rooms(tmp_path):
    open_database(tmp_path / "find.db")
    root = campus.add_node(None, "campus", "c")
    for code, name in [("2-105", "李_雷"), ("2-115", "韩梅梅"), ("A%1", "100%"),
                       ("B\\1", "王\\五")]:
        node = campus.add_node(root, "room", code, code)
        campus.add_occupant(node, name, f"no-{code}")
        accounts.open_account(operator(), node, mode="station")
    yield
    close_database()


def _rooms(text: str, **kw) -> list[str]:
    return [a.room for a in find_accounts(text, **kw)]


@pytest.mark.parametrize("text,found", [
    ("2-1_5", []),  # LIKE's _ matched 2-105 and 2-115
    ("2-1%", []),  # LIKE's % matched every 2-1..
    ("_", ["2-105"]),  # the occupant 李_雷: a literal underscore
    ("%", ["A%1"]),
    ("\\", ["B\\1"]),
    ("2-1", ["2-105", "2-115"]),  # finding: a part is enough
    ("梅", ["2-115"]),
])
def test_the_search_takes_the_text_literally(rooms, text, found):
    assert _rooms(text) == found


def test_peewee_contains_escapes_what_pow_does_not(rooms):
    # why: on SQLite ``**`` is a plain LIKE (the text's _ and % stay wildcards); ``contains``
    # escapes them (ESCAPE '\\')
    from app.storage.models import Node

    assert Node.select().where(Node.code ** "%2-1_5%").count() == 2
    assert Node.select().where(Node.code.contains("2-1_5")).count() == 0


@pytest.mark.parametrize("text,found", [
    ("2-105", ["2-105"]), ("2-10", []), ("李_雷", ["2-105"]), ("李", []),
    ("no-2-115", ["2-115"]), ("A0000001", ["2-105"]), ("A%1", ["A%1"]),
])
def test_exact_is_whole_room_number_name_or_student_number(rooms, text, found):
    assert _rooms(text, exact=True) == found
