"""Commissioning a bus: each meter's checklist, kept, and its record on paper.

The technician wires a bus, binds its addresses to rooms (``core/wiring_plan.py``), and runs the
checklist: the bus is taken from its poller (``core/bus_access.py``) and every meter is asked,
in turn:

* ``answers``: it answers at its address with its profile's values;
* ``serial``: the serial number it reports is the one the database has (none recorded: noted);
* ``trip``: a remote trip opens its relay (read back);
* ``close``: a remote close returns it to its prepaid logic and closes it (read back; a meter
  without money stays open by design: noted, not failed). A meter the station had tripped or
  kept on is put back as it was;
* ``energy``: its energy counter moves while it is checked (not moving is noted: a room with
  nothing switched on uses nothing);
* ``clock``: its clock against the station's; more than a minute off, it is set to the
  station's time and read back (``drivers/meter_clock.py``; a profile without clock registers:
  not available).

The run is stored (``CommissioningRun``, schema 9), audited, and printed as a PDF with a line
for the technician's signature.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.core import bus_access
from app.core.audit import act
from app.core.operators import Operator, Permission, require
from app.core.progress import Progress, quiet
from app.drivers import meter_clock
from app.drivers.meter_values import MeterValues
from app.drivers.modbus_link import ModbusLink
from app.drivers.profile import MeterProfile, load_profile
from app.errors import DriverError, LinkDown, UserFacingError
from app.i18n import N_, _
from app.storage import campus
from app.storage.db import write_transaction
from app.storage.models import CommissioningRun

log = logging.getLogger("voltkeeper.commissioning")

PASS, FAIL, NOTE, NA = "pass", "fail", "note", "n/a"
CHECKS = ("answers", "serial", "trip", "close", "energy", "clock")
CHECK_TEXT = {"answers": N_("answers"), "serial": N_("serial matches"),
              "trip": N_("trip confirmed"), "close": N_("close confirmed"),
              "energy": N_("energy counter moving"), "clock": N_("clock set")}
STATE_TEXT = {PASS: N_("pass"), FAIL: N_("FAIL"), NOTE: N_("note"), NA: N_("n/a")}


@dataclass
class MeterCheck:
    meter_id: int
    address: int
    room: str
    serial: str  # as the database has it
    found_serial: str = ""
    checks: dict[str, tuple[str, str]] = field(default_factory=dict)  # name: (state, detail)

    @property
    def failed(self) -> bool:
        return any(state == FAIL for state, _detail in self.checks.values())

    def as_json(self) -> dict:
        return {"meter": self.meter_id, "address": self.address, "room": self.room,
                "serial": self.serial, "found_serial": self.found_serial,
                "checks": {k: list(v) for k, v in self.checks.items()}, "ok": not self.failed}


@dataclass
class CommissioningResult:
    run_id: int
    bus: str
    technician: str
    started_at: float
    finished_at: float
    meters: list[MeterCheck]

    @property
    def failed(self) -> int:
        return sum(m.failed for m in self.meters)

    def as_json(self) -> dict:
        return {"run": self.run_id, "bus": self.bus, "technician": self.technician,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "meters": [m.as_json() for m in self.meters], "failed": self.failed}


def _read(link: ModbusLink, unit: int, profile: MeterProfile) -> MeterValues:
    return link.read(unit, profile, ("fast", "slow")).values


def _relay_open(values: MeterValues) -> bool | None:
    if values.relay_closed is not None:
        return not values.relay_closed
    return values.forced_trip if values.control_mode is not None else None


def check_meter(link: ModbusLink, check: MeterCheck, profile: MeterProfile, *,
                energy_wait_s: float = 2.0, clock=time.monotonic) -> MeterCheck:
    """Run the checklist on one meter through ``link`` (the bus is taken)."""
    c = check.checks
    unit = check.address
    try:
        first = _read(link, unit, profile)
    except LinkDown:
        raise
    except DriverError as exc:
        c["answers"] = (FAIL, str(exc))
        for name in CHECKS[1:]:
            c[name] = (NA, _("the meter does not answer"))
        return check
    started = clock()
    c["answers"] = (PASS, profile.model)
    # serial
    if profile.has("serial"):
        try:
            found = str(link.read_points(unit, profile, ["serial"]).get("serial", "")).strip()
        except DriverError as exc:
            found, c["serial"] = "", (FAIL, str(exc))
        check.found_serial = found
        if "serial" not in c:
            if not check.serial:
                c["serial"] = (NOTE, _("reports {found}; the database has none").format(
                    found=found))
            elif found == check.serial:
                c["serial"] = (PASS, found)
            else:
                c["serial"] = (FAIL, _("reports {found}, the database says {expected}").format(
                    found=found, expected=check.serial))
    else:
        c["serial"] = (NA, _("the profile has no serial number register"))
    # trip and close, read back; the meter is left as it was found
    if profile.can("trip") and profile.can("close"):
        before = first.control_mode
        c["trip"] = _control(link, unit, profile, "trip", want_open=True)
        c["close"] = _control(link, unit, profile, "close", want_open=False, values=first)
        if before in ("forced_trip", "keep_power"):
            try:
                link.control(unit, profile, "trip" if before == "forced_trip" else
                             "keep_power_on")
            except DriverError as exc:
                c["close"] = (FAIL, _("could not put it back to {mode}: {why}").format(
                    mode=before, why=exc))
    else:
        c["trip"] = c["close"] = (NA, _("the profile has no remote trip and close"))
    # energy: moving between the first read and now
    wait = energy_wait_s - (clock() - started)
    if wait > 0:
        time.sleep(wait)
    try:
        last = _read(link, unit, profile)
        e0, e1 = first.energy_wh, last.energy_wh
        if e0 is None or e1 is None:
            c["energy"] = (NA, _("the meter reports no energy counter"))
        elif e1 > e0:
            c["energy"] = (PASS, _("{wh} Wh in {s:.0f} s").format(wh=e1 - e0,
                                                                  s=max(energy_wait_s, 1)))
        elif e1 == e0:
            c["energy"] = (NOTE, _("not moving: nothing switched on in the room?"))
        else:
            c["energy"] = (FAIL, _("went back from {a} to {b} Wh").format(a=e0, b=e1))
    except DriverError as exc:
        c["energy"] = (FAIL, str(exc))
    c["clock"] = _clock(link, unit, profile)
    return check


#: A meter's clock this close to the station's counts as right.
CLOCK_TOLERANCE_S = 60.0


def _clock(link: ModbusLink, unit: int, profile: MeterProfile,
           now=time.time) -> tuple[str, str]:
    """Read the meter's clock; set it to the station's time when it is off (and the profile
    can write it), and read it back."""
    if not profile.has("clock"):
        return NA, _("the profile has no clock registers")

    def drift() -> float | None:
        raw = link.read_points(unit, profile, ["clock"]).get("clock")
        when = meter_clock.decode(bytes(raw)) if isinstance(raw, (bytes, bytearray)) else None
        return None if when is None else when - now()

    try:
        before = drift()
        if before is not None and abs(before) <= CLOCK_TOLERANCE_S:
            return PASS, _("right to {s:.0f} s").format(s=abs(before))
        was = _("unreadable") if before is None else _("off by {s:.0f} s").format(s=before)
        if not profile.points["clock"].writable:
            return FAIL, _("{was}; this model's clock cannot be set from the station").format(
                was=was)
        size = 2 * profile.points["clock"].count
        link.write_point(unit, profile, "clock", meter_clock.encode(now(), size))
        after = drift()
    except LinkDown:
        raise
    except DriverError as exc:
        return FAIL, str(exc)
    if after is None or abs(after) > CLOCK_TOLERANCE_S:
        return FAIL, _("{was}; set, but it reads {now} after").format(
            was=was, now=_("unreadable") if after is None else _("off by {s:.0f} s").format(
                s=after))
    return PASS, _("set ({was} before)").format(was=was)


def _control(link: ModbusLink, unit: int, profile: MeterProfile, name: str, *,
             want_open: bool, values: MeterValues | None = None) -> tuple[str, str]:
    try:
        link.control(unit, profile, name)
        after = _read(link, unit, profile)
    except LinkDown:
        raise
    except DriverError as exc:
        return FAIL, str(exc)
    is_open = _relay_open(after)
    if is_open is None:
        return NA, _("the meter reports no relay state")
    if is_open == want_open:
        return PASS, _("relay open") if is_open else _("relay closed")
    money = after.remaining_money_cents if after.remaining_money_cents is not None else (
        values.remaining_money_cents if values is not None else None)
    if not want_open and money is not None and money <= 0:
        return NOTE, _("back to its prepaid logic; no money on the meter, so it stays open")
    return FAIL, _("relay still open") if is_open else _("relay still closed")


def run_checklist(operator: Operator, bus_name: str, addresses: Sequence[int] | None = None,
                  *, progress: Progress | None = None,
                  energy_wait_s: float = 2.0) -> CommissioningResult:
    """Take the bus, check its meters (``addresses``: those only), give it back; store and
    audit the run."""
    require(operator, Permission.COMMISSION)
    progress = progress or quiet()
    bus = bus_access.find_bus(bus_name)
    nodes = {n.id: n for n in campus.nodes()}
    meters = [m for m in campus.meters(bus.id) if m.enabled
              and (not addresses or m.address in set(addresses))]
    if not meters:
        raise UserFacingError(_("bus {bus} has no meters to check").format(bus=bus.name))
    started = time.time()
    checks: list[MeterCheck] = []
    with bus_access.taken_bus(operator, bus, "commissioning") as taken:
        taken.link.open()
        for k, m in enumerate(meters):
            node = nodes.get(m.node_id) if m.node_id else None
            room = (node.code or node.name) if node is not None else ""
            progress.step(k, len(meters), _("meter {address} ({room})").format(
                address=m.address, room=room or "-"))
            check = MeterCheck(m.id, m.address, room, m.serial)
            try:
                profile = load_profile(m.profile)
            except Exception as exc:
                check.checks["answers"] = (FAIL, _("its profile {name} cannot be used: {why}")
                                           .format(name=m.profile, why=exc))
                checks.append(check)
                continue
            checks.append(check_meter(taken.link, check, profile, energy_wait_s=energy_wait_s))
        progress.step(len(meters), len(meters))
    finished = time.time()
    results = [c.as_json() for c in checks]
    failed = sum(c.failed for c in checks)
    with act(operator, Permission.COMMISSION, "commissioning", target=bus.name) as a:
        run_id = CommissioningRun.insert(
            bus=bus.id, bus_name=bus.name, technician=operator.name, started_at=started,
            finished_at=finished, results=json.dumps(results, ensure_ascii=False),
            passed=len(checks) - failed, failed=failed).execute()
        a.after = {"run": run_id, "meters": len(checks), "failed": failed}
    return CommissioningResult(run_id, bus.name, operator.name, started, finished, checks)


def stored_run(run_id: int) -> CommissioningResult:
    row = CommissioningRun.get_or_none(CommissioningRun.id == run_id)
    if row is None:
        raise UserFacingError(_("no commissioning run {id}").format(id=run_id))
    meters = [MeterCheck(r["meter"], r["address"], r["room"], r["serial"], r["found_serial"],
                         {k: (v[0], v[1]) for k, v in r["checks"].items()})
              for r in json.loads(row.results)]
    return CommissioningResult(row.id, row.bus_name, row.technician, row.started_at,
                               row.finished_at, meters)


def write_record(result: CommissioningResult, path: Path) -> Path:
    """The run's record as a PDF (A4 landscape, the CJK font embedded), signed by the
    technician; remembered with the run."""
    from app.core.report_pdf import write_pdf
    from app.core.report_tables import Column, Document, Section, Table

    columns = [Column(_("address"), width=0.6), Column(_("room"), width=0.8),
               Column(_("serial"), width=1.4)]
    columns += [Column(_(CHECK_TEXT[name]), width=1.0) for name in CHECKS]
    columns.append(Column(_("result"), width=0.6))
    rows = []
    notes = []
    for m in result.meters:
        row = [str(m.address), m.room or "-", m.found_serial or m.serial or "-"]
        for name in CHECKS:
            state, detail = m.checks.get(name, (NA, ""))
            row.append(_(STATE_TEXT[state]))
            if state in (FAIL, NOTE) and detail:
                notes.append(f"{m.address} ({m.room or '-'}) {_(CHECK_TEXT[name])}: {detail}")
        row.append(_("FAIL") if m.failed else _("OK"))
        rows.append(row)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(result.started_at))
    doc = Document(
        kind="commissioning", title=_("Commissioning record: bus {bus}").format(bus=result.bus),
        campus=campus.campus_name(), period=when,
        subtitle=_("Checked {time} by {technician}").format(time=when,
                                                           technician=result.technician),
        made=_("checked by {technician}").format(technician=result.technician),
        tables=[Table(_("Meters checked: {n}, failed: {failed}").format(
            n=len(result.meters), failed=result.failed), "commissioning", columns,
            [Section("", rows)], total=False)],
        notes=notes, signature_labels=(_("Technician: ____________"),
                                       _("Reviewed by: ____________"),
                                       _("Date: ____________")))
    write_pdf(doc, Path(path))
    with write_transaction():
        CommissioningRun.update(pdf=str(path)).where(
            CommissioningRun.id == result.run_id).execute()
    return Path(path)
