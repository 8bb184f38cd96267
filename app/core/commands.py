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
``command.key`` beside the master key (mode 0600, written whole before it appears). A front
desk that holds no meter key can still queue commands; a program that can write the database
but cannot read the key cannot make a command the sender takes. A key that cannot be read
leaves commands waiting (never failed). When the outbox's token gets its purchase count, the
MAC is renewed over it too, so a count written by hand is refused.

Rows queued before commands were signed (schema 5) are signed by the process that upgrades the
database, right after the upgrade (``sign_rows_from_before_signing``, called by
``station.open_station``; known to that process only, never from a mark in the database, which
anyone could write); an allowance token of that time names no booking and is signed as such.
What a MAC cannot tell: a row set back to an earlier state of its own (its MAC copied from that
time) would be sent again; the journal of sent tokens that would catch it waits for the
database server (issue 14).
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
    folder), made there once when missing. Raises ConfigError when it cannot be read, is not
    the station's own (group or others may read it) or is not a key."""
    path = path or key_file()
    if path in _keys:
        return _keys[path]
    if not path.exists():
        _make_key(path)
    try:
        if os.name == "posix" and path.stat().st_mode & 0o077:
            raise ConfigError(f"the command key {path} may be read by others: "
                              f"chmod 600 {path}")
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the command key {path} cannot be read: "
                          f"{type(exc).__name__}") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"the command key {path} is not {KEY_BYTES} bytes")
    _keys[path] = key
    return key


def _make_key(path: Path) -> None:
    """Write a new key whole to a file of its own, then link it into place: whoever reads
    ``path`` reads a whole key, and of two processes making one at once, one key wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(KEY_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
            log.info("made the station's command key %s", path)
        except FileExistsError:
            pass  # another process made it first: theirs it is
    finally:
        tmp.unlink(missing_ok=True)


#: What a MAC says the row is: a command as queued since schema 5, or an allowance token
#: queued before (it names no booking).
COMMAND, LEGACY_ALLOWANCE = "voltkeeper-command-1", "voltkeeper-legacy-allowance-1"


def _message(kind: str, item_id: int, meter_id: int, action: str, amount_cents: int,
             txn_id: int | None, receipt_no: int | None,
             purchase_count: int | None = None) -> bytes:
    parts = [kind, str(item_id), str(meter_id), action, str(int(amount_cents)),
             "" if txn_id is None else str(txn_id), "" if receipt_no is None else str(receipt_no)]
    if purchase_count is not None:
        parts.append(f"count={purchase_count}")
    return "|".join(parts).encode("ascii")


def mac(item_id: int, meter_id: int, action: str, amount_cents: int, txn_id: int | None,
        receipt_no: int | None, key: bytes | None = None, *,
        purchase_count: int | None = None, kind: str = COMMAND) -> str:
    return hmac.new(key or command_key(),
                    _message(kind, item_id, meter_id, action, amount_cents, txn_id, receipt_no,
                             purchase_count), hashlib.sha256).hexdigest()


def _item_mac(item: OutboxItem, *, purchase_count: int | None,
              kind: str = COMMAND) -> str:
    return mac(item.id, item.meter_id, item.action, item.amount_cents, item.txn_id,
               item.receipt_no, purchase_count=purchase_count, kind=kind)


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


def set_purchase_count(item: OutboxItem, count: int) -> None:
    """Give a token its purchase count, and renew its MAC over the count."""
    with database.atomic():
        store.set_purchase_count(item.id, count)
        command_store.set_mac(item.id, _item_mac(item, purchase_count=count))


def sign_rows_from_before_signing() -> int:
    """Sign the outbox rows an older VoltKeeper queued (no MAC): called by the process that
    has just upgraded the database to schema 5, before anyone else can write to it. Returns
    how many were signed."""
    key = command_key()
    rows = command_store.unsigned()
    with database.atomic():
        for item in rows:
            kind = LEGACY_ALLOWANCE if item.action == "recharge" and item.txn_id is None \
                else COMMAND
            command_store.set_mac(item.id, mac(
                item.id, item.meter_id, item.action, item.amount_cents, item.txn_id,
                item.receipt_no, key, purchase_count=item.purchase_count, kind=kind))
    if rows:
        log.warning("signed %d command(s) queued before commands were signed", len(rows))
    return len(rows)


def check(item: OutboxItem) -> str:
    """Why the command must not be sent ("" when it may): its MAC, and for a token, its
    booking. Raises ConfigError when the command key cannot be read (the command waits)."""
    if item.id <= 0 or not item.mac:
        return "it has no MAC: it was not written by VoltKeeper"
    if hmac.compare_digest(item.mac, _item_mac(item, purchase_count=item.purchase_count)):
        return _booking_problem(item) if item.action == "recharge" else ""
    if item.action == "recharge" and item.txn_id is None and hmac.compare_digest(
            item.mac, _item_mac(item, purchase_count=item.purchase_count,
                                kind=LEGACY_ALLOWANCE)):
        return ""  # an allowance token queued before tokens named their booking
    return "its MAC is wrong: it was not written by VoltKeeper, or changed since"


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
    return ""
