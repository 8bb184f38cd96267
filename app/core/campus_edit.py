"""Buses and meters added, edited, moved and removed: the acts that take a site live without
touching the database by hand (the window's "Buses and meters", ``main.py bus`` and
``main.py meter``).

Each act is the maintenance role's (``commission``: maintenance and administrators), checked and
audited with its before and after, and bumps the campus's bus configuration
(``storage.campus.bump_config_version``): a running reading service restarts the pollers of the
buses that changed and leaves the others polling.

A meter's history (readings, energy, commands) belongs to it and goes with it when it is
removed; so a meter that was read is not removed, nor taken out of its room, while its room has
an open account (the account's energy and money would be lost to billing), and no meter while a
recharge's token still waits to reach it. A meter added by mistake and never read may go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from app.core.audit import act
from app.core.changes import NOTHING, Changes
from app.core.operators import Operator, Permission, require
from app.drivers.modbus_link import TRANSPORTS, LinkConfig
from app.drivers.profile import ProfileError, available_profiles, load_profile
from app.errors import ConfigError, UserFacingError
from app.i18n import _, ngettext
from app.storage import accounts as account_store
from app.storage import campus
from app.storage.campus import BusRecord, MeterRecord

MIN_INTERVAL_S, MAX_INTERVAL_S = 0.1, 3600.0
MAX_NAME = 40
MAX_SERIAL = 32
LINK_KEYS = {"baud", "parity", "stop_bits", "timeout", "retries"}
LINK_EXAMPLES = "rtu:///dev/ttyUSB0?baud=9600&parity=N, tcp://HOST:PORT, rtu-tcp://HOST:PORT"


@dataclass(frozen=True)
class CampusEdit:
    """What an act did: the bus or meter after it (None once removed) and what changed."""

    bus: BusRecord | None = None
    meter: MeterRecord | None = None
    changes: Changes = NOTHING


@dataclass(frozen=True)
class MeterRow:
    """A meter as the lists show it: its bus's name and its room's number."""

    meter: MeterRecord
    bus: str
    room: str  # "" when it serves no room


@dataclass(frozen=True)
class BusSetup:
    """Every bus and meter, the rooms meters can serve and the meter profiles there are."""

    buses: list[BusRecord] = field(default_factory=list)
    meters: list[MeterRow] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)

    def meters_on(self, bus_id: int) -> list[MeterRow]:
        return [r for r in self.meters if r.meter.bus_id == bus_id]


# -- what is there ------------------------------------------------------------------------------
def setup(operator: Operator) -> BusSetup:
    require(operator, Permission.VIEW)
    buses = campus.buses()
    names = {b.id: b.name for b in buses}
    rows = [MeterRow(m, names.get(m.bus_id, str(m.bus_id)), (n.code or n.name) if n else "")
            for m, n in campus.meters_with_nodes()]
    rooms = sorted(n.code for n in campus.nodes() if n.kind in ("room", "shop") and n.code)
    return BusSetup(buses, rows, rooms, available_profiles())


def find_bus(name: str) -> BusRecord:
    found = campus.bus_named(name)
    if found is None:
        known = ", ".join(b.name for b in campus.buses()) or "–"
        raise UserFacingError(_("no bus {name!r} (buses: {known})").format(name=name,
                                                                          known=known))
    return found


def find_meter(bus_name: str, address: int) -> MeterRecord:
    bus = find_bus(bus_name)
    found = campus.meter_at(bus.id, address)
    if found is None:
        raise UserFacingError(_("no meter at address {address} on bus {bus}").format(
            address=address, bus=bus.name))
    return found


# -- checking what the operator gave ------------------------------------------------------------
def _link_problem(text: str) -> str:
    """What is wrong with a link address, in the operator's words ("" when nothing is)."""
    parts = urlsplit(text)
    if "://" not in text or parts.scheme not in TRANSPORTS:
        return _("a link starts with rtu://, tcp:// or rtu-tcp://")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - LINK_KEYS)
    if unknown:
        return _("unknown settings: {keys}").format(keys=", ".join(unknown))
    q = {k: v[-1] for k, v in query.items()}
    if parts.scheme == "rtu" and not parts.path:
        return _("a serial (rtu) link needs its device, e.g. rtu:///dev/ttyUSB0")
    if parts.scheme != "rtu":
        try:
            port = parts.port
        except ValueError:
            port = -1
        if not parts.hostname:
            return _("a {kind} link needs a host, e.g. {kind}://10.0.0.7:502").format(
                kind=parts.scheme)
        if port is not None and not 0 < port < 65536:
            return _("a port is from 1 to 65535")
    try:
        baud, stop_bits = int(q.get("baud", 9600)), int(q.get("stop_bits", 1))
        float(q.get("timeout", 1))
        int(q.get("retries", 1))
    except ValueError:
        return _("baud, stop_bits and retries are whole numbers, timeout a number of seconds")
    if not 300 <= baud <= 921_600 or stop_bits not in (1, 2):
        return _("baud is from 300 to 921600, stop_bits 1 or 2")
    if q.get("parity", "N").upper() not in ("N", "E", "O"):
        return _("parity is N, E or O")
    return ""


def check_link(link: str) -> str:
    """The link address in its one canonical form, or a refusal that says how to write it."""
    text = link.strip()
    problem = _link_problem(text)
    if not problem:
        try:
            return LinkConfig.from_url(text).url()
        except ConfigError as exc:  # what the checks above did not foresee
            problem = str(exc)
    raise UserFacingError(_("bad link {link!r}: {problem}; write it as one of: {examples}")
                          .format(link=text, problem=problem, examples=LINK_EXAMPLES))


def _check_name(name: str, bus_id: int | None = None) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise UserFacingError(_("a bus's name is 1 to {n} characters").format(n=MAX_NAME))
    other = campus.bus_named(name)
    if other is not None and other.id != bus_id:
        raise UserFacingError(_("there is a bus {name} already").format(name=other.name))
    return name


def _check_interval(seconds: float) -> float:
    if not isinstance(seconds, int | float) or math.isnan(seconds) \
            or not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise UserFacingError(_("a poll interval is from {lo} to {hi} seconds").format(
            lo=MIN_INTERVAL_S, hi=int(MAX_INTERVAL_S)))
    return float(seconds)


def _check_address(bus: BusRecord, address: int, meter_id: int | None = None) -> int:
    if isinstance(address, bool) or not isinstance(address, int) or not 1 <= address <= 247:
        raise UserFacingError(_("a meter's Modbus address is from 1 to 247"))
    there = campus.meter_at(bus.id, address)
    if there is not None and there.id != meter_id:
        raise UserFacingError(_("address {address} on bus {bus} is taken by meter {serial}")
                              .format(address=address, bus=bus.name,
                                      serial=there.serial or f"#{there.id}"))
    return address


def _check_serial(serial: str, meter_id: int | None = None) -> str:
    serial = serial.strip()
    if len(serial) > MAX_SERIAL or not serial.isprintable():
        raise UserFacingError(_("a meter's serial number is at most {n} characters").format(
            n=MAX_SERIAL))
    if serial and any(m.id != meter_id for m in campus.meters_with_serial(serial)):
        raise UserFacingError(_("there is a meter with serial number {serial} already")
                              .format(serial=serial))
    return serial


def check_profile(name: str) -> str:
    name = name.strip()
    try:
        load_profile(name)
    except ProfileError as exc:
        known = ", ".join(available_profiles()) or "–"
        if name.endswith(".toml") or name in available_profiles():
            raise UserFacingError(_("the meter profile {name!r} is refused: {problem}").format(
                name=name, problem=exc)) from None
        raise UserFacingError(_("no meter profile {name!r} (profiles: {known})").format(
            name=name, known=known)) from None
    return name


def _room(code: str | None) -> tuple[int | None, str]:
    """The node of room ``code`` (None and "" for no room)."""
    if code is None or not code.strip():
        return None, ""
    node = campus.room_numbered(code)
    if node is None:
        raise UserFacingError(_("no room or shop numbered {room!r}").format(room=code.strip()))
    return node.id, node.code


def _bus(bus_id: int) -> BusRecord:
    found = campus.bus(bus_id)
    if found is None:
        raise UserFacingError(_("that bus is not there any more"))
    return found


def _meter(meter_id: int) -> MeterRecord:
    found = campus.meter(meter_id)
    if found is None:
        raise UserFacingError(_("that meter is not there any more"))
    return found


def _bus_json(b: BusRecord) -> dict:
    return {"name": b.name, "link": b.link, "poll_interval_s": b.poll_interval_s,
            "enabled": b.enabled}


def _room_code(node_id: int | None) -> str:
    if node_id is None:
        return ""
    for n in campus.nodes():
        if n.id == node_id:
            return n.code or n.name
    return ""


def _meter_json(m: MeterRecord) -> dict:
    bus = campus.bus(m.bus_id)
    return {"bus": bus.name if bus else m.bus_id, "address": m.address, "serial": m.serial,
            "profile": m.profile, "room": _room_code(m.node_id), "enabled": m.enabled}


def _meter_target(m: MeterRecord) -> str:
    bus = campus.bus(m.bus_id)
    return f"{bus.name if bus else m.bus_id}/{m.address}"


def _must_stay(m: MeterRecord, removing: bool) -> None:
    """Refuse removing the meter (or taking it out of its room) while its room has an open
    account billed from it (a meter never read yet, added by mistake, may go) or a recharge
    still waits to reach it (controls and settings that wait go with it)."""
    where = _meter_target(m)
    doing = _("cannot remove meter {meter}").format(meter=where) if removing else \
        _("cannot take meter {meter} out of its room").format(meter=where)
    if m.node_id is not None and campus.was_read(m.id):
        account = account_store.open_account_for_node(m.node_id)
        if account is not None:
            raise UserFacingError(_("{doing}: {why}").format(doing=doing, why=_(
                "its room {room} has the open account {account} (its energy is billed from "
                "this meter); close the account first, or add the new meter to the room and "
                "disable this one").format(room=_room_code(m.node_id), account=account.number)))
    waiting = campus.pending_commands(m.id, ("recharge",))
    if waiting:
        raise UserFacingError(_("{doing}: {why}").format(doing=doing, why=ngettext(
            "{n} recharge still waits to reach it; let it reach the meter first (the meter "
            "must answer while the station polls)",
            "{n} recharges still wait to reach it; let them reach the meter first (the meter "
            "must answer while the station polls)", waiting).format(n=waiting)))


# -- buses --------------------------------------------------------------------------------------
def add_bus(operator: Operator, name: str, link: str, poll_interval_s: float = 5.0, *,
            enabled: bool = True) -> CampusEdit:
    """A new bus (its link checked: ``rtu:///dev/ttyUSB0?baud=9600&parity=N``,
    ``tcp://host:port``, ``rtu-tcp://host:port``); a running service starts polling it."""
    with act(operator, Permission.COMMISSION, "bus_add", target=name.strip()) as a:
        name = _check_name(name)
        link = check_link(link)
        interval = _check_interval(poll_interval_s)
        bus_id = campus.add_bus(name, link, interval)
        if not enabled:
            campus.update_bus(bus_id, enabled=False)
        campus.bump_config_version()
        bus = _bus(bus_id)
        a.target, a.after = bus.name, _bus_json(bus)
    return CampusEdit(bus=bus, changes=Changes(campus=True))


def edit_bus(operator: Operator, bus_id: int, *, name: str | None = None,
             link: str | None = None, poll_interval_s: float | None = None,
             enabled: bool | None = None) -> CampusEdit:
    """Rename a bus, give it another link or poll interval, or switch its polling off or on."""
    if name is None and link is None and poll_interval_s is None and enabled is None:
        raise UserFacingError(_("say what to change: the name, the link, the poll interval or "
                                "whether it is polled"))
    try:
        return _edit_bus(operator, bus_id, name, link, poll_interval_s, enabled)
    except _Unchanged as same:
        return CampusEdit(bus=same.record)


def _edit_bus(operator: Operator, bus_id: int, name: str | None, link: str | None,
              poll_interval_s: float | None, enabled: bool | None) -> CampusEdit:
    with act(operator, Permission.COMMISSION, "bus_edit") as a:
        old = _bus(bus_id)
        fields: dict[str, object] = {}
        if name is not None:
            fields["name"] = _check_name(name, bus_id)
        if link is not None:
            fields["link"] = check_link(link)
        if poll_interval_s is not None:
            fields["poll_interval_s"] = _check_interval(poll_interval_s)
        if enabled is not None:
            fields["enabled"] = bool(enabled)
        a.target, a.before = old.name, _bus_json(old)
        campus.update_bus(bus_id, **fields)
        new = _bus(bus_id)
        a.after = _bus_json(new)
        if new == old:
            raise _Unchanged(new)
        campus.bump_config_version()
    return CampusEdit(bus=new, changes=Changes(campus=True))


def remove_bus(operator: Operator, bus_id: int) -> CampusEdit:
    """Remove a bus that has no meter left (a running service stops polling it)."""
    with act(operator, Permission.COMMISSION, "bus_remove") as a:
        old = _bus(bus_id)
        on_it = campus.count_meters_on(bus_id)
        if on_it:
            raise UserFacingError(ngettext(
                "bus {bus} still has {n} meter: move it to another bus or remove it first",
                "bus {bus} still has {n} meters: move them to another bus or remove them first",
                on_it).format(bus=old.name, n=on_it))
        a.target, a.before = old.name, _bus_json(old)
        campus.delete_bus(bus_id)
        campus.bump_config_version()
    return CampusEdit(changes=Changes(campus=True))


# -- meters -------------------------------------------------------------------------------------
def add_meter(operator: Operator, bus_id: int, address: int, profile: str, serial: str = "",
              room: str | None = None, *, enabled: bool = True) -> CampusEdit:
    """A new meter on a bus at a Modbus address (1 to 247, one meter an address on a bus),
    read through ``profile``, serving the room numbered ``room`` (or none yet)."""
    with act(operator, Permission.COMMISSION, "meter_add") as a:
        bus = _bus(bus_id)
        address = _check_address(bus, address)
        profile = check_profile(profile)
        serial = _check_serial(serial)
        node_id, _code = _room(room)
        meter_id = campus.add_meter(bus.id, address, profile, serial, node_id)
        if not enabled:
            campus.update_meter(meter_id, enabled=False)
        campus.bump_config_version()
        meter = _meter(meter_id)
        a.target, a.node_id, a.after = _meter_target(meter), node_id, _meter_json(meter)
    return CampusEdit(meter=meter, changes=Changes.of_nodes(node_id, campus=True))


def edit_meter(operator: Operator, meter_id: int, *, address: int | None = None,
               serial: str | None = None, profile: str | None = None,
               enabled: bool | None = None) -> CampusEdit:
    """Another address on its bus, serial number or profile, or its polling off or on."""
    if address is None and serial is None and profile is None and enabled is None:
        raise UserFacingError(_("say what to change: the address, the serial number, the "
                                "profile or whether it is polled"))
    try:
        return _edit_meter(operator, meter_id, address, serial, profile, enabled)
    except _Unchanged as same:
        return CampusEdit(meter=same.record)


def _edit_meter(operator: Operator, meter_id: int, address: int | None, serial: str | None,
                profile: str | None, enabled: bool | None) -> CampusEdit:
    with act(operator, Permission.COMMISSION, "meter_edit") as a:
        old = _meter(meter_id)
        fields: dict[str, object] = {}
        if address is not None:
            fields["address"] = _check_address(_bus(old.bus_id), address, meter_id)
        if serial is not None:
            fields["serial"] = _check_serial(serial, meter_id)
        if profile is not None:
            fields["profile"] = check_profile(profile)
        if enabled is not None:
            fields["enabled"] = bool(enabled)
        a.target, a.node_id, a.before = _meter_target(old), old.node_id, _meter_json(old)
        campus.update_meter(meter_id, **fields)
        new = _meter(meter_id)
        a.after = _meter_json(new)
        if new == old:
            raise _Unchanged(new)
        campus.bump_config_version()
    return CampusEdit(meter=new, changes=Changes.of_nodes(new.node_id, campus=True))


def move_meter(operator: Operator, meter_id: int, *, bus_id: int | None = None,
               address: int | None = None, room: str | None = None) -> CampusEdit:
    """Move a meter to another bus and/or address (rewired), and/or another room (``room``
    "" takes it out of its room). It is not taken from a room with an open account."""
    if bus_id is None and address is None and room is None:
        raise UserFacingError(_("say where to: another bus, another address or another room"))
    try:
        return _move_meter(operator, meter_id, bus_id, address, room)
    except _Unchanged as same:
        return CampusEdit(meter=same.record)


def _move_meter(operator: Operator, meter_id: int, bus_id: int | None, address: int | None,
                room: str | None) -> CampusEdit:
    with act(operator, Permission.COMMISSION, "meter_move") as a:
        old = _meter(meter_id)
        to_bus = _bus(bus_id if bus_id is not None else old.bus_id)
        to_address = address if address is not None else old.address
        fields: dict[str, object] = {"bus": to_bus.id,
                                     "address": _check_address(to_bus, to_address, meter_id)}
        if room is not None:
            node_id, _code = _room(room)
            if node_id != old.node_id:
                if old.node_id is not None:
                    _must_stay(old, removing=False)
                fields["node"] = node_id
        a.target, a.node_id, a.before = _meter_target(old), old.node_id, _meter_json(old)
        campus.update_meter(meter_id, **fields)
        new = _meter(meter_id)
        a.after = _meter_json(new)
        if new == old:
            raise _Unchanged(new)
        campus.bump_config_version()
    return CampusEdit(meter=new, changes=Changes.of_nodes(old.node_id, new.node_id,
                                                          campus=True))


def remove_meter(operator: Operator, meter_id: int) -> CampusEdit:
    """Remove a meter and its history (readings, energy, commands). Refused while its room has
    an open account or a recharge waits for it: the message says what to do."""
    with act(operator, Permission.COMMISSION, "meter_remove") as a:
        old = _meter(meter_id)
        _must_stay(old, removing=True)
        a.target, a.node_id, a.before = _meter_target(old), old.node_id, _meter_json(old)
        campus.delete_meter(meter_id)
        campus.bump_config_version()
    return CampusEdit(changes=Changes.of_nodes(old.node_id, campus=True))


class _Unchanged(Exception):
    """Nothing changed: the act's transaction is rolled back, no audit entry is written."""

    def __init__(self, record: BusRecord | MeterRecord) -> None:
        super().__init__()
        self.record = record
