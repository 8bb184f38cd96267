"""Writing texts: one per event and per phone of the room's current occupants, the text rendered
with the room, the balance and the days it lasts; low-balance levels texted once per crossing
and re-armed by a recharge; the days a balance lasts; the log the operator reads."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.core import low_balance, sms_outbox
from app.core.balance_days import days_left, recent_daily_wh
from app.core.recharge import recharge
from app.core.sms_outbox import notify, sms_log
from app.storage import campus, ledger
from app.storage import sms as store
from app.storage.db import open_database
from app.storage.models import Occupant, database
from tests.helpers import operator
from tests.sms_helpers import ADMIN, NUMBER, sms_room, sms_settings

OTHER = "+8613900139000"


@pytest.fixture
def db(tmp_path):
    d = open_database(tmp_path / "sms.db")
    sms_settings(sender="modem", lang="zh_CN")
    yield d
    d.close()


def _spend(acct: int, cents: int) -> None:
    ledger.post("consumption", [("prepaid", acct, cents), ("revenue:electricity", None, -cents)],
                operator="billing", account_id=acct)


def test_notify_writes_one_text_per_current_phone_once_per_event(db):
    acct, room, _meter = sms_room(phones=(NUMBER, OTHER, f" {NUMBER[:6]} {NUMBER[6:]} ", ""))
    gone = campus.add_occupant(room, "moved out", phone="+8613700137000")
    Occupant.update(moved_out=1.0).where(Occupant.id == gone).execute()
    assert notify("trip_arrears", acct, event="hold:7") == 2
    assert notify("trip_arrears", acct, event="hold:7") == 0  # the same event: nothing more
    rows = store.messages()
    assert sorted(r.phone for r in rows) == sorted([NUMBER, OTHER])
    assert {r.state for r in rows} == {"pending"} and {r.event for r in rows} == {"hold:7"}
    assert rows[0].text.startswith("【断电通知】1-101室因欠费已断电（余额25.00元）")
    assert notify("trip_arrears", acct, event="hold:8") == 2  # another trip: texted again
    assert notify("trip_power_limit", acct, event="hold:8") == 0  # one text per event


def test_notify_works_inside_the_callers_transaction_and_goes_with_it(db):
    acct, _room, _meter = sms_room()
    with pytest.raises(RuntimeError), database.atomic():
        assert notify("trip_operator", acct, event="hold:1") == 1
        raise RuntimeError("the trip failed")
    assert store.messages() == []
    with database.atomic():
        assert notify("trip_operator", acct, event="hold:1") == 1
    assert len(store.messages()) == 1


def test_notify_with_sms_off_or_a_bad_number_writes_skipped_rows(db):
    acct, _room, _meter = sms_room(phones=(NUMBER, "call the office"))
    sms_settings(sender="none")
    assert notify("low_balance_1", acct, event="low_balance:1") == 2
    reasons = {r.phone: (r.state, r.last_error) for r in store.messages()}
    assert reasons[NUMBER] == ("skipped", "texts are off (sms.sender is none)")
    assert reasons["calltheoffice"] == ("skipped", "not a phone number")


def test_an_unknown_kind_texts_nothing_and_never_raises(db):
    acct, _room, _meter = sms_room()
    assert notify("trip_keep_dancing", acct, event="hold:1") == 0
    assert notify("trip_arrears", 9999, event="hold:1") == 0


def test_the_days_a_balance_lasts(db):
    # 2 kWh a day at 0.50 yuan: 1.00 yuan a day
    acct, _room, meter = sms_room(balance_cents=25_00, daily_wh=2_000, price="0.50")
    assert recent_daily_wh([meter]) == 2_000
    assert days_left(acct, 25_00) == 25
    assert days_left(acct, 99) == 0 and days_left(acct, -5_00) == 0
    assert days_left(acct, 12_50) == 12  # rounded down
    # only whole days count, and only those with a total: today's running use is left out
    assert recent_daily_wh([meter], date.today() + timedelta(days=8)) is None
    sms_settings(lang="en")
    notify("low_balance_1", acct, event="low_balance:1", params={"balance_cents": 15_00})
    assert "15.00 yuan left, about 15 days" in store.messages()[0].text


def test_days_are_unknown_without_use(db):
    acct, _room, _meter = sms_room(daily_wh=None)
    assert days_left(acct, 25_00) is None
    notify("low_balance_1", acct, event="low_balance:1")
    assert "约可用-天" in store.messages()[0].text


def test_low_balance_levels_are_texted_once_per_crossing_and_rearmed_by_a_recharge(db):
    acct, _room, _meter = sms_room(balance_cents=25_00)

    def texts():
        return [(r.event.split(":")[0], r.text[:6]) for r in reversed(store.messages())]

    assert low_balance.check() == 0 and texts() == []
    _spend(acct, 10_00)  # 15.00: level 1
    assert low_balance.check() == 1
    assert low_balance.check() == 0  # a second billing run: no second text
    assert len(store.messages()) == 1
    assert "15.00元" in store.messages()[0].text and "约可用15天" in store.messages()[0].text
    _spend(acct, 12_00)  # 3.00: level 2
    low_balance.check()
    _spend(acct, 3_50)  # -0.50: arrears, level 3
    low_balance.check()
    low_balance.check()
    kinds = [r.text for r in reversed(store.messages())]
    assert len(kinds) == 3
    assert "余额仅剩3.00元" in kinds[1] and "余额-0.50元" in kinds[2]
    recharge(operator("cashier", "alice"), acct, 50_00, "cash")  # 49.50: re-armed
    assert low_balance.check() == 0 and len(store.messages()) == 3
    _spend(acct, 40_00)  # 9.50: level 1 again, a new crossing, a new text
    assert low_balance.check() == 1
    rows = list(reversed(store.messages()))
    assert len(rows) == 4 and "9.50元" in rows[3].text
    assert len({r.event for r in rows}) == 4  # one event per crossing


def test_the_log_is_for_viewers_and_filters_by_state(db):
    acct, _room, _meter = sms_room(phones=(NUMBER, OTHER))
    notify("trip_schedule", acct, event="hold:3")
    mid = store.messages()[0].id
    with database.atomic():
        store.mark(mid, "failed", "+CMS ERROR: 330")
    rows = sms_log(operator("viewer", "v"))
    assert {r["room"] for r in rows} == {"1-101"} and len(rows) == 2
    assert set(rows[0]) == {"id", "created_at", "room", "phone", "event", "state", "attempts",
                            "error", "sent_at", "sender", "parts", "text"}
    failed = sms_log(ADMIN, state="failed")
    assert [(r["id"], r["error"]) for r in failed] == [(mid, "+CMS ERROR: 330")]
    assert sms_outbox.mask_phone(NUMBER) == "+86138****8000"
    assert sms_outbox.state_text("pending") == "waiting"
