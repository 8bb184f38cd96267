"""Residents' online payments: an order, the provider's signed notification, one booking.

The portal makes an order (``create_order``: the station's order number, the account, the
amount, the channel) and hands the resident over to the provider. The provider's asynchronous
notification is the only thing that moves money: ``handle_alipay`` / ``handle_wechat`` verify
its signature (``drivers/pay_signing``) with the provider's public key, check it against the
order (known, same channel, same amount, paid), and book the recharge through the desk's own
operation (``recharge.recharge`` as the system operator ``portal``, under the payment key
``alipay:<trade_no>`` / ``wechat:<transaction_id>``): the same receipt, the same token for a
meter-kept account, and a payment booked once whatever the door (a notification sent again,
or the statement imported before it, is answered as done and books nothing).

A forged or changed notification, an unknown order, a different amount, a trade that is not
paid, or a booking the desk refuses is answered as a failure (the provider sends it again
later) and raised as a ``payment_refused`` alarm (level 2).

Keys: the provider's public keys and the WeChat APIv3 key are files in ``payment-keys/`` beside
the database, readable by their owner only (mode 0600, checked): ``alipay-public.pem``,
``wechatpay-platform-<serial>.pem`` (one per platform key, chosen by the notification's
``Wechatpay-Serial``) and ``wechatpay-apiv3.key`` (the 32 bytes as text). Never in the database
or a log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from app.core import alarms
from app.core.operators import Operator
from app.core.payment_key import InexactId, bookings_of, transaction_id
from app.core.recharge import RechargeResult, recharge, validate_amount
from app.drivers import pay_signing
from app.errors import ConfigError, UserFacingError
from app.i18n import N_, _
from app.paths import data_dir
from app.storage import accounts as account_store
from app.storage import ledger
from app.storage import payment_orders as store
from app.storage.db import database_path, write_transaction
from app.storage.payment_orders import OrderRecord

log = logging.getLogger("voltkeeper.payments")

CHANNELS = ("alipay", "wechat")
#: The acting name of the bookings a verified notification makes.
PORTAL_OPERATOR = Operator.system("portal")
KEY_DIR_NAME = "payment-keys"
ALIPAY_PUBLIC_KEY = "alipay-public.pem"
WECHAT_APIV3_KEY = "wechatpay-apiv3.key"
ALIPAY_PAID = ("TRADE_SUCCESS", "TRADE_FINISHED")
WECHAT_PAID = "SUCCESS"
_SERIAL = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: Why a notification is refused (the alarm says it; English in the alarm's parameters).
FORGED = N_("the signature does not verify (forged, changed, or a wrong key)")
UNKNOWN_ORDER = N_("no such order")
OTHER_CHANNEL = N_("the order was made for another channel")
OTHER_AMOUNT = N_("the amount differs from the order's")
NOT_PAID = N_("the trade is not paid")
PAID_OTHERWISE = N_("the order is paid already by another transaction")
BOOKED_OTHERWISE = N_("the transaction is booked already for another account or amount")
UNREADABLE = N_("the notification cannot be read")
NOT_CONFIGURED = N_("the provider's keys are not configured")


@dataclass(frozen=True)
class Outcome:
    """What became of a notification: ``paid`` (booked now), ``replay`` (booked before:
    answered as done) or ``refused`` (``why``; alarmed)."""

    verdict: str
    channel: str
    order: str = ""
    transaction: str = ""
    why: str = ""
    result: RechargeResult | None = None
    alarm_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.verdict in ("paid", "replay")


# -- keys ----------------------------------------------------------------------------------------
def key_dir() -> Path:
    """``payment-keys/`` beside the database's file (the data folder when it has none)."""
    db = database_path()
    return (db.parent if db is not None and db.is_file() else data_dir()) / KEY_DIR_NAME


def read_private_file(path: Path) -> bytes:
    """A key file's bytes; ConfigError when it is missing or others may read it."""
    try:
        if os.name == "posix" and path.stat().st_mode & 0o077:
            raise ConfigError(_("the payment key {path} may be read by others: chmod 600 "
                                "{path}").format(path=path))
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(_("there is no payment key at {path}").format(path=path)) from None
    except OSError as exc:
        raise ConfigError(_("the payment key {path} cannot be read: {error}").format(
            path=path, error=type(exc).__name__)) from None


def write_private_file(path: Path, data: bytes) -> None:
    """Write a key file whole, mode 0600 (a reader sees the old file or the new)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def wechat_platform_file(serial: str, folder: Path | None = None) -> Path:
    return (folder or key_dir()) / f"wechatpay-platform-{serial}.pem"


def _alipay_key():
    return pay_signing.load_key(read_private_file(key_dir() / ALIPAY_PUBLIC_KEY))


def _wechat_key(serial: str):
    if not _SERIAL.fullmatch(serial or ""):
        return None
    path = wechat_platform_file(serial)
    if not path.exists():
        return None  # a serial the station was not given: not the platform's key
    return pay_signing.load_key(read_private_file(path))


def _apiv3_key() -> bytes:
    key = read_private_file(key_dir() / WECHAT_APIV3_KEY).strip()
    if len(key) != pay_signing.APIV3_KEY_BYTES:
        raise ConfigError(_("the WeChat Pay APIv3 key is {n} characters, not 32").format(
            n=len(key)))
    return key


# -- orders --------------------------------------------------------------------------------------
def new_order_number(t: float) -> str:
    """``VK`` + local time + 8 random hex digits: 24 characters, as both providers take."""
    return "VK" + time.strftime("%Y%m%d%H%M%S", time.localtime(t)) + secrets.token_hex(4)


def create_order(account_id: int, amount_cents: int, channel: str, *,
                 t: float | None = None) -> OrderRecord:
    """A new order to hand over to the provider (moves no money)."""
    validate_amount(amount_cents)
    if channel not in CHANNELS:
        raise UserFacingError(_("unknown payment channel {channel!r} (use: {known})").format(
            channel=channel, known=", ".join(CHANNELS)))
    acct = account_store.get_account(account_id)
    if acct is None or not acct.is_open:
        raise UserFacingError(_("no open account {id}").format(id=account_id))
    t = time.time() if t is None else t
    number = new_order_number(t)
    with write_transaction():
        store.insert_order(number, account_id, amount_cents, channel, t)
    order = store.order_by_number(number)
    assert order is not None
    return order


def order(number: str) -> OrderRecord | None:
    return store.order_by_number(number)


# -- notifications -------------------------------------------------------------------------------
def _refuse(channel: str, why: str, order_no: str = "", txn: str = "",
            account_id: int | None = None) -> Outcome:
    log.warning("%s notification refused (order %s, transaction %s): %s", channel,
                order_no or "-", txn or "-", why)
    alarm_id = alarms.raise_alarm("payment_refused", 2, {
        "channel": channel, "order": order_no or "-", "transaction": txn or "-", "why": why},
        account_id=account_id, once=False)
    return Outcome("refused", channel, order_no, txn, why, alarm_id=alarm_id)


def _cents(total_amount: str) -> int | None:
    """Alipay's ``total_amount`` (yuan, at most 2 decimals) in cents; None if it is not one."""
    try:
        d = Decimal(total_amount.strip())
    except (InvalidOperation, AttributeError):
        return None
    if not d.is_finite() or d != d.quantize(Decimal("0.01")):
        return None
    return int(d * 100)


def apply_paid(channel: str, order_no: str, provider_txn: str, amount_cents: int | None, *,
               t: float | None = None) -> Outcome:
    """A verified, paid notification: book the order's recharge once. Refusals are alarmed."""
    try:
        tid = transaction_id(provider_txn)
    except InexactId:
        tid = ""
    if not tid or not order_no:
        return _refuse(channel, UNREADABLE, order_no, provider_txn)
    refusal: tuple[str, int | None] | None = None
    result: RechargeResult | None = None
    with write_transaction():
        found = store.order_by_number(order_no)
        if found is None:
            refusal = (UNKNOWN_ORDER, None)
        elif found.channel != channel:
            refusal = (OTHER_CHANNEL, found.account_id)
        elif found.state == "paid":
            if found.provider_txn == tid:
                return Outcome("replay", channel, order_no, tid)
            refusal = (PAID_OTHERWISE, found.account_id)
        elif amount_cents != found.amount_cents:
            store.mark_refused(found.id)
            refusal = (OTHER_AMOUNT, found.account_id)
        else:
            booked = bookings_of([tid]).get(tid, [])
            if booked:  # booked before this notification (the statement came first)
                rec = ledger.txn(booked[0].txn_id)
                if (rec is not None and booked[0].method == channel and rec.kind == "recharge"
                        and rec.account_id == found.account_id
                        and rec.amount_cents == found.amount_cents):
                    store.mark_paid(found.id, tid, rec.id, time.time() if t is None else t)
                    return Outcome("replay", channel, order_no, tid)
                refusal = (BOOKED_OTHERWISE, found.account_id)
            else:
                try:
                    # the money is taken already: the order's amount is its own maximum
                    result = recharge(PORTAL_OPERATOR, found.account_id, found.amount_cents,
                                      channel, reference=tid, maximum=found.amount_cents,
                                      memo=f"online order {order_no}", t=t)
                except UserFacingError as exc:
                    refusal = (str(exc), found.account_id)
                else:
                    store.mark_paid(found.id, tid, result.txn_id, result.t)
    if refusal is not None:
        return _refuse(channel, refusal[0], order_no, tid, refusal[1])
    log.info("%s order %s paid: transaction %s, receipt %s", channel, order_no, tid,
             result.receipt_no if result else "-")
    return Outcome("paid", channel, order_no, tid, result=result)


def handle_alipay(params: Mapping[str, str]) -> tuple[str, Outcome]:
    """Alipay's asynchronous notification (its form fields): ``("success", outcome)`` for a
    verified notification booked now or before, ``("failure", outcome)`` otherwise."""
    params = {str(k): str(v) for k, v in params.items()}
    order_no, trade_no = params.get("out_trade_no", ""), params.get("trade_no", "")
    try:
        key = _alipay_key()
    except (ConfigError, pay_signing.PayCryptoError) as exc:
        log.error("Alipay notification not checked: %s", exc)
        return "failure", _refuse("alipay", NOT_CONFIGURED, order_no, trade_no)
    if not pay_signing.alipay_verify(params, key):
        return "failure", _refuse("alipay", FORGED, order_no, trade_no)
    if params.get("trade_status") not in ALIPAY_PAID:
        return "failure", _refuse("alipay", NOT_PAID, order_no, trade_no,
                                  _account_of(order_no))
    outcome = apply_paid("alipay", order_no, trade_no, _cents(params.get("total_amount", "")))
    return ("success" if outcome.ok else "failure"), outcome


def _account_of(order_no: str) -> int | None:
    found = store.order_by_number(order_no) if order_no else None
    return found.account_id if found else None


def _fail(message: str) -> dict[str, str]:
    return {"code": "FAIL", "message": message}


def handle_wechat(headers: Mapping[str, str], body: bytes
                  ) -> tuple[int, dict[str, str], Outcome]:
    """WeChat Pay v3's notification (its headers and raw body): ``(200, {"code": "SUCCESS",
    ...}, outcome)`` for a verified notification booked now or before; otherwise a 4xx/5xx
    status with ``{"code": "FAIL", "message": ...}`` (WeChat sends it again later)."""
    h = {str(k).lower(): str(v) for k, v in headers.items()}
    serial = h.get("wechatpay-serial", "")
    try:
        public_key = _wechat_key(serial)
        apiv3 = _apiv3_key()
    except (ConfigError, pay_signing.PayCryptoError) as exc:
        log.error("WeChat Pay notification not checked: %s", exc)
        return 500, _fail("not configured"), _refuse("wechat", NOT_CONFIGURED)
    if public_key is None or not pay_signing.wechat_verify(
            h.get("wechatpay-timestamp", ""), h.get("wechatpay-nonce", ""), body,
            h.get("wechatpay-signature", ""), public_key):
        return 401, _fail("signature"), _refuse("wechat", FORGED)
    try:
        envelope = json.loads(body)
        paid = json.loads(pay_signing.wechat_decrypt(envelope["resource"], apiv3))
        order_no = str(paid.get("out_trade_no", ""))
        txn = str(paid.get("transaction_id", ""))
        total = (paid.get("amount") or {}).get("total")
    except (ValueError, KeyError, TypeError, AttributeError, pay_signing.PayCryptoError):
        return 400, _fail("unreadable"), _refuse("wechat", UNREADABLE)
    if paid.get("trade_state") != WECHAT_PAID:
        return 400, _fail("not paid"), _refuse("wechat", NOT_PAID, order_no, txn,
                                                    _account_of(order_no))
    amount = total if isinstance(total, int) and not isinstance(total, bool) else None
    outcome = apply_paid("wechat", order_no, txn, amount)
    if outcome.ok:
        return 200, {"code": "SUCCESS", "message": "OK"}, outcome
    return 400, _fail("refused"), outcome
