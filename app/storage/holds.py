"""Why the station keeps relays open (``RelayHold``), its automatic trips and restores
(``ControlLog``) and the last relay command each meter was sent (see ``core/relay_holds``)."""

from __future__ import annotations

from dataclasses import dataclass

from peewee import fn

from app.storage.models import Account, ControlLog, LatestReading, Meter, Outbox, RelayHold

#: Outbox actions that move a relay (keep-power moves it too, but is not the station's).
RELAY_ACTIONS = ("trip", "close")
KEEP_ACTIONS = ("keep_power_on", "keep_power_off")


@dataclass(frozen=True)
class HoldRecord:
    id: int
    meter_id: int
    reason: str
    source: str
    since: float
    restore_at: float | None
    overridden_by: str
    detail: str

    @property
    def effective(self) -> bool:
        return not self.overridden_by


@dataclass(frozen=True)
class RelayState:
    """What the station knows of a meter's relay: its control mode and when it was read,
    and the last trip or close it was sent (action, state, when)."""

    meter_id: int
    control_mode: str | None
    read_at: float | None
    last_action: str | None
    last_state: str | None
    last_at: float | None
    keep_action: str | None = None  # the last keep_power_on / keep_power_off command
    keep_state: str | None = None
    keep_at: float | None = None

    @property
    def keep_power(self) -> bool:
        """In keep-power, or about to be: a keep-power command not yet seen in a reading
        counts over the reading (an automatic trip queued after it would undo it)."""
        if self.keep_action is not None and (self.keep_state == "pending" or self.read_at is None
                                             or (self.keep_at or 0) >= self.read_at):
            return self.keep_action == "keep_power_on"
        return self.control_mode == "keep_power"


def _record(h: RelayHold) -> HoldRecord:
    return HoldRecord(h.id, h.meter_id, h.reason, h.source, h.since, h.restore_at,
                      h.overridden_by, h.detail)


def holds(meter_ids: list[int] | None = None, *, reason: str | None = None,
          source: str | None = None) -> list[HoldRecord]:
    if meter_ids is not None and len(meter_ids) > 500:
        out = [h for k in range(0, len(meter_ids), 500)
               for h in holds(meter_ids[k:k + 500], reason=reason, source=source)]
        return sorted(out, key=lambda h: h.id)
    q = RelayHold.select()
    if meter_ids is not None:
        q = q.where(RelayHold.meter.in_(meter_ids))
    if reason is not None:
        q = q.where(RelayHold.reason == reason)
    if source is not None:
        q = q.where(RelayHold.source == source)
    return [_record(h) for h in q.order_by(RelayHold.id)]


def add_hold(meter_id: int, reason: str, source: str, since: float,
             restore_at: float | None, detail: str) -> int | None:
    """A new hold; None when the meter already has one for this reason and source."""
    found = RelayHold.get_or_none((RelayHold.meter == meter_id) & (RelayHold.reason == reason)
                                  & (RelayHold.source == source))
    if found is not None:
        return None
    return RelayHold.insert(meter=meter_id, reason=reason, source=source, since=since,
                            restore_at=restore_at, detail=detail).execute()


def delete_holds(hold_ids: list[int]) -> int:
    return sum(RelayHold.delete().where(RelayHold.id.in_(hold_ids[k:k + 500])).execute()
               for k in range(0, len(hold_ids), 500))


def override_holds(hold_ids: list[int], by: str) -> None:
    for k in range(0, len(hold_ids), 500):
        RelayHold.update(overridden_by=by).where(
            RelayHold.id.in_(hold_ids[k:k + 500])).execute()


def due_restores(now: float) -> list[HoldRecord]:
    return [_record(h) for h in RelayHold.select().where(
        RelayHold.restore_at.is_null(False) & (RelayHold.restore_at <= now))]


def hold_sources(reason: str) -> set[str]:
    """The sources (e.g. schedules' names) holding meters for ``reason``."""
    return {x for (x,) in RelayHold.select(RelayHold.source).where(
        RelayHold.reason == reason).distinct().tuples()}


def accounts_held_for(reason: str, account_ids: list[int]) -> set[int]:
    """Which of the accounts have a meter held for ``reason``."""
    out: set[int] = set()
    for k in range(0, len(account_ids), 500):
        out.update(a for (a,) in Account.select(Account.id).join(
            Meter, on=(Meter.node == Account.node)).join(
            RelayHold, on=(RelayHold.meter == Meter.id)).where(
            Account.id.in_(account_ids[k:k + 500]) & (RelayHold.reason == reason)).tuples())
    return out


def held_meters() -> set[int]:
    """Meters with an effective hold."""
    return {m for (m,) in RelayHold.select(RelayHold.meter).where(
        RelayHold.overridden_by == "").distinct().tuples()}


def log(t: float, meter_id: int, action: str, reason: str) -> None:
    ControlLog.insert(t=t, meter=meter_id, action=action, reason=reason).execute()


def restores_since(meter_id: int, t: float, reasons: tuple[str, ...]) -> int:
    """How many automatic closes for ``reasons`` the meter had since ``t``."""
    return (ControlLog.select(fn.COUNT(ControlLog.id))
            .where((ControlLog.meter == meter_id) & (ControlLog.action == "close")
                   & ControlLog.reason.in_(reasons) & (ControlLog.t >= t)).scalar()) or 0


def relay_states(meter_ids: list[int]) -> dict[int, RelayState]:
    """Per meter, its read control mode and its last trip or close command, in bulk."""
    out: dict[int, RelayState] = {}
    for k in range(0, len(meter_ids), 500):
        chunk = meter_ids[k:k + 500]
        modes = {m: (mode, t) for m, mode, t in LatestReading.select(
            LatestReading.meter, LatestReading.control_mode, LatestReading.read_at).where(
            LatestReading.meter.in_(chunk)).tuples()}
        last = _last_commands(chunk, RELAY_ACTIONS)
        keep = _last_commands(chunk, KEEP_ACTIONS)
        for m in chunk:
            mode, read_at = modes.get(m, (None, None))
            out[m] = RelayState(m, mode, read_at, *last.get(m, (None, None, None)),
                                *keep.get(m, (None, None, None)))
    return out


def _last_commands(meter_ids: list[int], actions: tuple[str, ...]
                   ) -> dict[int, tuple[str, str, float]]:
    """Per meter, its last command among ``actions`` that was not withdrawn or failed:
    (action, state, updated_at)."""
    last_ids = (Outbox.select(fn.MAX(Outbox.id)).where(
        Outbox.meter.in_(meter_ids) & Outbox.action.in_(actions)
        & Outbox.state.not_in(("withdrawn", "failed"))).group_by(Outbox.meter))
    return {m: (a, s, t) for m, a, s, t in Outbox.select(
        Outbox.meter, Outbox.action, Outbox.state, Outbox.updated_at).where(
        Outbox.id.in_(last_ids)).tuples()}


def enabled_meters_of_nodes(node_ids: list[int]) -> dict[int, int]:
    """{meter id: node id} of the enabled meters of ``node_ids``."""
    out: dict[int, int] = {}
    for k in range(0, len(node_ids), 500):
        out.update({m: n for m, n in Meter.select(Meter.id, Meter.node).where(
            Meter.node.in_(node_ids[k:k + 500]) & (Meter.enabled == True)  # noqa: E712
        ).tuples()})
    return out


def meter_nodes(meter_ids: list[int]) -> dict[int, int]:
    """{meter id: its room's node id} (meters in no room left out)."""
    out: dict[int, int] = {}
    for k in range(0, len(meter_ids), 500):
        out.update({m: n for m, n in Meter.select(Meter.id, Meter.node).where(
            Meter.id.in_(meter_ids[k:k + 500]) & Meter.node.is_null(False)).tuples()})
    return out
