"""A meter's own settings, read and changed through its profile: address, baud rate, price,
power limit, malicious-load threshold, keep-power (and the other settings the profile names).

Reading and changing are the maintenance role's (``commission``). Each takes the meter's bus
from its poller (``core/bus_access.py``; other buses go on polling), does the Modbus I/O, gives
the bus back; a change is audited (``meter_setting``) with the value before and after, recorded
once the I/O is done (the audit's write transaction is never held open across the line).

A value is written and read back: the change is done only when the meter reads back what was
written.

**Address.** The new address is written at the old one (the meter answers there, then moves);
then the meter is asked at the new address. Only when it answers there is the database changed
(``Meter.address``, and the bus's pollers restart with it). If it does not, the old address is
written back (at the new address, where the meter may hear though its answers are lost, then
confirmed at the old one) and the database is left as it was; the message says whether the
meter is back at its old address or where it may be.

**Baud rate.** A meter on another speed than its bus cannot be polled, so the speed is a bus's
matter (``core/bus_speed.py``): on one meter, ``change_setting(..., "baud", ...)`` only brings a
stray meter back to its bus's speed; ``bus_speed.change_bus_baud`` sets a whole serial bus.

**Keep-power** here is the meter's own setting as maintenance sets it on site (written and read
back); for rooms, Station > Control (signed commands through the outbox, with a reason) is the
usual way. Either way the station sees it in the next reading and never trips a keep-power
meter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from app.core import bus_access
from app.core.audit import act
from app.core.changes import Changes
from app.core.operators import Operator, Permission, require
from app.core.progress import Progress, quiet
from app.drivers.modbus_link import ModbusLink
from app.drivers.profile import MeterProfile, load_profile
from app.drivers.registers import LineSettings, decode_comm, encode_comm
from app.errors import CrcError, DriverError, MeterException, NoResponse, UserFacingError
from app.i18n import N_, _
from app.storage import campus
from app.storage.campus import BusRecord, MeterRecord

#: How often, and how far apart, a meter is asked at its new setting before giving up.
CONFIRM_TRIES = 3
CONFIRM_PAUSE_S = 0.2


@dataclass(frozen=True)
class Setting:
    """A setting the tool offers: where it lives in the profile and how it is typed."""

    name: str
    label: str  # N_()
    kind: str  # address, baud, decimal, int, flag, keep_power, text
    point: str = ""  # the profile's point ("" for address/baud: the [comm] block)
    unit: str = ""


SETTINGS = (
    Setting("address", N_("Modbus address"), "address"),
    Setting("baud", N_("Baud rate"), "baud"),
    Setting("parity", N_("Parity"), "text"),
    Setting("price", N_("Price"), "decimal", "price", "yuan/kWh"),
    Setting("power_limit", N_("Power limit"), "int", "power_limit", "W"),
    Setting("load_control", N_("Power limit enforced"), "flag", "load_control"),
    Setting("malicious_detection", N_("Malicious-load detection"), "flag",
            "malicious_detection"),
    Setting("malicious_step", N_("Malicious-load threshold"), "int", "malicious_step", "W"),
    Setting("malicious_pf", N_("Malicious-load power factor"), "decimal", "malicious_pf"),
    Setting("restore_count", N_("Over-limit trips before lock-out"), "int", "restore_count"),
    Setting("keep_power", N_("Keep power"), "keep_power", "control_mode"),
)
BY_NAME = {s.name: s for s in SETTINGS}
READ_ONLY = ("parity",)


@dataclass(frozen=True)
class SettingValue:
    setting: Setting
    value: object  # None: the meter did not give it
    problem: str = ""  # why it could not be read
    writable: bool = True

    @property
    def text(self) -> str:
        return show(self.setting, self.value) if self.problem == "" else self.problem


@dataclass
class MeterSettings:
    meter: MeterRecord
    bus: str
    room: str
    model: str
    values: list[SettingValue] = field(default_factory=list)

    def get(self, name: str) -> object:
        return next((v.value for v in self.values if v.setting.name == name), None)

    def as_json(self) -> dict:
        return {"meter": self.meter.id, "bus": self.bus, "address": self.meter.address,
                "room": self.room, "model": self.model,
                "settings": {v.setting.name: (json_value(v.value) if not v.problem else None)
                             for v in self.values},
                "problems": {v.setting.name: v.problem for v in self.values if v.problem}}


@dataclass(frozen=True)
class SettingChange:
    """What a change did."""

    meter: MeterRecord
    name: str
    before: object
    after: object
    message: str
    changes: Changes = field(default_factory=Changes)


def json_value(value: object) -> object:
    return format(value, "f") if isinstance(value, Decimal) else value


def show(setting: Setting, value: object) -> str:
    if value is None:
        return "-"
    if setting.kind in ("flag", "keep_power"):
        return _("on") if value else _("off")
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    return f"{text} {setting.unit}" if setting.unit else text


# -- finding the meter ----------------------------------------------------------------------------
def find_meter(text: str) -> MeterRecord:
    """A meter by its room's number, ``#ID``/``ID`` (the database id) or ``BUS/ADDRESS``."""
    text = text.strip()
    if "/" in text:
        bus_name, _slash, address = text.rpartition("/")
        bus = bus_access.find_bus(bus_name)
        found = campus.meter_at(bus.id, int(address)) if address.isdigit() else None
        if found is None:
            raise UserFacingError(_("no meter at address {address} on bus {bus}").format(
                address=address, bus=bus.name))
        return found
    node = campus.room_numbered(text)
    if node is not None:
        meters = [m for m in campus.meters() if m.node_id == node.id]
        if len(meters) == 1:
            return meters[0]
        if meters:
            raise UserFacingError(_("room {room} has {n} meters: name one by its id ({ids})")
                                  .format(room=text, n=len(meters),
                                          ids=", ".join(f"#{m.id}" for m in meters)))
        raise UserFacingError(_("room {room} has no meter").format(room=text))
    digits = text.removeprefix("#")
    if digits.isdigit():
        found = campus.meter(int(digits))
        if found is not None:
            return found
    raise UserFacingError(_("no meter {what!r}: give a room number, a meter id (#12) or "
                            "BUS/ADDRESS").format(what=text))


def _room(meter: MeterRecord) -> str:
    if meter.node_id is None:
        return ""
    node = next((n for n in campus.nodes() if n.id == meter.node_id), None)
    return (node.code or node.name) if node is not None else ""


def _context(meter_id: int) -> tuple[MeterRecord, BusRecord, MeterProfile]:
    meter = campus.meter(meter_id)
    if meter is None:
        raise UserFacingError(_("that meter is not there any more"))
    bus = campus.bus(meter.bus_id)
    assert bus is not None
    return meter, bus, load_profile(meter.profile)


def available(profile: MeterProfile) -> list[Setting]:
    """The settings this meter's profile can read."""
    out = []
    for s in SETTINGS:
        if s.kind in ("address", "baud"):
            if profile.comm is not None and (s.kind == "address" or profile.comm.baud_byte
                                             is not None):
                out.append(s)
        elif s.name == "parity":
            if profile.comm is not None and profile.comm.parity_byte is not None:
                out.append(s)
        elif profile.has(s.point):
            out.append(s)
    return out


# -- reading -------------------------------------------------------------------------------------
def read_comm(link: ModbusLink, unit: int, profile: MeterProfile) -> tuple[bytes, LineSettings]:
    assert profile.comm is not None
    data = link.read_points(unit, profile, [profile.comm.point])[profile.comm.point]
    assert isinstance(data, bytes)
    return data, decode_comm(profile.comm, data)


def _read_values(link: ModbusLink, meter: MeterRecord, profile: MeterProfile,
                 progress: Progress) -> list[SettingValue]:
    settings = available(profile)
    out: list[SettingValue] = []
    comm: LineSettings | None = None
    comm_problem = ""
    for i, s in enumerate(settings):
        progress.step(i, len(settings), _(s.label))
        if s.kind in ("address", "baud") or s.name == "parity":
            if comm is None and not comm_problem:
                try:
                    comm = read_comm(link, meter.address, profile)[1]
                except DriverError as exc:
                    comm_problem = _("not read: {why}").format(why=exc)
            value = None if comm is None else {"address": comm.address, "baud": comm.baud,
                                               "parity": comm.parity}[s.name]
            out.append(SettingValue(s, value, comm_problem, s.name not in READ_ONLY))
            continue
        try:
            value = link.read_points(meter.address, profile, [s.point])[s.point]
        except DriverError as exc:
            out.append(SettingValue(s, None, _("not read: {why}").format(why=exc)))
            continue
        if s.kind == "keep_power":
            value = value == "keep_power"
        elif s.kind == "flag":
            value = bool(value)
        out.append(SettingValue(s, value))
    return out


def read_settings(operator: Operator, meter_id: int,
                  progress: Progress | None = None) -> MeterSettings:
    """Every setting the meter's profile has, as the meter says it now."""
    require(operator, Permission.COMMISSION)
    progress = progress or quiet()
    meter, bus, profile = _context(meter_id)
    progress.step(0, 1, _("taking bus {bus}").format(bus=bus.name))
    with bus_access.taken_bus(operator, bus, "setup") as taken:
        try:
            read_comm(taken.link, meter.address, profile) if profile.comm else \
                taken.link.read_registers(meter.address, 3, 0, 1)
        except (NoResponse, CrcError) as exc:
            raise UserFacingError(_("meter {meter} does not answer at address {address} on bus "
                                    "{bus}: {why}").format(
                meter=meter_label(meter), address=meter.address, bus=bus.name, why=exc)) from None
        except DriverError:
            pass  # it answers; each setting says what it could not read
        values = _read_values(taken.link, meter, profile, progress)
    return MeterSettings(meter, bus.name, _room(meter), profile.model, values)


def meter_label(meter: MeterRecord) -> str:
    return _room(meter) or meter.serial or f"#{meter.id}"


# -- changing ------------------------------------------------------------------------------------
def parse_value(setting: Setting, text: str, profile: MeterProfile) -> object:
    """The value typed for ``setting``, checked against the profile's range."""
    text = str(text).strip()
    bad = UserFacingError(_("{value!r} is not a value for {setting}").format(
        value=text, setting=_(setting.label)))
    if setting.kind in ("flag", "keep_power"):
        word = text.lower()
        if word in ("1", "on", "yes", "true", "开"):
            return True
        if word in ("0", "off", "no", "false", "关"):
            return False
        raise bad
    if setting.kind == "decimal":
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise bad from None
        if not value.is_finite():
            raise bad
    else:
        if not text.isdigit():
            raise bad
        value = int(text)
    if setting.kind == "address" and not 1 <= value <= 247:
        raise UserFacingError(_("a meter's Modbus address is from 1 to 247"))
    if setting.kind == "baud":
        bauds = profile.comm.baud_codes if profile.comm else ()
        if value not in bauds:
            raise UserFacingError(_("{model} can be set to {bauds} baud, not {value}").format(
                model=profile.model, bauds=", ".join(map(str, bauds)), value=value))
    if setting.point:
        point = profile.points[setting.point]
        if (point.min is not None and value < point.min) or (
                point.max is not None and value > point.max):
            raise UserFacingError(_("{setting} is {lo} to {hi}, not {value}").format(
                setting=_(setting.label), lo=point.min, hi=point.max, value=text))
    return value


def change_setting(operator: Operator, meter_id: int, name: str, value: str,
                   progress: Progress | None = None) -> SettingChange:
    """Write one setting to the meter and confirm it (see the module's text for the address
    and the baud rate)."""
    require(operator, Permission.COMMISSION)
    progress = progress or quiet()
    meter, bus, profile = _context(meter_id)
    setting = BY_NAME.get(name)
    if setting is None or setting not in available(profile) or name in READ_ONLY:
        offered = [s.name for s in available(profile) if s.name not in READ_ONLY]
        raise UserFacingError(_("{model} has no setting {name!r} to change (settings: {known})")
                              .format(model=profile.model, name=name, known=", ".join(offered)))
    new = parse_value(setting, value, profile)
    if setting.kind == "address":
        return _change_address(operator, meter, bus, profile, int(new), progress)  # type: ignore[call-overload]
    if setting.kind == "baud":
        from app.core.bus_speed import bring_to_bus_speed

        return bring_to_bus_speed(operator, meter, bus, profile, int(new), progress)  # type: ignore[call-overload]
    progress.step(0, 3, _("taking bus {bus}").format(bus=bus.name))
    with bus_access.taken_bus(operator, bus, "setup") as taken:
        link = taken.link
        progress.step(1, 3, _(setting.label))
        try:
            before = _point_value(link, meter, profile, setting)
            if setting.kind == "keep_power":
                link.control(meter.address, profile,
                             "keep_power_on" if new else "keep_power_off")
            elif setting.kind == "flag":
                link.write_point(meter.address, profile, setting.point, int(bool(new)))
            else:
                link.write_point(meter.address, profile, setting.point, new)  # type: ignore[arg-type]
            progress.step(2, 3, _("reading it back"))
            after = _point_value(link, meter, profile, setting)
        except ValueError as exc:
            raise UserFacingError(str(exc)) from None
        except DriverError as exc:
            raise UserFacingError(_("meter {meter}: {setting} was not changed: {why}").format(
                meter=meter_label(meter), setting=_(setting.label), why=exc)) from None
    record_change(operator, meter, bus, name, before, after, "" if after == new else "read back")
    if after != new:
        raise UserFacingError(_("meter {meter} took the write but reads back {after} for "
                                "{setting}, not {value}").format(
            meter=meter_label(meter), after=show(setting, after), setting=_(setting.label),
            value=show(setting, new)))
    progress.step(3, 3)
    return SettingChange(meter, name, before, after, _("{setting} of meter {meter}: {before} -> "
                                                        "{after}").format(
        setting=_(setting.label), meter=meter_label(meter), before=show(setting, before),
        after=show(setting, after)), Changes.of_nodes(meter.node_id))


def _point_value(link: ModbusLink, meter: MeterRecord, profile: MeterProfile,
                 setting: Setting) -> object:
    value = link.read_points(meter.address, profile, [setting.point])[setting.point]
    if setting.kind == "keep_power":
        return value == "keep_power"
    if setting.kind == "flag":
        return bool(value)
    return value


def record_change(operator: Operator, meter: MeterRecord, bus: BusRecord, name: str, before: object,
            after: object, detail: str = "") -> None:
    with act(operator, Permission.COMMISSION, "meter_setting",
             target=f"{bus.name}/{meter.address}", node_id=meter.node_id) as a:
        a.before = {name: json_value(before)}
        a.after = {name: json_value(after)}
        a.detail = detail


def confirm(link: ModbusLink, unit: int, profile: MeterProfile,
             check: Callable[[LineSettings], bool]) -> bool:
    """Whether the meter answers at ``unit`` on ``link`` with comm settings that pass
    ``check`` (asked a few times: a meter may take a moment to switch)."""
    for attempt in range(CONFIRM_TRIES):
        if attempt:
            time.sleep(CONFIRM_PAUSE_S)
        try:
            return check(read_comm(link, unit, profile)[1])
        except (NoResponse, CrcError):
            continue
        except MeterException:
            return False
    return False


def _change_address(operator: Operator, meter: MeterRecord, bus: BusRecord,
                    profile: MeterProfile, new: int, progress: Progress) -> SettingChange:
    old = meter.address
    assert profile.comm is not None
    if new == old:
        raise UserFacingError(_("meter {meter} is at address {address} already").format(
            meter=meter_label(meter), address=old))
    there = campus.meter_at(bus.id, new)
    if there is not None:
        raise UserFacingError(_("address {address} on bus {bus} is taken by meter {serial}")
                              .format(address=new, bus=bus.name,
                                      serial=there.serial or f"#{there.id}"))
    comm = profile.comm
    progress.step(0, 4, _("taking bus {bus}").format(bus=bus.name))
    with bus_access.taken_bus(operator, bus, "setup") as taken:
        link = taken.link
        progress.step(1, 4, _("reading the meter's settings"))
        try:
            data, _now = read_comm(link, old, profile)
        except DriverError as exc:
            raise UserFacingError(_("meter {meter} does not answer at address {address}: "
                                    "{why}; nothing was changed").format(
                meter=meter_label(meter), address=old, why=exc)) from None
        progress.step(2, 4, _("writing address {address}").format(address=new))
        try:
            link.write_point(old, profile, comm.point, encode_comm(comm, data, address=new))
        except MeterException as exc:
            raise UserFacingError(_("meter {meter} refused address {address} ({why}); nothing "
                                    "was changed").format(meter=meter_label(meter), address=new,
                                                          why=exc)) from None
        except (NoResponse, CrcError):
            pass  # it may have taken it all the same: asked at the new address below
        progress.step(3, 4, _("asking the meter at address {address}").format(address=new))
        if confirm(link, new, profile, lambda s: s.address == new):
            with act(operator, Permission.COMMISSION, "meter_setting",
                     target=f"{bus.name}/{old}", node_id=meter.node_id) as a:
                a.before, a.after = {"address": old}, {"address": new}
                campus.update_meter(meter.id, address=new)
                campus.bump_config_version()
            moved = campus.meter(meter.id)
            assert moved is not None
            progress.step(4, 4)
            return SettingChange(moved, "address", old, new, _(
                "meter {meter} answers at address {new} now (was {old}); the database "
                "follows").format(meter=meter_label(meter), new=new, old=old),
                Changes.of_nodes(meter.node_id, campus=True))
        # not there: put the old address back, the database as it was
        try:
            link.write_point(new, profile, comm.point, data)
        except DriverError:
            pass
        back = confirm(link, old, profile, lambda s: s.address == old)
    with act(operator, Permission.COMMISSION, "meter_setting_failed",
             target=f"{bus.name}/{old}", node_id=meter.node_id) as a:
        a.before = {"address": old}
        a.after = {"address": old if back else None, "tried": new}
    if back:
        raise UserFacingError(_(
            "meter {meter} did not answer at address {new}; it was set back to {old} and "
            "answers there. The database is unchanged.").format(meter=meter_label(meter), new=new,
                                                                 old=old))
    raise UserFacingError(_(
        "meter {meter} answers neither at address {new} nor at {old}; the database is unchanged "
        "(address {old}). Scan bus {bus} to find it.").format(meter=meter_label(meter), new=new,
                                                              old=old, bus=bus.name))
