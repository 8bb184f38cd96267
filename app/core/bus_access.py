"""Taking a bus from its poller for a tool: a scan, the meter setup, the raw register tool, a
commissioning run.

One RS485 line carries one master at a time. A tool that needs a bus writes a hold
(``BusHold``, schema 9); the reading service, in whichever process polls (``serve`` or a
window), sees it within a third of a second, its poller closes its link at the next meter, says
so (the bus's state is ``held``) and the service acknowledges; the tool then opens its own
link. When the tool is done it deletes the hold and
the poller polls again at once. A tool that dies stops renewing its hold, and the poller takes
the bus back when the hold expires (``HOLD_TTL_S``). Other buses are never touched.

When nobody polls (no live polling lease, or the bus is disabled), the tool opens the bus at
once. The hold is audited (who took which bus for what).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app.core import campus_edit
from app.core.audit import act
from app.core.operators import Operator, Permission
from app.drivers.modbus_link import LinkConfig, ModbusLink
from app.errors import UserFacingError
from app.i18n import _
from app.storage import bus_holds, lease
from app.storage.campus import BusRecord

log = logging.getLogger("voltkeeper.bus_access")

#: A hold not renewed for this long is over: the poller takes its bus back.
HOLD_TTL_S = 30.0
#: How long a tool waits for the poller to give the bus up (it looks every second; a
#: transaction in flight on a slow line finishes first).
GIVE_UP_WAIT_S = 15.0

PURPOSES = ("scan", "setup", "raw", "commissioning")


@dataclass
class TakenBus:
    """A bus a tool holds: its record and a link that nobody else uses now."""

    bus: BusRecord
    link: ModbusLink
    polled: bool  # a poller gave it up (and takes it back when the tool is done)


#: The bus named so, or a refusal naming the buses there are (one rule for every tool).
find_bus = campus_edit.find_bus


def _poller_alive(bus: BusRecord) -> bool:
    return bus.enabled and lease.holder() is not None


@contextmanager
def taken_bus(operator: Operator, bus: BusRecord, purpose: str, *,
              permission: Permission = Permission.COMMISSION,
              config: LinkConfig | None = None,
              wait_s: float = GIVE_UP_WAIT_S) -> Iterator[TakenBus]:
    """Hold ``bus`` for ``purpose`` (scan, setup, raw, commissioning) while the block runs,
    with a link of its own (``config``: the bus's link with other settings, e.g. another baud
    for a scan). Refused while another tool holds it."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    with act(operator, permission, "bus_take", target=bus.name) as a:
        ok, held = bus_holds.take(bus.id, operator.name, purpose, HOLD_TTL_S)
        if not ok:
            assert held is not None
            raise UserFacingError(_("bus {bus} is taken by {who} for {what} until it is given "
                                    "back").format(bus=bus.name, who=held.holder,
                                                   what=held.purpose))
        a.after = {"purpose": purpose}
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(bus.id, stop), daemon=True,
                               name=f"hold-{bus.name}")
    renewer.start()
    link = None
    try:
        polled = _poller_alive(bus)
        if polled:
            _wait_acknowledged(bus, wait_s)
        link = ModbusLink(config or LinkConfig.from_url(bus.link))
        yield TakenBus(bus, link, polled)
    finally:
        if link is not None:
            link.close()
        stop.set()
        renewer.join(timeout=5)
        try:
            bus_holds.release(bus.id)
        except Exception:  # the hold expires by itself
            log.exception("bus %s: could not give it back now; the poller takes it back "
                          "within %.0f s", bus.name, HOLD_TTL_S)


def _wait_acknowledged(bus: BusRecord, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        hold = bus_holds.current(bus.id)
        if hold is not None and hold.acknowledged_at is not None:
            return
        time.sleep(0.1)
    raise UserFacingError(_("the reading service did not give bus {bus} up within {seconds} s "
                            "(is its poller stuck? see status)").format(bus=bus.name,
                                                                         seconds=int(wait_s)))


def _renew(bus_id: int, stop: threading.Event) -> None:
    from app.storage.db import close_database

    try:
        while not stop.wait(HOLD_TTL_S / 3):
            try:
                bus_holds.renew(bus_id, HOLD_TTL_S)
            except Exception as exc:  # busy now: the next turn, well within the TTL
                log.warning("bus %s: could not renew the hold: %s", bus_id, exc)
    finally:
        close_database()
