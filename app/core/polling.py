"""Polling one bus: every meter in turn, commands first, silent meters kept off the bus.

A ``BusPoller`` owns its bus's link and is driven by one thread (a QThread in the window, a
plain thread in ``serve``). It never touches the database: each poll becomes a
``PollOutcome`` handed to ``sink`` (the storage writer), so a slow disk cannot stall a bus and a
dead bus cannot stall anything else.

* A meter is marked offline after ``offline_after`` consecutive failures and online again on the
  next good read. An offline meter is re-probed once (no retry) when its back-off expires
  (10 s doubling to 5 min), so it costs its bus one timeout now and then, not every cycle.
* A control command jumps the queue: it runs before the next meter's poll, not after the
  cycle, and is confirmed by reading the meter back. So does the outbox (queued by another
  process): the bus looks at it between meters and between cycles, every half second, and
  delivers to every meter of the bus that has something waiting.
* A bus whose port or gateway fails retries with back-off and reports ``down`` (no meter
  answers through it: ``meters_online`` 0). Once it has failed ``offline_after`` times in a
  row (about 3 s with the back-off), every meter on it is marked offline, as a meter is after
  as many failures of its own, so that no one takes its last reading for a live one; each is
  probed as soon as the bus opens again. A meter that comes back is logged (and kept as an
  ``online`` event) as back, with how long it was away and why.
* Meters as they come: each meter's ``MeterCapability`` (what it refuses, learned by reading,
  stored by the writer) is read around; a value the meter sends that cannot be right is left
  out and counted (``PollOutcome.bad_values``), the rest of the read kept. A meter that lacks
  the token registers is never sent a token.
* ``run`` is restartable: the reading service runs it under a ``Supervisor``, which reports the
  bus as ``error`` (``report_state``) while an unexpected exception keeps it from polling.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.comm_tally import CommSink, CommTally, wire_limit_s
from app.core.energy import EnergyAccount
from app.core.outbox import OutboxDelivery
from app.core.supervisor import SupervisorState
from app.drivers.capability import MeterCapability
from app.drivers.meter_values import MeterValues
from app.drivers.modbus_link import LinkConfig, MeterRead, ModbusLink
from app.drivers.profile import MeterProfile
from app.errors import (
    CrcError,
    DriverError,
    LinkDown,
    MeterException,
    NoResponse,
    NotSupported,
)
from app.storage.campus import BusRecord, MeterRecord
from app.storage.capabilities import CapabilityUpdate
from app.storage.readings import SAMPLE_EVERY_S, BusOutcome, PollOutcome

log = logging.getLogger("voltkeeper.polling")

OFFLINE_AFTER = 3
PROBE_BACKOFF_START_S = 10.0
PROBE_BACKOFF_MAX_S = 300.0
LINK_BACKOFF_MAX_S = 60.0
SLOW_POINTS_EVERY_S = 600.0
#: How often a bus looks for commands queued since (between meters and between cycles).
OUTBOX_EVERY_S = 0.5
class _BusHeld(Exception):
    def __init__(self, hold) -> None:
        super().__init__(hold.purpose)
        self.hold = hold
#: A bad value from a meter is logged (and kept as an event) at most this often per point.
BAD_VALUE_LOG_EVERY_S = 3600.0
#: Booking events that mean another meter may be answering now: learn it from scratch.
REPLACED_EVENTS = ("counter_reset", "energy_jump")


def error_kind(exc: DriverError) -> str:
    if isinstance(exc, NoResponse):
        return "timeout"
    if isinstance(exc, CrcError):
        return "crc"
    if isinstance(exc, MeterException):
        return "exception"
    if isinstance(exc, LinkDown):
        return "link"
    return "error"


@dataclass
class MeterSlot:
    meter: MeterRecord
    profile: MeterProfile
    online: bool = True
    seen: bool = False  # answered at least once since start
    consecutive_failures: int = 0
    next_probe_at: float = 0.0
    backoff_s: float = PROBE_BACKOFF_START_S
    slow_read_at: float = 0.0
    sampled_at: float = 0.0
    offline_since: float | None = None  # when it was marked offline
    offline_why: str = ""  # why: its own failures, its bus down, its bus's thread failing
    account: EnergyAccount = field(default_factory=EnergyAccount)
    capability: MeterCapability = field(default_factory=MeterCapability)
    bad_logged_at: dict[str, float] = field(default_factory=dict)  # point -> last logged


def _supports(slot: MeterSlot, action: str) -> bool:
    """False when the meter is known to lack what the control needs (its point; for a
    recharge, the token registers). A control its profile lacks is the link's to refuse."""
    control = slot.profile.controls.get(action)
    if control is None:
        return True
    if action == "recharge" and slot.capability.lacks_recharge(slot.profile):
        return False
    return not slot.capability.lacks(slot.profile, control.point)


@dataclass
class Command:
    """A control for one meter, run by the bus's poller ahead of polling."""

    meter_id: int
    action: str  # a profile control name: trip, close, keep_power_on, recharge, ...
    value: object = None
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    error: str = ""
    values: MeterValues | None = None

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


Sink = Callable[[list[PollOutcome], BusOutcome | None], None]


class BusPoller:
    #: the bus's health figures, once ``track_health`` is called
    comm: CommTally | None = None

    def __init__(self, bus: BusRecord, meters: list[tuple[MeterRecord, MeterProfile]],
                 sink: Sink, *, baselines: dict[int, tuple[int, float]] | None = None,
                 link_factory: Callable[[LinkConfig], ModbusLink] = ModbusLink,
                 clock: Callable[[], float] = time.time,
                 offline_after: int = OFFLINE_AFTER,
                 outbox: OutboxDelivery | None = None,
                 capabilities: dict[int, MeterCapability] | None = None) -> None:
        self.bus = bus
        #: A tool's hold on this bus (``core/bus_access``), set by the reading service's
        #: ``holds`` loop (the poller itself never waits on the database); and the hold this
        #: poller gave the bus up for, which that loop acknowledges in the database.
        self.hold = None
        self.gave_up_for: float | None = None
        self.config = LinkConfig.from_url(bus.link)
        self.sink = sink
        self.clock = clock
        self.offline_after = offline_after
        self.link_factory = link_factory
        self.outbox = outbox
        self.slots = [MeterSlot(m, p) for m, p in meters if m.enabled]
        for slot in self.slots:
            base = (baselines or {}).get(slot.meter.id)
            if base:
                slot.account = EnergyAccount(*base)
            cap = (capabilities or {}).get(slot.meter.id)
            if cap is not None:
                slot.capability = cap
        self._by_id = {s.meter.id: s for s in self.slots}
        self.commands: queue.Queue[Command] = queue.Queue()
        self.link: ModbusLink | None = None
        self.last_cycle_s: float | None = None
        self.cycles = 0
        self._link_backoff = 1.0
        self._down_in_row = 0  # link failures since the bus last completed a cycle
        self._outbox_error = ""  # what went wrong delivering the outbox this cycle
        self._outbox_checked = 0.0  # when the outbox was last read (monotonic)
        self._outbox_traced: set[int] = set()  # items whose failure was logged in full

    # -- commands ------------------------------------------------------------------------------
    def has_meter(self, meter_id: int) -> bool:
        return meter_id in self._by_id

    def submit(self, command: Command) -> Command:
        """Queue a control; thread-safe. It runs before the next meter's poll."""
        self.commands.put(command)
        return command

    def _run_commands(self, first: Command | None = None) -> None:
        """Run queued commands in the order they came; ``first`` was already taken off."""
        while True:
            if first is not None:
                cmd, first = first, None
            else:
                try:
                    cmd = self.commands.get_nowait()
                except queue.Empty:
                    return
            slot = self._by_id.get(cmd.meter_id)
            try:
                if slot is None:
                    raise DriverError(f"meter {cmd.meter_id} is not on bus {self.bus.name}")
                assert self.link is not None
                if not _supports(slot, cmd.action):
                    raise NotSupported(f"meter {cmd.meter_id} lacks the registers of "
                                       f"{cmd.action!r}: it does not support it")
                self.link.control(slot.meter.address, slot.profile, cmd.action, cmd.value)
                read = self.link.read(slot.meter.address, slot.profile,
                                      capability=slot.capability)
                cmd.values = read.values
                cmd.ok = True
                self._store(slot, read, self.link.last_latency_s)
            except Exception as exc:  # reported to whoever waits; never kills the bus
                cmd.ok, cmd.error = False, str(exc)
                log.warning("bus %s: %s on meter %s failed: %s", self.bus.name, cmd.action,
                            cmd.meter_id, exc)
            finally:
                cmd.done.set()

    # -- polling -------------------------------------------------------------------------------
    def _store(self, slot: MeterSlot, read: MeterRead, latency_s: float) -> None:
        values = read.values
        now = values.read_at
        events: list[tuple[str, str]] = []
        online_changed = not slot.online or not slot.seen
        if not slot.online:
            events.append(("online", self._back(slot, now)))
        slot.online, slot.seen = True, True
        slot.consecutive_failures = 0
        slot.backoff_s = PROBE_BACKOFF_START_S
        intervals: list[tuple[int, int]] = []
        days: list[tuple[str, int]] = []
        if values.energy_wh is not None:
            booking = slot.account.book(values.energy_wh, now)
            intervals, days = booking.intervals, booking.days
            events.extend(booking.events)
            for kind, detail in booking.events:
                log.warning("meter %s (bus %s/%s): %s: %s", slot.meter.id, self.bus.name,
                            slot.meter.address, kind, detail)
            if any(kind in REPLACED_EVENTS for kind, _d in booking.events):
                slot.capability.reset(slot.capability.serial)
        if values.serial and slot.meter.serial and values.serial != slot.meter.serial:
            events.append(("serial_mismatch",
                           f"meter answers with serial {values.serial}, "
                           f"expected {slot.meter.serial}"))
        if values.serial and values.serial != slot.capability.serial:
            if slot.capability.serial:  # another meter answers at this address
                slot.capability.reset(values.serial)
            else:
                slot.capability.serial = values.serial
                slot.capability.dirty = True
        events.extend(self._learned_events(slot, read))
        events.extend(self._bad_value_events(slot, read, now))
        sample = now - slot.sampled_at >= SAMPLE_EVERY_S
        if sample:
            slot.sampled_at = now
        if self.comm is not None:  # the bus's health figures (core/comm_tally)
            self.comm.read(slot.meter.id, True, latency_s, getattr(self.link, "counters", None),
                           now)
        self.sink([PollOutcome(
            meter_id=slot.meter.id, t=now, ok=True, values=values, intervals=intervals,
            days=days, latency_ms=latency_s * 1000, online=True, online_changed=online_changed,
            events=events, sample=sample, bad_values=list(read.bad),
            capability=self._learned(slot))], None)

    def _back(self, slot: MeterSlot, now: float) -> str:
        """A meter answers again: logged as back, with how long it was away and why."""
        away = "" if slot.offline_since is None else f" after {now - slot.offline_since:.0f} s"
        detail = f"back{away}: it answers again (offline: {slot.offline_why or 'unknown'})"
        log.info("bus %s: meter %s (address %s) is back%s (it was offline: %s)", self.bus.name,
                 slot.meter.id, slot.meter.address, away, slot.offline_why or "unknown")
        slot.offline_since, slot.offline_why = None, ""
        return detail

    def _mark_offline(self, why: str, error_kind: str, error: str) -> list[PollOutcome]:
        """Every meter of this bus that counts as online (answered since the start, or not yet
        polled and perhaps stored online by an earlier run) is offline now, to be probed as
        soon as the bus polls again. Returns the outcomes that say so."""
        now = self.clock()
        outcomes = []
        for slot in self.slots:
            if not slot.online:
                continue
            slot.online = False
            slot.next_probe_at = now  # probed as soon as the bus polls again
            slot.offline_since, slot.offline_why = now, why
            outcomes.append(PollOutcome(
                meter_id=slot.meter.id, t=now, ok=False, error_kind=error_kind, error=error,
                consecutive_failures=slot.consecutive_failures, online=False,
                online_changed=True, events=[("offline", why)]))
        return outcomes

    def _learned(self, slot: MeterSlot) -> CapabilityUpdate | None:
        """What to store of the meter's capability: only when it changed."""
        cap = slot.capability
        if not cap.dirty:
            return None
        cap.dirty = False
        snap = cap.snapshot()
        return CapabilityUpdate(snap.missing, snap.read_mode, snap.checked_at, snap.serial)

    def _learned_events(self, slot: MeterSlot, read: MeterRead) -> list[tuple[str, str]]:
        events = []
        if read.refused:
            documented = [n for n in read.refused if slot.profile.points[n].documented]
            optional = [n for n in read.refused if n not in documented]
            if documented:
                events.append(("refused_documented", ", ".join(documented)))
            if optional:
                events.append(("refused", ", ".join(optional)))
            log.warning("bus %s: meter %s (address %s) refuses %s: read without %s",
                        self.bus.name, slot.meter.id, slot.meter.address,
                        ", ".join(read.refused), "them" if len(read.refused) > 1 else "it")
        if read.found:
            events.append(("answers_again", ", ".join(read.found)))
        return events

    def _bad_value_events(self, slot: MeterSlot, read: MeterRead,
                          now: float) -> list[tuple[str, str]]:
        """Log each bad value (and keep it as an event) at most hourly per point."""
        events = []
        for name, why in read.bad:
            if now - slot.bad_logged_at.get(name, -BAD_VALUE_LOG_EVERY_S) < BAD_VALUE_LOG_EVERY_S:
                continue
            slot.bad_logged_at[name] = now
            log.warning("bus %s: meter %s (address %s) sent a bad %s: %s; left out",
                        self.bus.name, slot.meter.id, slot.meter.address, name, why)
            events.append(("bad_value", f"{name}: {why}"))
        return events

    def _failed(self, slot: MeterSlot, exc: DriverError) -> None:
        now = self.clock()
        slot.consecutive_failures += 1
        events: list[tuple[str, str]] = []
        online_changed = False
        if slot.online and slot.consecutive_failures >= self.offline_after:
            slot.online, online_changed = False, True
            slot.next_probe_at = now + slot.backoff_s
            why = f"{slot.consecutive_failures} failures in a row: {exc}"
            slot.offline_since, slot.offline_why = now, why
            events.append(("offline", why))
            log.warning("bus %s: meter %s (address %s) offline: %s", self.bus.name,
                        slot.meter.id, slot.meter.address, exc)
        elif not slot.online:
            slot.backoff_s = min(slot.backoff_s * 2, PROBE_BACKOFF_MAX_S)
            slot.next_probe_at = now + slot.backoff_s
        if self.comm is not None:
            self.comm.read(slot.meter.id, False, None, getattr(self.link, "counters", None), now)
        self.sink([PollOutcome(
            meter_id=slot.meter.id, t=now, ok=False, error_kind=error_kind(exc), error=str(exc),
            consecutive_failures=slot.consecutive_failures, online=slot.online,
            online_changed=online_changed, events=events,
            capability=self._learned(slot))], None)

    def poll_meter(self, slot: MeterSlot) -> None:
        assert self.link is not None
        unit = slot.meter.address
        probing = not slot.online
        groups: tuple[str, ...] = ("fast",)
        now = self.clock()
        if now - slot.slow_read_at >= SLOW_POINTS_EVERY_S:
            groups = ("fast", "slow")
        recheck = not probing and slot.capability.recheck_due(now)
        saved_config = self.link.config
        if probing:  # one try only: an offline meter must not cost its bus retries
            self.link.config = self.link.with_timeout(self.link.config.effective_timeout_s, 0)
        try:
            read = self.link.read(unit, slot.profile, groups, slot.capability, recheck=recheck)
        except LinkDown:
            raise
        except DriverError as exc:
            self._failed(slot, exc)
            return
        finally:
            self.link.config = saved_config
        if "slow" in groups:
            slot.slow_read_at = now
        self._store(slot, read, self.link.last_latency_s)

    def cycle(self) -> float:
        """Poll every meter that is online or due for a probe. Returns the cycle's seconds."""
        if self.link is None:
            self.link = self.link_factory(self.config)
        if not self.link.is_open:
            self.link.open()
        started = time.perf_counter()
        self._outbox_error = ""
        pending = self._pending_outbox()
        self._outbox_checked = time.monotonic()
        for slot in self.slots:
            self._check_hold()
            self._run_commands()
            self.deliver_due()
            if not slot.online and self.clock() < slot.next_probe_at:
                continue
            if slot.online and slot.seen and pending.get(slot.meter.id):
                self._deliver(slot, pending[slot.meter.id])
            self.poll_meter(slot)
        self._run_commands()
        self.last_cycle_s = time.perf_counter() - started
        self.cycles += 1
        self.sink([], self.bus_outcome("polling", self._outbox_error))
        return self.last_cycle_s

    def deliver_due(self, force: bool = False) -> None:
        """Deliver what was queued since the outbox was last read, to every meter of the bus
        that answers, now: a trip queued at the desk does not wait for its meter's turn in the
        cycle, nor for the next cycle. Reads the outbox at most every ``OUTBOX_EVERY_S``."""
        if self.outbox is None or self.link is None or not self.link.is_open:
            return
        if not force and time.monotonic() - self._outbox_checked < OUTBOX_EVERY_S:
            return
        self._outbox_checked = time.monotonic()
        for meter_id, items in self._pending_outbox().items():
            slot = self._by_id.get(meter_id)
            if slot is not None and slot.online and slot.seen:
                self._deliver(slot, items)

    def _pending_outbox(self) -> dict:
        if self.outbox is None:
            return {}
        try:
            return self.outbox.pending([s.meter.id for s in self.slots])
        except Exception as exc:
            log.exception("bus %s: cannot read the outbox", self.bus.name)
            self._outbox_error = f"outbox: {type(exc).__name__}: {exc}"
            return {}

    def _deliver(self, slot: MeterSlot, items: list) -> None:
        """Queued recharges and controls for this meter, in order; stop at the first that
        could not be completed (the next must not overtake it). A token waits while the meter
        is known to lack the token registers (the station then keeps its account's money and
        settles the token); anything unexpected stops this meter's items for this cycle and is
        reported as the bus's error, never the bus's end."""
        assert self.link is not None and self.outbox is not None
        for item in items:
            if item.action == "recharge" and slot.profile.can("recharge") \
                    and slot.capability.lacks_recharge(slot.profile):
                return
            try:
                state = self.outbox.deliver(self.link, slot.meter.address, slot.profile,
                                            slot.meter.serial, item, slot.capability)
            except LinkDown:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if item.id not in self._outbox_traced:
                    self._outbox_traced.add(item.id)
                    log.exception("bus %s: outbox item %s (%s on meter %s) failed",
                                  self.bus.name, item.id, item.action, slot.meter.id)
                else:
                    log.warning("bus %s: outbox item %s failed again: %s", self.bus.name,
                                item.id, reason)
                self._outbox_error = f"outbox item {item.id} (meter {slot.meter.id}): {reason}"
                return
            if state == "pending":
                return

    def track_health(self, sink: CommSink, flush_every_s: float = 60.0) -> None:
        """Count the bus's and its meters' health (``core/comm_tally``) and hand the figures
        to ``sink`` once a minute (or every ``flush_every_s``, in tests)."""
        limit = wire_limit_s(self.config, [s.profile for s in self.slots])
        self.comm = CommTally(self.bus.id, sink, wire_limit_s=limit,
                              flush_every_s=flush_every_s, clock=self.clock)

    def bus_outcome(self, state: str, error: str = "") -> BusOutcome:
        """The bus's state for the status: ``meters_online`` counts the meters that answered
        and still count as online; none while the bus is down (nothing answers through it)."""
        online = 0 if state == "down" else sum(1 for s in self.slots if s.online and s.seen)
        if self.comm is not None:  # a full cycle, once per cycle (``cycles`` moved on)
            self.comm.cycle(self.cycles, self.last_cycle_s, self.clock())
        return BusOutcome(
            bus_id=self.bus.id, state=state, last_cycle_s=self.last_cycle_s,
            last_cycle_at=self.clock() if self.last_cycle_s is not None else None, error=error,
            meters_online=online, meters_total=len(self.slots))

    def report_state(self, state: SupervisorState) -> None:
        """The supervisor's word on this bus's thread (called in it, between two runs): while it
        is in error, so is the bus; once it keeps failing, its meters are not known to answer
        (offline until a poll reads them again)."""
        if state.state != "error":
            return
        outcomes = []
        if state.failures_in_row >= self.offline_after:
            outcomes = self._mark_offline(f"its bus's thread keeps failing: {state.error}",
                                          "error", state.error)
        self.sink(outcomes, self.bus_outcome("error", state.error))

    def _link_down(self, exc: LinkDown) -> None:
        """The bus's port or gateway failed (again): the bus is down, and once it has failed
        ``offline_after`` times in a row its meters are offline (no one can read them)."""
        self._down_in_row += 1
        outcomes = []
        if self._down_in_row >= self.offline_after:
            outcomes = self._mark_offline(f"its bus is down: {exc}", "link", str(exc))
            if outcomes:
                log.warning("bus %s down %d times in a row: its %d meter(s) online until now "
                            "are offline until it answers again", self.bus.name,
                            self._down_in_row, len(outcomes))
        self.sink(outcomes, self.bus_outcome("down", str(exc)))

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set: a cycle every poll interval, commands in between.
        Restartable after an exception (the link is opened afresh)."""
        if self.link is not None:
            self.link.close()
            self.link = None
        log.info("bus %s: polling %d meters on %s", self.bus.name, len(self.slots),
                 self.config.url())
        while not stop.is_set():
            cycle_start = time.monotonic()
            try:
                self._check_hold()
                self.cycle()
                self._link_backoff = 1.0
                self._down_in_row = 0
            except _BusHeld as held:
                self._held_off(held.hold, stop)
                continue
            except LinkDown as exc:
                log.warning("bus %s down: %s (retry in %.0f s)", self.bus.name, exc,
                            self._link_backoff)
                self._link_down(exc)
                if self.link is not None:
                    self.link.close()
                self._fail_commands(str(exc))
                stop.wait(self._link_backoff)
                self._link_backoff = min(self._link_backoff * 2, LINK_BACKOFF_MAX_S)
                continue
            deadline = cycle_start + self.bus.poll_interval_s
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:  # wake at once for a command, and now and then for the outbox
                    cmd = self.commands.get(timeout=min(remaining, OUTBOX_EVERY_S))
                except queue.Empty:
                    if self.hold is not None:
                        break  # the next turn gives the bus up
                    self._deliver_between_cycles()
                    continue
                self._run_commands(first=cmd)  # failures are reported on each command
        if self.link is not None:
            self.link.close()
        self._fail_commands("reading service stopped")

    # -- a tool's hold on the bus ---------------------------------------------------------------
    def _check_hold(self) -> None:
        """A tool took the bus: leave the cycle (``run`` gives the bus up)."""
        hold = self.hold
        if hold is not None:
            raise _BusHeld(hold)

    def _held_off(self, hold, stop: threading.Event) -> None:
        """Give the bus to the tool that took it: close the link, say so, and wait until the
        hold is released or expires (a tool that died), then poll again. The reading
        service's ``holds`` loop tells the tool (``gave_up_for``)."""
        if self.link is not None:
            self.link.close()
        why = f"{hold.purpose} by {hold.holder}"
        log.info("bus %s: given to %s; polling pauses", self.bus.name, why)
        self.sink([], self.bus_outcome("held", why))
        while not stop.is_set() and hold is not None:
            self.gave_up_for = hold.taken_at
            self._fail_commands(f"bus {self.bus.name} is taken for {why}")
            stop.wait(0.2)
            hold = self.hold
        self.gave_up_for = None
        log.info("bus %s: given back; polling again", self.bus.name)

    def _deliver_between_cycles(self) -> None:
        try:
            self.deliver_due()
        except LinkDown as exc:  # the next cycle finds the bus down and says so
            log.warning("bus %s: delivering between cycles: %s", self.bus.name, exc)
            if self.link is not None:
                self.link.close()

    def _fail_commands(self, why: str) -> None:
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return
            cmd.ok, cmd.error = False, why
            cmd.done.set()
