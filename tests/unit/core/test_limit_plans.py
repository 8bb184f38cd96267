"""Selective limiting: a plan applied and undone leaves every limit as it was, on the station
(a room's rule, or none) and on the meters (each meter's own value before, written back; a
write not sent yet withdrawn); a tripping plan's rooms close when it is undone unless held
otherwise."""

from __future__ import annotations

import pytest

from app.core import accounts, limit_plans, power_limits, relay_holds
from app.errors import UserFacingError
from app.storage import campus
from app.storage import rules as rule_store
from app.storage.db import open_database
from app.storage.models import LatestReading, Outbox, RelayHold
from tests.helpers import operator

ADMIN = operator()


@pytest.fixture
def shops(tmp_path):
    db = open_database(tmp_path / "p.db")
    root = campus.add_node(None, "campus", "c")
    bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
    street = campus.add_node(root, "building", "商业街")
    rooms, meters = {}, {}
    for k, (code, group) in enumerate((("S-01", "shop"), ("S-02", "shop"), ("S-03", "shop"),
                                       ("D-01", "dorm")), start=1):
        node = campus.add_node(street, "shop" if group == "shop" else "room", code, code)
        meters[code] = campus.add_meter(bus, k, "acrel-ddsy1352", f"3100000000{k}", node)
        LatestReading.insert(meter=meters[code], read_at=0, control_mode="auto",
                             online=True).execute()
        accounts.open_account(ADMIN, node, tariff_group=group)
        rooms[code] = node
    yield rooms, meters
    db.close()


def _deliver(item_ids: set[int], meter_had: dict[int, int]) -> None:
    """The sender wrote these: each meter's value before is kept, as ``OutboxDelivery`` does."""
    for o in Outbox.select().where(Outbox.id.in_(item_ids)):
        Outbox.update(state="applied", previous=str(meter_had[o.meter_id])).where(
            Outbox.id == o.id).execute()


def test_a_limiting_plan_applied_and_undone_leaves_every_limit_as_it_was(shops):
    rooms, meters = shops
    power_limits.set_power_limit(ADMIN, [rooms["S-01"]], 6000)  # a rule of the station's
    power_limits.set_power_limit(ADMIN, [rooms["S-02"]], 1500)  # already below the plan's
    Outbox.update(state="applied", previous="8000").execute()  # those writes were sent
    rules_before = rule_store.power_limits()
    limit_plans.save_plan(ADMIN, "shortage", "limit", group="shop", limit_w=2000)
    assert limit_plans.apply_plan(ADMIN, "shortage") == 3
    assert rule_store.power_limits() == {rooms["S-01"]: 2000, rooms["S-02"]: 1500,
                                         rooms["S-03"]: 2000}  # never raised
    plan_writes = {o.id: o for o in Outbox.select().where(Outbox.state == "pending")}
    assert sorted((o.meter_id, o.amount_cents) for o in plan_writes.values()) == [
        (meters["S-01"], 2000), (meters["S-02"], 1500), (meters["S-03"], 2000)]
    # S-01 and S-02 took the write; S-03's meter was offline: its write still pending
    sent = {i for i, o in plan_writes.items() if o.meter_id != meters["S-03"]}
    _deliver(sent, {meters["S-01"]: 6000, meters["S-02"]: 1500})
    with pytest.raises(UserFacingError):
        limit_plans.apply_plan(ADMIN, "shortage")  # already in force
    limit_plans.undo_plan(ADMIN, "shortage")
    assert rule_store.power_limits() == rules_before  # S-03 had no rule: it has none again
    unsent = next(i for i in plan_writes if i not in sent)
    assert Outbox.get_by_id(unsent).state == "withdrawn"
    back = [(o.meter_id, o.amount_cents) for o in Outbox.select().where(
        Outbox.id > max(plan_writes)).order_by(Outbox.id)]
    assert back == [(meters["S-01"], 6000), (meters["S-02"], 1500)]
    assert rule_store.plan_named("shortage").applied_at is None
    # and it can be applied again
    assert limit_plans.apply_plan(ADMIN, "shortage") == 3


def test_a_tripping_plan_trips_the_group_and_undoing_it_closes_only_what_it_held(shops):
    _rooms, meters = shops
    relay_holds.hold([meters["S-02"]], "operator", source="warden")  # tripped by hand too
    limit_plans.save_plan(ADMIN, "cut shops", "trip", building="商业街")
    limit_plans.apply_plan(ADMIN, "cut shops")
    assert {h.meter_id for h in RelayHold.select().where(RelayHold.reason == "plan")} == \
        set(meters.values())
    Outbox.update(state="applied").execute()
    LatestReading.update(control_mode="forced_trip", read_at=1).execute()
    limit_plans.undo_plan(ADMIN, "cut shops")
    closed = {o.meter_id for o in Outbox.select().where(Outbox.action == "close")}
    assert closed == {meters["S-01"], meters["S-03"], meters["D-01"]}  # S-02: the warden's


def test_a_plan_needs_a_target_and_a_limit(shops):
    with pytest.raises(UserFacingError):
        limit_plans.save_plan(ADMIN, "x", "limit", group="shop")  # no limit
    with pytest.raises(UserFacingError):
        limit_plans.save_plan(ADMIN, "x", "limit", group="nobody", limit_w=100)
    with pytest.raises(UserFacingError):
        limit_plans.save_plan(ADMIN, "x", "trip")
    with pytest.raises(UserFacingError):
        limit_plans.undo_plan(ADMIN, "never")
