"""Residents' sign-in, sessions, what they see and their requests (core/residents), on a real
SQLite file with a demo campus."""

from __future__ import annotations

import pytest

from app.core import residents
from app.core.operators import PermissionDenied
from app.storage.models import AuditEntry, ResidentLogin
from tests.helpers import operator
from tests.portal.conftest import CASHIER, demo  # noqa: F401  (the fixture)

T0 = 1_900_000_000.0


def _kinds() -> list[str]:
    return [e.kind for e in AuditEntry.select().order_by(AuditEntry.id)]


def test_initial_password_is_hashed_role_checked_and_audited(demo):  # noqa: F811
    login = ResidentLogin.get(ResidentLogin.occupant == demo.a.occupant_id)
    assert demo.a.password not in login.password_hash and login.password_hash.startswith("scrypt$")
    assert login.must_change
    with pytest.raises(PermissionDenied):
        residents.issue_initial_password(operator("viewer"), demo.a.occupant_id)
    assert _kinds()[-1] == "denied"
    new = residents.issue_initial_password(CASHIER, demo.a.occupant_id)
    assert new != demo.a.password and _kinds()[-1] == "resident_password"


def test_sign_in_same_refusal_for_every_wrong_part(demo):  # noqa: F811
    a, b = demo.a, demo.b
    texts = set()
    for room, no, pw in [("nope", a.person_no, a.password), (a.code, b.person_no, a.password),
                         (a.code, a.person_no, "wrong!!"), (a.code, "", a.password)]:
        with pytest.raises(residents.SignInRefused) as e:
            residents.sign_in(room, no, pw, client="1.2.3.4", now=T0)
        texts.add(str(e.value))
    assert len(texts) == 1
    r = residents.sign_in(a.code, a.person_no, a.password, client="1.2.3.4", now=T0)
    assert (r.node_id, r.occupant_id, r.must_change) == (a.node_id, a.occupant_id, True)
    assert _kinds().count("resident_sign_in_failed") == 4 and _kinds()[-1] == "resident_sign_in"
    assert a.password not in "".join(e.detail for e in AuditEntry.select())


def test_room_lock_and_client_limit(demo):  # noqa: F811
    a = demo.a
    for k in range(residents.ROOM_FAILURES):
        with pytest.raises(residents.SignInRefused):
            residents.sign_in(a.code, a.person_no, "bad-bad", client="c1", now=T0 + k)
    with pytest.raises(residents.SignInRefused, match="too many"):
        residents.sign_in(a.code, a.person_no, a.password, client="c2", now=T0 + 60)
    # locked for LOCK_S after the fifth failure, then open again
    assert residents.sign_in(a.code, a.person_no, a.password, client="c2",
                             now=T0 + 4 + residents.LOCK_S + 1).room == a.code
    # one client trying many rooms is paused after CLIENT_FAILURES failures
    t = T0 + 10_000
    for k in range(residents.CLIENT_FAILURES):
        with pytest.raises(residents.SignInRefused):
            residents.sign_in(f"x-{k}", "1", "bad-bad", client="c3", now=t + k)
    with pytest.raises(residents.SignInRefused, match="too many"):
        residents.sign_in(demo.b.code, demo.b.person_no, demo.b.password, client="c3",
                          now=t + 30)
    assert residents.sign_in(demo.b.code, demo.b.person_no, demo.b.password, client="c4",
                             now=t + 30).room == demo.b.code


def test_sessions_idle_and_end(demo):  # noqa: F811
    r = residents.sign_in(demo.a.code, demo.a.person_no, demo.a.password, now=T0)
    token = residents.start_session(r, now=T0)
    s = residents.session(token, idle_s=60, now=T0 + 50)
    assert s.resident.node_id == demo.a.node_id and residents.csrf_ok(s, s.csrf)
    assert not residents.csrf_ok(s, "") and not residents.csrf_ok(s, "x")
    assert residents.session(token, idle_s=60, now=T0 + 100) is not None  # touched at +50
    assert residents.session(token, idle_s=60, now=T0 + 200) is None
    assert residents.session(token, idle_s=60, now=T0 + 100) is None  # gone for good
    token = residents.start_session(r, now=T0)
    residents.end_session(token)
    assert residents.session(token, now=T0) is None
    assert residents.session("forged", now=T0) is None


def test_home_daily_ledger(demo):  # noqa: F811
    r = residents.sign_in(demo.a.code, demo.a.person_no, demo.a.password)
    h = residents.home(r)
    assert h.balance_cents == 12345 and h.power_off
    assert [x.reason for x in h.reasons] == ["power_limit"]
    days = residents.daily_use(r, 30)
    assert len(days) == 30 and days[-1][1] == 1000 and days[0][1] == 1029
    assert [x.amount_cents for x in residents.ledger_lines(r) if x.kind == "recharge"] == [12345]
    hb = residents.home(residents.sign_in(demo.b.code, demo.b.person_no, demo.b.password))
    assert hb.balance_cents == 999 and not hb.power_off


def test_schedule_reason_says_until_when(demo):  # noqa: F811
    from app.storage import holds

    holds.add_hold(demo.b.meter_id, "schedule", "lights-out", T0, None, "2026-12-03 06:30")
    r = residents.sign_in(demo.b.code, demo.b.person_no, demo.b.password)
    (reason,) = residents.home(r).reasons
    assert reason.until == "06:30" and "06:30" in reason.what_to_do


def test_requests_and_answers(demo):  # noqa: F811
    r = residents.sign_in(demo.a.code, demo.a.person_no, demo.a.password)
    with pytest.raises(residents.PortalError):
        residents.submit_request(r, "complaint", "x")
    with pytest.raises(residents.PortalError):
        residents.submit_request(r, "dispute", "   ")
    req = residents.submit_request(r, "dispute", "November's bill is too high")
    assert [q.id for q in residents.open_requests(CASHIER)] == [req.id]
    with pytest.raises(PermissionDenied):
        residents.answer_request(operator("viewer"), req.id, "no")
    done = residents.answer_request(CASHIER, req.id, "We checked: 3 kWh a day.")
    assert (done.state, done.answered_by) == ("answered", "desk")
    assert residents.open_requests(CASHIER) == []
    assert residents.requests_of(r)[0].answer == "We checked: 3 kWh a day."
    rb = residents.sign_in(demo.b.code, demo.b.person_no, demo.b.password)
    assert residents.requests_of(rb) == []
    assert "resident_request_answer" in _kinds()


def test_change_password(demo):  # noqa: F811
    r = residents.sign_in(demo.a.code, demo.a.person_no, demo.a.password)
    with pytest.raises(residents.PortalError):
        residents.change_password(r, "wrong", "long-enough-1")
    with pytest.raises(residents.PortalError):
        residents.change_password(r, demo.a.password, "short")
    with pytest.raises(residents.PortalError):
        residents.change_password(r, demo.a.password, demo.a.password)
    assert not residents.change_password(r, demo.a.password, "long-enough-1").must_change
    assert not residents.sign_in(demo.a.code, demo.a.person_no, "long-enough-1").must_change
