"""What a correction may reverse: the books' own bookings, on an open account, of the room the
operator means; never money a meter already holds."""

from __future__ import annotations

import pytest

from app.core import accounts
from app.core.operators import Operator, Role
from app.core.recharge import recharge
from app.errors import UserFacingError
from app.storage import accounts as store
from app.storage import campus, ledger
from app.storage.db import close_database, open_database

FINANCE = Operator("li", Role.FINANCE)
DESK = Operator("desk", Role.CASHIER)
SYSTEM = Operator.system("test")


@pytest.fixture
def rooms(tmp_path):
    open_database(tmp_path / "c.db")
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    ids = {}
    for i, (code, mode) in enumerate((("1-101", "station"), ("1-102", "station"),
                                      ("1-103", "meter"))):
        node = campus.add_node(root, "room", code, code)
        campus.add_meter(bus, i + 1, "acrel-ddsy1352", f"31000000100{i}", node)
        ids[code] = accounts.open_account(SYSTEM, node, mode=mode,
                                          opening_cents=10_00).account.id
    yield ids
    close_database()


def test_a_booking_of_another_room_is_refused(rooms):
    paid = recharge(DESK, rooms["1-101"], 20_00, "cash")
    with pytest.raises(UserFacingError, match="is not one of 1-102's"):
        accounts.correct(FINANCE, paid.txn_id, "wrong room", account_id=rooms["1-102"])
    assert ledger.balance(rooms["1-101"]) == 30_00
    fixed = accounts.correct(FINANCE, paid.txn_id, "wrong room", account_id=rooms["1-101"])
    assert fixed.txn_id and ledger.balance(rooms["1-101"]) == 10_00


def test_money_the_meter_holds_is_not_reversed(rooms):
    paid = recharge(DESK, rooms["1-103"], 20_00, "cash")
    store.set_outbox_state(paid.outbox_id, "applied")
    with pytest.raises(UserFacingError, match="the meter keeps this account's money"):
        accounts.correct(FINANCE, paid.txn_id, "no")
    opening = next(t for t in ledger.txns(rooms["1-103"]) if t.kind == "opening")
    with pytest.raises(UserFacingError, match="the meter keeps this account's money"):
        accounts.correct(FINANCE, opening.id, "no")
    refused = recharge(DESK, rooms["1-103"], 5_00, "cash")
    store.set_outbox_state(refused.outbox_id, "failed")  # the meter refused the token
    accounts.correct(FINANCE, refused.txn_id, "the meter refused it: money back")
    assert ledger.balance(rooms["1-103"]) == 30_00


def test_a_closed_account_s_settlement_is_final(rooms):
    settled = accounts.settle_and_close(FINANCE, rooms["1-102"], "refund")
    with pytest.raises(UserFacingError, match="is closed"):
        accounts.correct(FINANCE, settled.txn_id, "undo")
