"""The payment provider simulator: plays Alipay and WeChat Pay for tests and demos.

It has its own keys, made on first start in ``paysim/`` beside the database (mode 0600): an
RSA key for "Alipay", one for the "WeChat Pay platform" (with a serial), and the merchant's
APIv3 key (a secret the merchant and WeChat share). ``install`` writes what the station reads
into its ``payment-keys/`` folder: the two public halves and the APIv3 key.

Given an order (number, amount, channel) it builds and signs the asynchronous notification as
the real provider does and POSTs it to the station's URL (``/pay/notify/alipay``,
``/pay/notify/wechat``); for tests it also makes forged (another key), tampered (the amount
changed after signing) and replayed (the same one again) notifications. ``serve`` answers the
portal's hand-over: ``GET /pay?order=&amount=&channel=&notify=&return=`` shows a page with a
"pay" button; pressing it sends the notification and goes back to ``return``.

The real gateways are never contacted: this module talks to the URL it is given only.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from app.core import online_payments as station
from app.drivers import pay_signing
from app.errors import UserFacingError
from app.i18n import _

log = logging.getLogger("voltkeeper.paysim")

FOLDER_NAME = "paysim"
ALIPAY_APP_ID = "2021000000000000"
WECHAT_MCHID = "1900000100"
WECHAT_APPID = "wx0000000000000000"


@dataclass
class Notification:
    """One notification as sent: Alipay's form fields, or WeChat's headers and body."""

    channel: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class PaySim:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.alipay_key = pay_signing.load_key(self._file("alipay-private.pem", _new_private))
        self.wechat_key = pay_signing.load_key(self._file("wechatpay-private.pem",
                                                          _new_private))
        self.serial = self._file("wechatpay-serial", lambda: secrets.token_hex(20).upper()
                                 .encode()).decode().strip()
        self.apiv3_key = self._file("wechatpay-apiv3.key",
                                    lambda: secrets.token_hex(16).encode()).strip()

    @classmethod
    def beside(cls, db: Path) -> PaySim:
        return cls(db.resolve().parent / FOLDER_NAME)

    def _file(self, name: str, make) -> bytes:
        path = self.folder / name
        if not path.exists():
            station.write_private_file(path, make())
        return station.read_private_file(path)

    def install(self, station_keys: Path) -> None:
        """Write the public halves and the APIv3 key where the station reads them. Keys the
        station has already that are not the simulator's (a real provider's) are never
        replaced: UserFacingError."""
        files = {station_keys / station.ALIPAY_PUBLIC_KEY:
                 self.alipay_key.public_key().export_key("PEM"),
                 station.wechat_platform_file(self.serial, station_keys):
                 self.wechat_key.public_key().export_key("PEM"),
                 station_keys / station.WECHAT_APIV3_KEY: self.apiv3_key}
        for path, data in files.items():
            if path.exists() and path.read_bytes().strip() != data.strip():
                raise UserFacingError(_("{path} holds another provider's key: the payment "
                                        "simulator does not replace it").format(path=path))
        for path, data in files.items():
            station.write_private_file(path, data)

    # -- building notifications ------------------------------------------------------------
    def alipay(self, order: str, amount_cents: int, *, trade_no: str | None = None,
               status: str = "TRADE_SUCCESS", key=None) -> Notification:
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        yuan = str((Decimal(amount_cents) / 100).quantize(Decimal("0.01")))
        params = {
            "notify_time": now, "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16), "charset": "utf-8", "version": "1.0",
            "sign_type": "RSA2", "app_id": ALIPAY_APP_ID,
            "trade_no": trade_no or time.strftime("%Y%m%d") + "2200" + _digits(16),
            "out_trade_no": order, "trade_status": status, "total_amount": yuan,
            "receipt_amount": yuan, "buyer_pay_amount": yuan, "subject": "electricity",
            "gmt_create": now, "gmt_payment": now, "seller_id": "2088000000000000",
        }
        params["sign"] = pay_signing.alipay_sign(params, key or self.alipay_key)
        return Notification("alipay", params=params)

    def wechat(self, order: str, amount_cents: int, *, transaction_id: str | None = None,
               state: str = "SUCCESS", key=None, apiv3_key: bytes | None = None
               ) -> Notification:
        paid = {
            "appid": WECHAT_APPID, "mchid": WECHAT_MCHID, "out_trade_no": order,
            "transaction_id": transaction_id or "4200" + _digits(24),
            "trade_type": "JSAPI", "trade_state": state, "trade_state_desc": state,
            "bank_type": "OTHERS", "success_time": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
            "payer": {"openid": "o" + secrets.token_hex(12)},
            "amount": {"total": amount_cents, "payer_total": amount_cents,
                       "currency": "CNY", "payer_currency": "CNY"},
        }
        resource = pay_signing.wechat_encrypt(json.dumps(paid).encode(),
                                              apiv3_key or self.apiv3_key, "transaction")
        resource["original_type"] = "transaction"
        envelope = {"id": secrets.token_hex(18), "create_time": paid["success_time"],
                    "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS",
                    "summary": "支付成功", "resource": resource}
        return self._signed_wechat(json.dumps(envelope, ensure_ascii=False).encode(),
                                   key or self.wechat_key)

    def _signed_wechat(self, body: bytes, key) -> Notification:
        stamp, nonce = str(int(time.time())), pay_signing.new_nonce()
        headers = {"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce,
                   "Wechatpay-Serial": self.serial, "Wechatpay-Signature-Type":
                   "WECHATPAY2-SHA256-RSA2048",
                   "Wechatpay-Signature": pay_signing.wechat_sign(stamp, nonce, body, key),
                   "Content-Type": "application/json"}
        return Notification("wechat", headers=headers, body=body)

    def notification(self, channel: str, order: str, amount_cents: int, **kw) -> Notification:
        return (self.alipay if channel == "alipay" else self.wechat)(order, amount_cents, **kw)

    # -- for tests: what an attacker could send --------------------------------------------
    def forged(self, channel: str, order: str, amount_cents: int) -> Notification:
        """Signed with a key that is not the provider's."""
        other = pay_signing.load_key(_new_private())
        return self.notification(channel, order, amount_cents, key=other)

    def tampered(self, channel: str, order: str, amount_cents: int,
                 new_amount_cents: int) -> Notification:
        """Signed for ``amount_cents``, then the amount changed to ``new_amount_cents``."""
        n = self.notification(channel, order, amount_cents)
        if channel == "alipay":
            yuan = str((Decimal(new_amount_cents) / 100).quantize(Decimal("0.01")))
            n.params.update(total_amount=yuan, receipt_amount=yuan, buyer_pay_amount=yuan)
        else:  # the encrypted resource cannot be changed: one re-encrypted, the old signature
            fresh = self.wechat(order, new_amount_cents)
            n.body = fresh.body
        return n

    # -- sending ---------------------------------------------------------------------------
    def send(self, url: str, n: Notification, timeout: float = 10.0) -> tuple[int, str]:
        """POST ``n`` to ``url`` as the provider does; (HTTP status, answer text)."""
        if n.channel == "alipay":
            data = urllib.parse.urlencode(n.params).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        else:
            data, headers = n.body, dict(n.headers)
        req = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read(65536).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(65536).decode("utf-8", "replace")


def _new_private() -> bytes:
    return pay_signing.new_key_pair()[0]


def _digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


# -- the hand-over page ----------------------------------------------------------------------
def _page(title: str, body: str) -> bytes:
    return (f'<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width"><title>{html.escape(title)}</title></head>'
            f'<body style="font-family:sans-serif;max-width:30em;margin:2em auto">'
            f"<h1>{html.escape(title)}</h1>{body}</body></html>").encode()


def make_server(sim: PaySim, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """The simulator's hand-over pages on ``host:port`` (0: any free port)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # quiet: the test's output stays readable
            log.debug("paysim: " + fmt, *args)

        def _reply(self, status: int, body: bytes, location: str | None = None) -> None:
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _order(self, query: str) -> dict[str, str] | None:
            q = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
            if not (q.get("order") and q.get("amount", "").isdigit()
                    and q.get("channel") in ("alipay", "wechat") and q.get("notify")):
                return None
            return q

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            q = self._order(url.query) if url.path == "/pay" else None
            if q is None:
                self._reply(404, _page("paysim", "<p>unknown page or order</p>"))
                return
            yuan = Decimal(int(q["amount"])) / 100
            hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" '
                             f'value="{html.escape(v)}">' for k, v in q.items())
            self._reply(200, _page(f"paysim: {q['channel']}", (
                f"<p>order {html.escape(q['order'])}: ¥{yuan:.2f}</p>"
                f'<form method="post" action="/pay">{hidden}'
                f'<button type="submit" name="pay" value="1">pay</button></form>')))

        def do_POST(self):
            length = min(int(self.headers.get("Content-Length") or 0), 65536)
            q = self._order(self.rfile.read(length).decode("utf-8", "replace"))
            if q is None or urllib.parse.urlsplit(self.path).path != "/pay":
                self._reply(400, _page("paysim", "<p>bad order</p>"))
                return
            n = sim.notification(q["channel"], q["order"], int(q["amount"]))
            status, answer = sim.send(q["notify"], n)
            log.info("paysim: %s order %s -> %s %s", q["channel"], q["order"], status,
                     answer[:80])
            if q.get("return"):
                self._reply(303, b"", location=q["return"])
            else:
                self._reply(200, _page("paysim", f"<p>notified: {status} "
                                                 f"{html.escape(answer[:200])}</p>"))

    return ThreadingHTTPServer((host, port), Handler)


def serve_in_thread(sim: PaySim, host: str = "127.0.0.1", port: int = 0
                    ) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = make_server(sim, host, port)
    thread = threading.Thread(target=server.serve_forever, name="paysim", daemon=True)
    thread.start()
    return server, thread
