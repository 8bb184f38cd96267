"""Commands for meters (the outbox): queued only by VoltKeeper's own operations, and provably so.

The outbox is a table in a file: anything that can write the file can insert a row, and the
poller would send it (a row with no booking behind it gave a meter +5,000.00). So every command
carries a MAC: HMAC-SHA256 under the station's command key over what the command does (its id,
meter, action, amount, booking and receipt), written in the same transaction as the row by
``queue``. The sender (``core/outbox.py``) checks it with ``check`` before anything goes on the
wire, and checks a token against its booking: the booking exists, is a recharge or an allowance
of the account whose room the meter is in, for exactly the token's amount. A command that fails
either is refused (``failed``), raised as a ``forged_command`` alarm and never sent.

The command key is the station's own: 32 random bytes made once, on first use, in
``command.key`` beside the master key (mode 0600). A front desk that holds no meter key can
still queue commands; a program that can write the database but cannot read the key cannot make
a command the sender takes. Rows queued before commands were signed (schema 5) carry no MAC:
those below the first signed id (``Meta.outbox_signed_from``, set by the upgrade) are taken
without one, and still checked against their booking.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from app.errors import ConfigError
from app.paths import data_dir
from app.storage import accounts as store
from app.storage import commands as command_store
from app.storage.accounts import OutboxItem
from app.storage.models import database

log = logging.getLogger("voltkeeper.commands")

KEY_BYTES = 32
_keys: dict[Path, bytes] = {}


def key_file() -> Path:
    return data_dir() / "command.key"


def command_key(path: Path | None = None) -> bytes:
    """The station's command key: read from ``path`` (default ``command.key`` in the data
    folder), made there once when missing (mode 0600, created exclusively: two processes
    starting together agree on one key)."""
    path = path or key_file()
    if path in _keys:
        return _keys[path]
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(KEY_BYTES) + "\n")
                f.flush()
                os.fsync(f.fileno())
            log.info("made the station's command key %s", path)
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the command key {path} cannot be read: "
                          f"{type(exc).__name__}") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"the command key {path} is not {KEY_BYTES} bytes")
    _keys[path] = key
    return key


def _message(item_id: int, meter_id: int, action: str, amount_cents: int,
             txn_id: int | None, receipt_no: int | None) -> bytes:
    return "|".join(("voltkeeper-command-1", str(item_id), str(meter_id), action,
                     str(int(amount_cents)), "" if txn_id is None else str(txn_id),
                     "" if receipt_no is None else str(receipt_no))).encode("ascii")


def mac(item_id: int, meter_id: int, action: str, amount_cents: int, txn_id: int | None,
        receipt_no: int | None, key: bytes | None = None) -> str:
    return hmac.new(key or command_key(), _message(item_id, meter_id, action, amount_cents,
                                                   txn_id, receipt_no),
                    hashlib.sha256).hexdigest()


def queue(meter_id: int, action: str, *, amount_cents: int = 0, txn_id: int | None = None,
          receipt_no: int | None = None) -> int:
    """Queue a command for the meter, signed, in the caller's transaction."""
    key = command_key()
    with database.atomic():
        item_id = store.add_outbox(meter_id, action, amount_cents=amount_cents, txn_id=txn_id,
                                   receipt_no=receipt_no)
        command_store.set_mac(item_id, mac(item_id, meter_id, action, amount_cents, txn_id,
                                           receipt_no, key))
    return item_id


def check(item: OutboxItem) -> str:
    """Why the command must not be sent ("" when it may): its MAC, and for a token, its
    booking."""
    if item.id >= command_store.signed_from():
        try:
            expected = mac(item.id, item.meter_id, item.action, item.amount_cents, item.txn_id,
                           item.receipt_no)
        except ConfigError as exc:
            return f"the command cannot be checked: {exc}"
        if not item.mac or not hmac.compare_digest(item.mac, expected):
            return "its MAC is missing or wrong: it was not written by VoltKeeper"
    if item.action == "recharge":
        return _booking_problem(item)
    return ""


def _booking_problem(item: OutboxItem) -> str:
    if item.txn_id is None:
        return "a token without a booking"
    booking = command_store.token_booking(item.txn_id)
    if booking is None:
        return f"its booking {item.txn_id} does not exist"
    kind, account_meters, credited = booking
    if kind not in ("recharge", "allowance"):
        return f"its booking {item.txn_id} is a {kind}, not a recharge"
    if item.meter_id not in account_meters:
        return f"its booking {item.txn_id} is for another account's meter"
    if credited != item.amount_cents:
        return (f"its amount {item.amount_cents} is not its booking's "
                f"{credited} (booking {item.txn_id})")
    if command_store.other_tokens_of(item.txn_id, item.id):
        return f"another token was queued for booking {item.txn_id}"
    return ""
