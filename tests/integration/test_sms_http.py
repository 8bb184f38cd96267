"""The HTTP SMS gateway sender against a real local HTTP server on an ephemeral port: the bearer
key from its 0600 file and the JSON body, a 500 retried by the outbox, a malformed answer never
sent again, redirects not followed, a key others may read refused."""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.core import sms_outbox
from app.core.sms_outbox import SmsDispatcher, notify
from app.drivers.sms_http import HttpGatewaySender, read_key, write_key
from app.drivers.sms_sender import SmsMaybeSent, SmsNotSent
from app.errors import ConfigError
from app.paths import data_dir
from app.storage import sms as store
from app.storage.db import open_database
from tests.sms_helpers import NUMBER, noon, sms_room, sms_settings

KEY = "k3y-For-the-gateway_0123456789"


class Gateway(ThreadingHTTPServer):
    """Answers each POST with the next planned (status, body), then 200 {"ok": true}."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.plan: list[tuple[int, bytes, dict]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/sms/send"


class _Handler(BaseHTTPRequestHandler):
    server: Gateway

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.requests.append({"path": self.path, "headers": dict(self.headers),
                                         "body": body})
            status, answer, headers = (self.server.plan.pop(0) if self.server.plan
                                       else (200, b'{"ok": true, "id": "m1"}', {}))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def gateway():
    server = Gateway()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def station(tmp_path, gateway):
    d = open_database(tmp_path / "sms.db")
    sms_settings(sender="http", http_url=gateway.url, lang="en")
    write_key(sms_outbox.gateway_key_file(), KEY)
    acct, _room, _meter = sms_room()
    yield acct
    d.close()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _key_file(gateway):
    path = data_dir() / "gw.key"
    write_key(path, KEY)
    return path


def _dispatcher(gateway, clock) -> SmsDispatcher:
    return SmsDispatcher(HttpGatewaySender(gateway.url, sms_outbox.gateway_key_file(),
                                           timeout=2.0), clock=clock)


def test_the_key_file_sits_beside_the_database_readable_by_its_owner_only(station, tmp_path):
    path = sms_outbox.gateway_key_file()
    assert path == tmp_path / "sms-gateway.key"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert read_key(path) == KEY
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_key(path)


def test_a_text_goes_with_the_bearer_key_and_a_json_body(gateway, station):
    notify("low_balance_1", station, event="low_balance:1")
    report = _dispatcher(gateway, Clock(noon())).run_once()
    assert report.sent == 1
    (req,) = gateway.requests
    assert req["path"] == "/sms/send"
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    assert req["headers"]["Content-Type"].startswith("application/json")
    body = json.loads(req["body"].decode("utf-8"))
    assert set(body) == {"to", "text"} and body["to"] == NUMBER
    assert body["text"].startswith("Electricity: room 1-101 has 25.00 yuan left")
    row = store.messages()[0]
    assert (row.state, row.sender, row.parts) == ("sent", "http", 1)


def test_a_500_is_retried_with_back_off_then_sent(gateway, station):
    gateway.plan = [(500, b"oops", {}), (503, b"", {})]
    notify("trip_arrears", station, event="hold:1")
    clock = Clock(noon())
    dispatcher = _dispatcher(gateway, clock)
    assert dispatcher.run_once().retried == 1
    row = store.messages()[0]
    assert row.state == "pending" and "HTTP 500" in row.last_error
    clock.t += 60
    assert dispatcher.run_once().retried == 1
    clock.t += 120
    assert dispatcher.run_once().sent == 1
    assert len(gateway.requests) == 3 and store.messages()[0].attempts == 3


def test_the_gateways_parts_and_refusal_are_taken(gateway):
    sender = HttpGatewaySender(gateway.url, _key_file(gateway))
    gateway.plan = [(200, b'{"ok": true, "parts": 2}', {}),
                    (200, b'{"ok": false, "error": "blacklisted"}', {})]
    assert sender.send(NUMBER, "hello") == 2
    with pytest.raises(SmsNotSent, match="blacklisted"):
        sender.send(NUMBER, "hello")
    assert sender.send(NUMBER, "中" * 200) == 3  # counted as a modem would send it


def test_a_malformed_answer_may_have_gone_and_is_never_sent_again(gateway, station):
    gateway.plan = [(200, b"<html>OK</html>", {})]
    notify("trip_operator", station, event="hold:2")
    clock = Clock(noon())
    dispatcher = _dispatcher(gateway, clock)
    assert dispatcher.run_once().unknown == 1
    clock.t += 3600
    dispatcher.run_once()
    assert len(gateway.requests) == 1
    row = store.messages()[0]
    assert row.state == "unknown" and "JSON" in row.last_error


def test_a_redirect_is_not_followed_the_key_goes_nowhere_else(gateway):
    sender = HttpGatewaySender(gateway.url, _key_file(gateway))
    gateway.plan = [(307, b"", {"Location": "http://127.0.0.1:9/elsewhere"})]
    with pytest.raises(SmsNotSent, match="HTTP 307"):
        sender.send(NUMBER, "hello")
    assert len(gateway.requests) == 1


def test_a_gateway_that_is_down_is_retried_and_a_missing_key_waits(gateway, station):
    gateway.shutdown()
    gateway.server_close()
    sender = HttpGatewaySender(gateway.url, sms_outbox.gateway_key_file(), timeout=1.0)
    with pytest.raises(SmsNotSent, match="cannot be reached"):
        sender.send(NUMBER, "hello")
    sms_outbox.gateway_key_file().unlink()
    notify("trip_plan", station, event="plan:1")
    report = _dispatcher(gateway, Clock(noon())).run_once()
    assert "sms key" in report.waiting
    assert store.messages()[0].attempts == 0  # nothing was handed over


def test_no_answer_in_time_may_have_gone(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # takes the connection, never answers
    try:
        key = tmp_path / "k.key"
        write_key(key, KEY)
        sender = HttpGatewaySender(f"http://127.0.0.1:{listener.getsockname()[1]}/", key,
                                   timeout=0.5)
        with pytest.raises(SmsMaybeSent):
            sender.send(NUMBER, "hello")
    finally:
        listener.close()


def test_an_address_that_is_not_http_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="http"):
        HttpGatewaySender("ftp://example.org/", tmp_path / "k.key").open()
