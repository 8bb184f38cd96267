"""The providers' notifications through the portal's routes: a paid one books once and is
answered as each provider expects; forged, tampered and replayed ones book nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.core import balances, online_payments
from app.portal.app import create_app
from app.simulator.paysim import PaySim


def test_notifications_reach_the_recharge_once(demo, tmp_path):
    sim = PaySim.beside(demo.db)
    sim.install(online_payments.key_dir())
    client = TestClient(create_app(demo.db, secret_file=tmp_path / "portal.secret"))
    before = balances.balance(demo.b.account_id)
    # Alipay: forged, then tampered, then the real one, then the same again
    order = online_payments.create_order(demo.b.account_id, 50_00, "alipay")
    forged = sim.forged("alipay", order.number, 50_00)
    assert client.post("/pay/notify/alipay", data=forged.params).text == "failure"
    tampered = sim.tampered("alipay", order.number, 50_00, 5_00)
    assert client.post("/pay/notify/alipay", data=tampered.params).text == "failure"
    assert balances.balance(demo.b.account_id) == before
    paid = sim.alipay(order.number, 50_00)
    assert client.post("/pay/notify/alipay", data=paid.params).text == "success"
    assert client.post("/pay/notify/alipay", data=paid.params).text == "success"  # replay
    assert balances.balance(demo.b.account_id) == before + 50_00
    # WeChat Pay v3: the raw body and its signed headers
    order = online_payments.create_order(demo.b.account_id, 12_34, "wechat")
    note = sim.wechat(order.number, 12_34)
    answer = client.post("/pay/notify/wechat", content=note.body, headers=note.headers)
    assert answer.status_code == 200 and answer.json()["code"] == "SUCCESS"
    again = client.post("/pay/notify/wechat", content=note.body, headers=note.headers)
    assert again.status_code == 200
    forged = sim.forged("wechat", order.number, 12_34)
    refused = client.post("/pay/notify/wechat", content=forged.body, headers=forged.headers)
    assert refused.status_code >= 400 and refused.json()["code"] == "FAIL"
    assert balances.balance(demo.b.account_id) == before + 50_00 + 12_34
