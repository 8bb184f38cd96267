"""Delivering the outbox: what the polling process does with queued recharges and controls.

Run by the meter's bus poller, in its thread, with its link. A token's purchase count is the
meter's count plus one, read from the meter at the first attempt and stored before the token is
sent. A recharge is confirmed by the meter's purchase count: once it has reached the token's,
the token is applied, whether this attempt or an earlier one (whose reply was lost) did it, and
a resent token is refused by the meter as replayed. Items of one meter go in order, because each
token's purchase count must be the meter's next. (This assumes VoltKeeper is the only seller:
a recharge made on the meter by another tool between two attempts would be taken for ours.)

A meter that refuses the token registers (a stock meter: they are VoltKeeper's own) is never
sent a token: the poller holds its tokens back, a refused token write is learned as the meter
lacking the token register, and the station moves the account to station-kept money
(``core/accounts.settle_meters_without_tokens``), which settles the tokens still waiting.
"""

from __future__ import annotations

import logging
import time

from app.core import commands
from app.core.alarms import raise_alarm
from app.core.money import format_cents
from app.drivers.capability import MISSING_CODES, MeterCapability
from app.drivers.modbus_link import ModbusLink
from app.drivers.profile import MeterProfile
from app.drivers.token import MasterKey, TokenStatus, make_token
from app.errors import ConfigError, DriverError, LinkDown, MeterException, NotSupported
from app.storage import accounts as store
from app.storage import busy
from app.storage import commands as command_store
from app.storage.accounts import OutboxItem
from app.storage.models import database

log = logging.getLogger("voltkeeper.outbox")

#: Token refusals that no retry will cure.
FATAL = {TokenStatus.BAD_MAC, TokenStatus.FOREIGN, TokenStatus.BAD_FORMAT,
         TokenStatus.UNKNOWN_KEY, TokenStatus.BAD_AMOUNT}
#: How a failure the meter's token check gave begins (a replayed, foreign or bad token).
TOKEN_REFUSED = "meter refused the token"
CONTROL_EXPECT = {"trip": "forced_trip", "close": "auto", "keep_power_on": "keep_power",
                  "keep_power_off": "auto"}
#: Outbox actions that write a setting (the value in ``amount_cents``), and the profile point
#: each is read back from.
SETTING_POINTS = {"power_limit": "power_limit", "malicious_load_detection":
                  "malicious_detection", "malicious_load_threshold": "malicious_step"}


class OutboxDelivery:
    def __init__(self, master_key: MasterKey | None) -> None:
        self.master_key = master_key

    def pending(self, meter_ids: list[int]) -> dict[int, list[OutboxItem]]:
        out: dict[int, list[OutboxItem]] = {}
        for item in store.pending_outbox(meter_ids, deliverable=True):
            out.setdefault(item.meter_id, []).append(item)
        return out

    def deliver(self, link: ModbusLink, unit: int, profile: MeterProfile, serial: str,
                item: OutboxItem, capability: MeterCapability | None = None) -> str:
        """Try one item; returns its state afterwards. LinkDown propagates (the bus is down).

        The bus's thread waits at most ``busy.SHORT_TIMEOUT_MS`` for the database: when
        another process holds it longer (an import, a backup) or the disk is full, the item
        stays pending for the next cycle and the bus goes on polling. Nothing is lost by it: a
        token is sent only after its purchase count is stored, and an applied token not yet
        recorded is recognised by the meter's count at the next attempt."""
        try:
            with busy.short_wait():
                now = store.outbox_item(item.id)  # withdrawn since the cycle began?
                if now is None or now.state != "pending":
                    return now.state if now is not None else "failed"
                return self._deliver(link, unit, profile, serial, now, capability)
        except Exception as exc:
            if not busy.unwritable(exc):
                raise
            log.warning("outbox %s (%s on meter %s) waits: the database cannot be written "
                        "now (%s)", item.id, item.action, item.meter_id, exc)
            return "pending"

    def _deliver(self, link: ModbusLink, unit: int, profile: MeterProfile, serial: str,
                 item: OutboxItem, capability: MeterCapability | None) -> str:
        try:
            forged = commands.check(item)
        except ConfigError as exc:  # the station's key: a matter for its keeper, not a forgery
            store.set_outbox_state(item.id, "pending", f"waits: {exc}")
            log.error("outbox %s waits: %s", item.id, exc)
            return "pending"
        if forged:
            return self._refuse(item, forged)
        try:
            if item.action == "recharge":
                state, error = self._recharge(link, unit, profile, serial, item, capability)
            elif item.action in CONTROL_EXPECT:
                link.control(unit, profile, item.action)
                mode = link.read_points(unit, profile, ["control_mode"])["control_mode"]
                ok = mode == CONTROL_EXPECT[item.action]
                state, error = ("applied", "") if ok else ("pending", f"meter reports {mode}")
            elif item.action in SETTING_POINTS:
                state, error = self._setting(link, unit, profile, item)
            else:
                state, error = "failed", f"unknown action {item.action!r}"
        except LinkDown:
            raise
        except DriverError as exc:
            state, error = "pending", str(exc)
        with database.atomic():  # the state and its alarm together, or neither
            store.set_outbox_state(item.id, state, error, attempt=True)
            if state == "failed" and error.startswith(TOKEN_REFUSED):
                raise_alarm("token_refused", 2, {"meter": item.meter_id, "error": error,
                                                 "outbox": item.id},
                            meter_id=item.meter_id, once=False)
            elif state == "failed":
                raise_alarm("command_failed", 2, {"action": item.action,
                                                  "meter": item.meter_id, "error": error,
                                                  "outbox": item.id},
                            meter_id=item.meter_id, once=False)
        if state == "failed":
            log.error("outbox %s (%s on meter %s) failed: %s", item.id, item.action,
                      item.meter_id, error)
        return state

    def _setting(self, link: ModbusLink, unit: int, profile: MeterProfile,
                 item: OutboxItem) -> tuple[str, str]:
        """Write a setting and read it back; the value it replaced is kept (``previous``) for
        an exact undo. A meter without the setting, a value its profile cannot take or one it
        reads back otherwise fails the item at once: a setting never holds back the trips,
        closes and tokens queued after it."""
        point, value = SETTING_POINTS[item.action], int(item.amount_cents)
        try:
            before = link.read_points(unit, profile, [point])[point]
            if not command_store.previous_of(item.id):  # the first value seen is the one
                command_store.set_previous(item.id, "" if before is None else str(int(before)))
            link.control(unit, profile, item.action, value)
            now = link.read_points(unit, profile, [point])[point]
        except (NotSupported, MeterException, ValueError) as exc:
            # the meter lacks it, or the value is beyond what its profile can encode: retrying
            # cannot help, and a pending setting would hold back every later command
            return "failed", str(exc)
        if now is not None and int(now) == value:
            return "applied", ""
        # written but read back otherwise (the meter rounds or clamps it): the same next time
        return "failed", f"meter reports {now} after {value} was written"

    def _refuse(self, item: OutboxItem, why: str) -> str:
        """A command VoltKeeper did not queue, or a token its booking does not cover: never
        sent, marked failed, alarmed at the danger level."""
        log.error("outbox %s (%s of %s on meter %s) refused, not sent: %s", item.id,
                  item.action, item.amount_cents, item.meter_id, why)
        with database.atomic():  # the refusal and its alarm together, or neither
            store.set_outbox_state(item.id, "failed", f"refused, not sent: {why}")
            raise_alarm("forged_command", 3, {"outbox": item.id, "action": item.action,
                                              "meter": item.meter_id,
                                              "amount": format_cents(item.amount_cents),
                                              "why": why},
                        meter_id=item.meter_id, once=False)
        return "failed"

    def _recharge(self, link: ModbusLink, unit: int, profile: MeterProfile, serial: str,
                  item: OutboxItem, capability: MeterCapability | None) -> tuple[str, str]:
        if self.master_key is None:
            return "pending", "no master key on this station: recharges cannot be sent"
        if not profile.can("recharge"):
            return "failed", f"{profile.model} takes no recharge"
        if capability is not None and capability.lacks_recharge(profile):
            return "pending", "the meter has no token registers: the station keeps the money"
        read = link.read_points(unit, profile, ["purchase_count"])
        if read.get("purchase_count") is None:
            return "pending", "the meter sent no usable purchase count"
        count = int(read["purchase_count"])
        if item.purchase_count is not None and count >= item.purchase_count:
            # sent before (the reply or our record of it was lost): the meter has it
            return "applied", ""
        if item.purchase_count is None or item.purchase_count > count + 1:
            # first attempt (or the meter's count went back: meter replaced): the token takes
            # the meter's next count, recorded before it is sent, so a retry after a crash
            # sends the same token and the meter refuses it as replayed
            commands.set_purchase_count(item, count + 1)
            item = store.outbox_item(item.id)  # type: ignore[assignment]
            assert item is not None and item.purchase_count is not None
        token = make_token(self.master_key, serial, item.amount_cents, item.purchase_count)
        try:
            link.control(unit, profile, "recharge", token)
        except MeterException as exc:
            if capability is None or exc.code not in MISSING_CODES:
                raise
            capability.refuse(profile.controls["recharge"].point, time.time())
            log.warning("meter %s refuses the token register (%s): no token is sent to it",
                        unit, exc)
            return "pending", "the meter has no token register: the station keeps the money"
        back = link.read_points(unit, profile, ["purchase_count", "token_status"])
        if back.get("purchase_count") is None or back.get("token_status") is None:
            return "pending", "the meter sent no usable purchase count or token status"
        if int(back["purchase_count"]) >= item.purchase_count:
            return "applied", ""
        status = TokenStatus(int(back["token_status"]))
        if status in FATAL:
            return "failed", f"{TOKEN_REFUSED}: {status.name}"
        return "pending", f"meter reports {status.name}"
