"""A bus's speed, and a meter's: set through the meters' own comm settings (the profile's
``[comm]``), each confirmed at the new speed before anything else follows.

A meter on another speed than its bus cannot be polled, so the speed is a bus's matter:
``change_bus_baud`` sets every meter of a serial bus to the new speed, each confirmed at it, and
then the bus's link (the reading service restarts that bus's poller at the new speed); if one
meter fails, the meters already changed are set back and the bus stays as it was. On one meter
(``meter_setup.change_setting(..., "baud", ...)``) the speed can only be brought back to its
bus's: the meter is looked for at the profile's other speeds. A gateway (Modbus-TCP, RTU over
TCP) has its own serial speed the station cannot set: refused there.
"""

from __future__ import annotations

from dataclasses import replace

from app.core import bus_access
from app.core.audit import act
from app.core.meter_setup import SettingChange, confirm, meter_label, read_comm, record_change
from app.core.operators import Operator, Permission, require
from app.core.progress import Progress, quiet
from app.drivers.modbus_link import LinkConfig, ModbusLink
from app.drivers.profile import MeterProfile, load_profile
from app.drivers.registers import encode_comm
from app.errors import CrcError, DriverError, MeterException, NoResponse, UserFacingError
from app.i18n import _
from app.storage import campus
from app.storage.campus import BusRecord, MeterRecord


def _serial(bus: BusRecord) -> LinkConfig:
    config = LinkConfig.from_url(bus.link)
    if config.transport != "rtu":
        raise UserFacingError(_("bus {bus} is behind a gateway ({link}): its serial speed is "
                                "the gateway's; set it there").format(bus=bus.name,
                                                                       link=bus.link))
    return config


def bring_to_bus_speed(operator: Operator, meter: MeterRecord, bus: BusRecord,
                        profile: MeterProfile, baud: int, progress: Progress) -> SettingChange:
    config = _serial(bus)
    if baud != config.baud:
        raise UserFacingError(_(
            "a meter at another speed than its bus ({bus}: {baud} baud) cannot be polled; set "
            "the speed of the whole bus instead (meter-setup --bus {bus} --set baud={value})")
            .format(bus=bus.name, baud=config.baud, value=baud))
    assert profile.comm is not None
    with bus_access.taken_bus(operator, bus, "setup") as taken:
        taken.link.close()
        speeds = [config.baud] + [b for b in profile.comm.baud_codes if b != config.baud]
        for i, speed in enumerate(speeds):
            progress.step(i, len(speeds) + 1, _("looking for the meter at {baud} baud").format(
                baud=speed))
            with ModbusLink(replace(config, baud=speed)) as link:
                try:
                    data, _now = read_comm(link, meter.address, profile)
                except DriverError:
                    continue
                if speed == config.baud:
                    raise UserFacingError(_("meter {meter} answers at {baud} baud, its bus's "
                                            "speed, already").format(meter=meter_label(meter),
                                                                     baud=speed))
                _set_speed(link, meter, profile, data, baud)
            if _confirm_at(config, meter.address, profile, baud):
                record_change(operator, meter, bus, "baud", speed, baud)
                return SettingChange(meter, "baud", speed, baud, _(
                    "meter {meter} is at {baud} baud now, its bus's speed (was {old})").format(
                    meter=meter_label(meter), baud=baud, old=speed))
            _put_back(config, meter, profile, data, baud, speed)
            raise UserFacingError(_("meter {meter} did not answer at {baud} baud; it was set "
                                    "back to {old} baud").format(meter=meter_label(meter),
                                                                 baud=baud, old=speed))
    raise UserFacingError(_("meter {meter} answers at none of {bauds} baud").format(
        meter=meter_label(meter), bauds=", ".join(map(str, speeds))))


def _set_speed(link: ModbusLink, meter: MeterRecord, profile: MeterProfile, data: bytes,
               baud: int) -> None:
    assert profile.comm is not None
    try:
        link.write_point(meter.address, profile, profile.comm.point,
                         encode_comm(profile.comm, data, baud=baud))
    except MeterException as exc:
        raise UserFacingError(_("meter {meter} refused {baud} baud ({why})").format(
            meter=meter_label(meter), baud=baud, why=exc)) from None
    except (NoResponse, CrcError):
        pass  # asked at the new speed next


def _confirm_at(config: LinkConfig, unit: int, profile: MeterProfile, baud: int) -> bool:
    with ModbusLink(replace(config, baud=baud)) as link:
        return confirm(link, unit, profile, lambda s: s.baud == baud)


def _put_back(config: LinkConfig, meter: MeterRecord, profile: MeterProfile, data: bytes,
              tried: int, old: int) -> bool:
    """Write the old comm block at the speed tried (the meter may hear it), confirm at the
    old speed."""
    with ModbusLink(replace(config, baud=tried)) as link:
        try:
            link.write_point(meter.address, profile, profile.comm.point, data)  # type: ignore[union-attr]
        except DriverError:
            pass
    return _confirm_at(config, meter.address, profile, old)


def change_bus_baud(operator: Operator, bus_name: str, baud: int,
                    progress: Progress | None = None) -> str:
    """Set every meter of a serial bus to ``baud``, each confirmed at it, then the bus's link.
    When a meter fails, the ones already changed are set back and the bus stays as it was."""
    require(operator, Permission.COMMISSION)
    progress = progress or quiet()
    bus = bus_access.find_bus(bus_name)
    config = _serial(bus)
    meters = [m for m in campus.meters(bus.id) if m.enabled]
    if baud == config.baud:
        raise UserFacingError(_("bus {bus} runs at {baud} baud already").format(bus=bus.name,
                                                                                baud=baud))
    profiles = {m.id: load_profile(m.profile) for m in meters}
    for m in meters:
        p = profiles[m.id]
        if p.comm is None or baud not in p.comm.baud_codes:
            raise UserFacingError(_("meter {meter} ({model}) cannot be set to {baud} baud")
                                  .format(meter=meter_label(m), model=p.model, baud=baud))
    done: list[tuple[MeterRecord, bytes]] = []
    with bus_access.taken_bus(operator, bus, "setup") as taken:
        taken.link.close()
        for i, m in enumerate(meters):
            progress.step(i, len(meters) + 1, _("meter {meter}").format(meter=meter_label(m)))
            p = profiles[m.id]
            problem = ""
            with ModbusLink(config) as link:
                try:
                    data, _now = read_comm(link, m.address, p)
                except DriverError as exc:
                    problem = str(exc)
                else:
                    try:
                        _set_speed(link, m, p, data, baud)
                    except UserFacingError as exc:
                        problem = str(exc)
            if not problem and _confirm_at(config, m.address, p, baud):
                done.append((m, data))
                continue
            restored = [_put_back(config, d, profiles[d.id], b, baud, config.baud)
                        for d, b in done]
            if not problem:
                _put_back(config, m, p, data, baud, config.baud)
            raise UserFacingError(_(
                "meter {meter} did not take {baud} baud ({why}); {n} meters changed before it "
                "were set back ({back} confirmed); bus {bus} stays at {old} baud").format(
                meter=meter_label(m), baud=baud, why=problem or _("no answer at the new speed"),
                n=len(done), back=sum(restored), bus=bus.name, old=config.baud))
        new_link = replace(config, baud=baud).url()
        with act(operator, Permission.COMMISSION, "bus_baud", target=bus.name) as a:
            a.before, a.after = {"link": bus.link}, {"link": new_link, "meters": len(meters)}
            campus.update_bus(bus.id, link=new_link)
            campus.bump_config_version()
    progress.step(len(meters) + 1, len(meters) + 1)
    return _("bus {bus} and its {n} meters run at {baud} baud now (was {old})").format(
        bus=bus.name, n=len(meters), baud=baud, old=config.baud)
