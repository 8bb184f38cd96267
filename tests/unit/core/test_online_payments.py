"""Online payments on a real SQLite file, notifications signed by the provider simulator's own
keys: a paid notification books the desk's recharge once, everything else is refused and
alarmed and books nothing."""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.core import accounts, balances
from app.core import online_payments as op
from app.core.recharge import receipt_number, recharge
from app.errors import UserFacingError
from app.simulator.paysim import PaySim, serve_in_thread
from app.storage import accounts as store
from app.storage import campus, ledger
from app.storage.db import open_database
from app.storage.models import Alarm, AuditEntry, LedgerTxn
from tests.helpers import operator

ADMIN = operator()


@pytest.fixture
def db(tmp_path):
    d = open_database(tmp_path / "pay.db")
    yield d
    d.close()


@pytest.fixture
def sim(db, tmp_path):
    s = PaySim.beside(tmp_path / "pay.db")
    s.install(op.key_dir())
    return s


def _account(code="1-101", mode="station"):
    root = campus.add_node(None, "campus", f"c{code}")
    room = campus.add_node(root, "room", code, code)
    bus = campus.add_bus(f"B-{code}", "tcp://127.0.0.1:1")
    campus.add_meter(bus, 1, "acrel-ddsy1352", "310000001001", room)
    return accounts.open_account(ADMIN, room, mode=mode).account.id


def _recharges(acct):
    return [t for t in ledger.txns(acct) if t.kind == "recharge"]


def _alarms():
    return list(Alarm.select().where(Alarm.kind == "payment_refused"))


def test_keys_are_private_files_beside_the_database(sim, tmp_path):
    folder = tmp_path / "payment-keys"
    assert op.key_dir() == folder
    for path in [*folder.iterdir(), *sim.folder.iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o600, path
    sim.install(folder)  # again: the same keys
    with pytest.raises(UserFacingError, match="another provider's key"):
        PaySim(tmp_path / "other-sim").install(folder)
    os.chmod(folder / op.ALIPAY_PUBLIC_KEY, 0o644)
    acct = _account()
    order = op.create_order(acct, 1000, "alipay")
    answer, outcome = op.handle_alipay(sim.alipay(order.number, 1000).params)
    assert (answer, outcome.why) == ("failure", op.NOT_CONFIGURED)
    assert _recharges(acct) == []


def test_alipay_paid_books_once_and_a_replay_books_nothing(sim):
    acct = _account()
    before = balances.balance(acct)
    order = op.create_order(acct, 5000, "alipay")
    n = sim.alipay(order.number, 5000)
    answer, outcome = op.handle_alipay(n.params)
    assert (answer, outcome.verdict) == ("success", "paid")
    assert balances.balance(acct) == before + 5000
    (txn,) = _recharges(acct)
    assert txn.reference == f"alipay:{n.params['trade_no']}" and txn.operator == "portal"
    assert txn.method == "alipay" and txn.amount_cents == 5000
    paid = op.order(order.number)
    assert paid.state == "paid" and paid.provider_txn == n.params["trade_no"]
    assert paid.txn_id == txn.id
    # the same notification again (the provider retries): success, nothing booked, no alarm
    answer, outcome = op.handle_alipay(n.params)
    assert (answer, outcome.verdict) == ("success", "replay")
    assert balances.balance(acct) == before + 5000 and len(_recharges(acct)) == 1
    assert _alarms() == []
    # audited as the desk's recharge, by the portal
    entry = AuditEntry.select().where(AuditEntry.kind == "recharge").get()
    assert entry.operator == "portal"


@pytest.mark.parametrize("case", ["forged", "tampered", "unknown", "unpaid", "other_amount"])
def test_alipay_refusals_are_alarmed_and_book_nothing(sim, case):
    acct = _account()
    order = op.create_order(acct, 3000, "alipay")
    n = {"forged": lambda: sim.forged("alipay", order.number, 3000),
         "tampered": lambda: sim.tampered("alipay", order.number, 3000, 300000),
         "unknown": lambda: sim.alipay("VK-NO-SUCH-ORDER", 3000),
         "unpaid": lambda: sim.alipay(order.number, 3000, status="WAIT_BUYER_PAY"),
         "other_amount": lambda: sim.alipay(order.number, 2999)}[case]()
    answer, outcome = op.handle_alipay(n.params)
    assert answer == "failure" and outcome.verdict == "refused"
    assert outcome.why == {"forged": op.FORGED, "tampered": op.FORGED,
                           "unknown": op.UNKNOWN_ORDER, "unpaid": op.NOT_PAID,
                           "other_amount": op.OTHER_AMOUNT}[case]
    assert _recharges(acct) == [] and balances.balance(acct) == 0
    (alarm,) = _alarms()
    assert alarm.level == 2 and alarm.id == outcome.alarm_id
    assert op.order(order.number).state in ("created", "refused")


def test_wechat_paid_decrypts_the_resource_and_books_once(sim):
    acct = _account()
    order = op.create_order(acct, 1234, "wechat")
    n = sim.wechat(order.number, 1234)
    assert b"out_trade_no" not in n.body  # encrypted
    status, body, outcome = op.handle_wechat(n.headers, n.body)
    assert status in (200, 204) and outcome.verdict == "paid"
    assert body["code"] == "SUCCESS"
    (txn,) = _recharges(acct)
    assert txn.reference.startswith("wechat:4200") and txn.amount_cents == 1234
    assert balances.balance(acct) == 1234
    # header names as a server hands them over (any case); the replay books nothing
    lower = {k.lower(): v for k, v in n.headers.items()}
    status, body, outcome = op.handle_wechat(lower, n.body)
    assert status == 200 and outcome.verdict == "replay"
    assert balances.balance(acct) == 1234 and _alarms() == []


@pytest.mark.parametrize("case", ["forged", "tampered", "unknown_serial", "unpaid",
                                  "other_apiv3"])
def test_wechat_refusals(sim, case):
    acct = _account()
    order = op.create_order(acct, 800, "wechat")
    if case == "forged":
        n = sim.forged("wechat", order.number, 800)
    elif case == "tampered":
        n = sim.tampered("wechat", order.number, 800, 80000)
    elif case == "unknown_serial":
        n = sim.wechat(order.number, 800)
        n.headers["Wechatpay-Serial"] = "../../etc/passwd"
    elif case == "unpaid":
        n = sim.wechat(order.number, 800, state="NOTPAY")
    else:
        n = sim.wechat(order.number, 800, apiv3_key=b"x" * 32)
    status, body, outcome = op.handle_wechat(n.headers, n.body)
    assert 400 <= status < 600 and body["code"] == "FAIL" and body["message"]
    assert outcome.verdict == "refused" and outcome.alarm_id is not None
    assert _recharges(acct) == [] and balances.balance(acct) == 0


def test_meter_kept_account_gets_the_desks_receipt_and_token(sim):
    acct = _account("2-201", mode="meter")
    desk = recharge(operator("cashier", "alice"), acct, 1000, "cash")
    order = op.create_order(acct, 2000, "alipay")
    _answer, outcome = op.handle_alipay(sim.alipay(order.number, 2000).params)
    result = outcome.result
    assert result is not None and result.receipt_no == desk.receipt_no + 1
    assert receipt_number(result.receipt_no) == f"{desk.receipt_no + 1:06d}"
    item = store.outbox_item(result.outbox_id)
    assert item.action == "recharge" and item.amount_cents == 2000 and item.state == "pending"
    assert item.txn_id == result.txn_id == op.order(order.number).txn_id


def test_a_payment_booked_from_the_statement_first_is_not_booked_again(sim):
    acct = _account()
    order = op.create_order(acct, 600, "wechat")
    n = sim.wechat(order.number, 600, transaction_id="4200000000000000000000000001")
    recharge(ADMIN, acct, 600, "wechat", reference="4200000000000000000000000001")
    status, _body, outcome = op.handle_wechat(n.headers, n.body)
    assert status == 200 and outcome.verdict == "replay"
    assert len(_recharges(acct)) == 1 and balances.balance(acct) == 600
    assert op.order(order.number).state == "paid"


def test_create_order_validates_like_the_desk(db):
    acct = _account()
    for cents in (0, -5, None, 10.5, 10**9):
        with pytest.raises(UserFacingError):
            op.create_order(acct, cents, "alipay")
    with pytest.raises(UserFacingError):
        op.create_order(acct, 100, "unionpay")
    with pytest.raises(UserFacingError):
        op.create_order(acct + 99, 100, "alipay")
    a, b = op.create_order(acct, 100, "wechat"), op.create_order(acct, 100, "wechat")
    assert a.number != b.number and 6 <= len(a.number) <= 32 and a.state == "created"
    assert LedgerTxn.select().where(LedgerTxn.kind == "recharge").count() == 0


def test_simulator_posts_to_the_station_and_its_hand_over_page(sim):
    """The simulator's HTTP side: a small endpoint calls the core as the portal will."""
    acct = _account()
    order = op.create_order(acct, 700, "alipay")

    class Notify(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            data = self.rfile.read(int(self.headers["Content-Length"])).decode()
            params = {k: v[0] for k, v in urllib.parse.parse_qs(data).items()}
            answer, _o = op.handle_alipay(params)
            out = answer.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    station = ThreadingHTTPServer(("127.0.0.1", 0), Notify)
    threading.Thread(target=station.serve_forever, daemon=True).start()
    provider, _thread = serve_in_thread(sim)
    try:
        notify = f"http://127.0.0.1:{station.server_address[1]}/pay/notify/alipay"
        n = sim.alipay(order.number, 700)
        assert sim.send(notify, n) == (200, "success")
        assert sim.send(notify, n) == (200, "success")  # replayed
        assert sim.send(notify, sim.forged("alipay", order.number, 700)) == (200, "failure")
        # the hand-over page: a form that posts the payment (the notification) on "pay"
        second = op.create_order(acct, 700, "alipay")
        query = urllib.parse.urlencode({"order": second.number, "amount": "700",
                                        "channel": "alipay", "notify": notify})
        base = f"http://127.0.0.1:{provider.server_address[1]}"
        page = urllib.request.urlopen(f"{base}/pay?{query}", timeout=5).read().decode()
        assert second.number in page and "7.00" in page and "<form" in page
        done = urllib.request.urlopen(urllib.request.Request(
            f"{base}/pay", data=query.encode(), method="POST"), timeout=5).read().decode()
        assert "200 success" in done
        # a new trade number for an order paid already: refused
        assert sim.send(notify, sim.alipay(order.number, 700)) == (200, "failure")
    finally:
        provider.shutdown()
        station.shutdown()
    assert balances.balance(acct) == 1400 and len(_recharges(acct)) == 2
    assert [json.loads(a.data)["why"] for a in _alarms()] == [op.FORGED, op.PAID_OTHERWISE]
