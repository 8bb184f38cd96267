"""The residents' portal through FastAPI's TestClient on a real SQLite file (a demo campus)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.core import residents
from app.portal.app import create_app
from tests.portal.conftest import CASHIER

NEW_PASSWORD = "my-own-pass-7"


@pytest.fixture
def clock():
    now = [1_900_000_000.0]
    return now


def _client(demo, tmp_path, clock=None, kiosk=False) -> TestClient:
    app = create_app(demo.db, kiosk=kiosk, secret_file=tmp_path / "portal.secret",
                     **({"clock": lambda: clock[0]} if clock else {}))
    return TestClient(app, follow_redirects=False)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _sign_in(client, room, person_no, password):
    page = client.get("/signin")
    return client.post("/signin", data={"csrf": _csrf(page.text), "room": room,
                                        "person_no": person_no, "password": password})


def _ready(client, room):
    """Signed in as ``room``'s occupant, the initial password changed."""
    r = _sign_in(client, room.code, room.person_no, room.password)
    assert r.status_code == 303 and r.headers["location"] == "/password"
    page = client.get("/password")
    r = client.post("/password", data={"csrf": _csrf(page.text), "current": room.password,
                                       "new": NEW_PASSWORD, "again": NEW_PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/"
    return client


def test_wrong_sign_ins_get_one_answer(demo, tmp_path):
    c = _client(demo, tmp_path)
    a, b = demo.a, demo.b
    answers = [_sign_in(c, *args) for args in [
        ("9-999", a.person_no, a.password),        # unknown room
        (a.code, b.person_no, a.password),         # not this room's student
        (a.code, a.person_no, "wrong-password")]]  # wrong password
    assert {r.status_code for r in answers} == {401}
    errors = {re.search(r'class="error"[^>]*>([^<]*)<', r.text).group(1) for r in answers}
    assert errors == {residents.WRONG}
    assert "vk_session" not in c.cookies
    r = _sign_in(c, a.code, a.person_no, a.password)
    assert r.status_code == 303 and "vk_session" in r.cookies


def test_lockout_after_repeated_failures(demo, tmp_path, clock):
    c = _client(demo, tmp_path, clock)
    a = demo.a
    for _k in range(residents.ROOM_FAILURES):
        clock[0] += 10
        assert _sign_in(c, a.code, a.person_no, "nope-nope").status_code == 401
    clock[0] += 10
    r = _sign_in(c, a.code, a.person_no, a.password)  # right, but the room is locked
    assert r.status_code == 401 and "too many failed sign-ins" in r.text
    # an unknown room locks the same way (no enumeration by the lock)
    for _k in range(residents.ROOM_FAILURES):
        _sign_in(c, "7-777", "x", "nope-nope")
    assert "too many failed sign-ins" in _sign_in(c, "7-777", "x", "nope-nope").text
    clock[0] += residents.LOCK_S + 1
    assert _sign_in(c, a.code, a.person_no, a.password).status_code == 303


def test_first_sign_in_forces_a_password_change(demo, tmp_path):
    c = _client(demo, tmp_path)
    a = demo.a
    _sign_in(c, a.code, a.person_no, a.password)
    for path in ("/", "/daily", "/ledger", "/requests"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/password"
    page = c.get("/password")
    bad = c.post("/password", data={"csrf": _csrf(page.text), "current": a.password,
                                    "new": "abc", "again": "abc"})
    assert bad.status_code == 400 and "at least 6 characters" in bad.text
    r = c.post("/password", data={"csrf": _csrf(page.text), "current": a.password,
                                  "new": NEW_PASSWORD, "again": NEW_PASSWORD})
    assert r.headers["location"] == "/"
    assert c.get("/").status_code == 200
    c2 = _client(demo, tmp_path)
    assert _sign_in(c2, a.code, a.person_no, a.password).status_code == 401  # old one gone
    assert _sign_in(c2, a.code, a.person_no, NEW_PASSWORD).headers["location"] == "/"


def test_home_shows_balance_to_the_cent_and_why_power_is_off(demo, tmp_path):
    c = _ready(_client(demo, tmp_path), demo.a)
    html = c.get("/").text
    assert "¥123.45" in html
    assert "power limit" in html and "switch off the large appliance" in html
    assert "¥9.99" not in html  # room B's balance
    zh = c.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert 'lang="zh-CN"' in zh and "¥123.45" in zh


def test_daily_page_has_chart_and_table(demo, tmp_path):
    c = _ready(_client(demo, tmp_path), demo.a)
    html = c.get("/daily").text
    assert html.count("<rect ") == 30
    assert "<svg" in html and "<table>" in html
    assert "1.00" in html and "1.02" in html  # 1000 Wh today, 1029 Wh 29 days ago -> 1.03
    assert "77.78" not in html  # room B's day


def test_ledger_lines(demo, tmp_path):
    c = _ready(_client(demo, tmp_path), demo.a)
    html = c.get("/ledger").text
    assert "recharge" in html and "¥123.45" in html


def test_request_and_the_desks_answer(demo, tmp_path):
    c = _ready(_client(demo, tmp_path), demo.a)
    page = c.get("/requests")
    r = c.post("/requests", data={"csrf": _csrf(page.text), "kind": "repair",
                                  "text": "The socket <b>sparks</b>"})
    assert r.status_code == 303
    html = c.get("/requests").text
    assert "The socket &lt;b&gt;sparks&lt;/b&gt;" in html and "<b>sparks" not in html
    assert "waiting for an answer" in html
    (req,) = residents.open_requests(CASHIER)
    residents.answer_request(CASHIER, req.id, "An electrician comes tomorrow.")
    html = c.get("/requests").text
    assert "An electrician comes tomorrow." in html
    # room B sees none of it
    cb = _ready(_client(demo, tmp_path), demo.b)
    html_b = cb.get("/requests").text
    assert "sparks" not in html_b and "No requests yet." in html_b
    assert "¥123.45" not in cb.get("/").text and "¥9.99" in cb.get("/").text


def test_other_rooms_and_guessed_urls_give_nothing(demo, tmp_path):
    c = _ready(_client(demo, tmp_path), demo.a)
    for path in (f"/room/{demo.b.node_id}", f"/?room={demo.b.code}", f"/rooms/{demo.b.code}",
                 "/daily?node=" + str(demo.b.node_id), "/docs", "/openapi.json"):
        r = c.get(path)
        assert demo.b.code not in r.text and "¥9.99" not in r.text
        if "?" not in path:
            assert r.status_code == 404 and r.text == ""


def test_csrf_refused_without_token(demo, tmp_path):
    c = _ready(_client(demo, tmp_path), demo.a)
    r = c.post("/requests", data={"kind": "repair", "text": "x"})
    assert r.status_code == 403
    r = c.post("/requests", data={"kind": "repair", "text": "x", "csrf": "forged"})
    assert r.status_code == 403
    assert c.post("/signout", data={}).status_code == 403
    fresh = _client(demo, tmp_path)
    r = fresh.post("/signin", data={"room": demo.a.code, "person_no": demo.a.person_no,
                                    "password": NEW_PASSWORD})
    assert r.status_code == 403
    assert residents.requests_of(residents.Resident(demo.a.occupant_id, demo.a.node_id,
                                                    demo.a.code, "", False)) == []


def test_security_headers_and_cookie(demo, tmp_path):
    c = _client(demo, tmp_path)
    page = c.get("/signin")
    h = page.headers
    assert "script-src" not in h["content-security-policy"]  # default-src 'none': no scripts
    assert "default-src 'none'" in h["content-security-policy"]
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == "DENY"
    r = c.post("/signin", data={"csrf": _csrf(page.text), "room": demo.a.code,
                                "person_no": demo.a.person_no, "password": demo.a.password})
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")


def test_sign_out_ends_the_session(demo, tmp_path):
    c = _ready(_client(demo, tmp_path), demo.a)
    home = c.get("/")
    assert c.post("/signout", data={"csrf": _csrf(home.text)}).status_code == 303
    assert c.get("/").headers["location"] == "/signin"


def test_kiosk_allows_framing_and_resets_after_idle(demo, tmp_path, clock):
    c = _ready(_client(demo, tmp_path, clock, kiosk=True), demo.a)
    r = c.get("/")
    assert r.status_code == 200 and "x-frame-options" not in r.headers
    assert 'http-equiv="refresh" content="61;url=/"' in r.text
    assert 'class="kiosk"' in r.text
    clock[0] += 30
    assert c.get("/").status_code == 200  # used: the idle time starts again
    clock[0] += 61
    r = c.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/signin"


def test_kiosk_room_pad_edits_the_room_without_signing_in(demo, tmp_path, clock):
    c = _client(demo, tmp_path, clock, kiosk=True)
    page = c.get("/signin")
    assert 'name="pad" value="7"' in page.text
    r = c.post("/signin", data={"csrf": _csrf(page.text), "room": "1-10", "pad": "3",
                                "person_no": "2024", "password": ""})
    assert r.status_code == 200 and 'value="1-103"' in r.text and 'value="2024"' in r.text
    r = c.post("/signin", data={"csrf": _csrf(r.text), "room": "1-103", "pad": "back"})
    assert 'value="1-10"' in r.text
    from app.storage.models import SignInAttempt

    assert SignInAttempt.select().count() == 0  # the pad is not a sign-in attempt
    assert 'name="pad"' not in _client(demo, tmp_path).get("/signin").text  # phone: no pad
