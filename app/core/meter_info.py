"""A meter's details for the screens: its model, what it was found to lack, how it is read, the
bad values it sent and its last error. Qt-free, like ``core/queries.py``; a viewer may look.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.operators import Operator, Permission, require
from app.drivers.capability import lacks_recharge
from app.drivers.profile import ProfileError, load_profile
from app.errors import UserFacingError
from app.i18n import _
from app.storage import accounts as account_store
from app.storage import campus, capabilities, readings


@dataclass(frozen=True)
class MissingPoint:
    """A point of the meter's profile the meter refuses."""

    name: str
    documented: bool  # the maker documents it: refusing it suggests the wrong profile
    source: str  # manual, vendor-tool, inferred, voltkeeper, ...
    description: str


@dataclass(frozen=True)
class MeterDetails:
    meter_id: int
    bus: str
    address: int
    serial: str
    profile: str  # the profile's name (resources/meters/<profile>.toml)
    model: str
    vendor: str
    kind: str  # prepaid or metering
    missing: tuple[MissingPoint, ...]  # what the meter lacks, learned by reading it
    read_mode: str  # merged, no-gaps (never across undefined registers), single
    missing_checked_at: float | None  # when the missing points were last tried
    takes_tokens: bool  # can keep money (a recharge token can reach it)
    money_mode: str | None  # who keeps the money of its room's open account (None: no account)
    bad_values: int  # values it sent that could not be right, left out
    last_bad: str
    last_bad_at: float | None
    last_error: str  # its last failed poll's error
    reads: int
    failures: int
    online: bool


def meter_details(operator: Operator, meter_id: int) -> MeterDetails:
    """What is known of one meter. Raises UserFacingError for a meter that does not exist."""
    require(operator, Permission.VIEW)
    meter = next((m for m in campus.meters() if m.id == meter_id), None)
    if meter is None:
        raise UserFacingError(_("no meter {id}").format(id=meter_id))
    bus = next((b.name for b in campus.buses() if b.id == meter.bus_id), "")
    try:
        profile = load_profile(meter.profile)
    except ProfileError:
        profile = None
    cap = capabilities.get(meter_id)
    missing_names = cap.missing if cap else ()
    missing = []
    for name in missing_names:
        point = profile.points.get(name) if profile else None
        missing.append(MissingPoint(name, point.documented if point else False,
                                    point.source if point else "",
                                    point.description if point else ""))
    stats = readings.comm_stats([meter_id]).get(meter_id, {})
    latest = readings.latest([meter_id])
    account = account_store.open_account_for_node(meter.node_id) if meter.node_id else None
    return MeterDetails(
        meter_id=meter.id, bus=bus, address=meter.address, serial=meter.serial,
        profile=meter.profile, model=profile.model if profile else "",
        vendor=profile.vendor if profile else "", kind=profile.kind if profile else "",
        missing=tuple(missing), read_mode=cap.read_mode if cap else "merged",
        missing_checked_at=cap.checked_at if cap else None,
        takes_tokens=profile is not None and not lacks_recharge(profile, missing_names),
        money_mode=account.mode if account else None,
        bad_values=cap.bad_values if cap else 0, last_bad=cap.last_bad if cap else "",
        last_bad_at=cap.last_bad_at if cap else None,
        last_error=stats.get("last_error", "") or "", reads=stats.get("reads", 0) or 0,
        failures=stats.get("failures", 0) or 0,
        online=bool(latest and latest[0].online),
    )
