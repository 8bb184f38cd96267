"""Trip and close the whole seed campus through ``core/control``: how close to the wire?

    python bench/batch_control.py [--buses 12 --meters 27 --baud 9600 --poll-interval 5]

Starts ``main.py simulate --transport pty --wire-baud 9600`` as its own process (12 buses of 27
meters, every byte paced at the baud plus the meter's turnaround, as ``poll_cycle.py`` does), a
demo database pointing at it (the seed's layout and poll interval, no accounts opened, so that
billing queues no command of its own), and the reading service in this process
(``ReadingService``, a thread per bus). Once every meter is online it runs
``control.control`` with a system operator on every meter of the campus (all buildings and
shops: the campus root's selection) for ``trip``, then for ``close``, and prints per action: the
meters confirmed and failed, the seconds from queuing to the last confirmation, the wire-time
limit and the ratio.

What goes on the wire for one command (``core/outbox.py`` run by ``core/polling.py``): the
control write (FC10 of the profile's control point, ``control_mode``: 2 registers) and the
read-back that confirms it, a read of ``control_mode`` alone (2 registers). The poller then
reads the meter's fast points as its ordinary poll (``poll_meter``), which is not needed to
confirm the command. The limit printed as **the** limit (and the ratio) is the one the issue
names: every meter's write and ``control_mode`` read-back, at the baud 8N1 with the profile's
turnaround (``registers.wire_time``, as ``wire_time.py`` and ``poll_cycle.py`` use), summed per
bus, the slowest bus (buses run in parallel). Printed beside it: the limit of what the poller
really sends while delivering (write + read-back + the fast-point poll of every meter: one
poll cycle with the commands in it), and the ratio to that. A ratio well above the second one
means the commands waited for a poll cycle to begin; the per-bus timeline printed after it
(queued, current cycle's end, first and last confirmation, taken from the outbox's own
``updated_at`` and the pollers' cycle times) shows where the time went. (The bench queues each
action just after the buses, which run in step, have begun a cycle: the outbox is read once at a
cycle's start, so this is close to the worst phase; queued mid-cycle, a batch waits half a
cycle less.)
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from poll_cycle import start_simulator  # noqa: E402  (the same simulator start: bench/)


def limits(profile_name: str, per_bus: dict[str, int], baud: int) -> dict[str, float]:
    """Wire-time limits (s) of one command to each of ``per_bus`` meters, slowest bus:
    ``command``: the control write and the ``control_mode`` read-back; ``as_sent``: those
    plus the fast-point poll the poller makes of each meter after delivering."""
    from app.drivers.profile import load_profile
    from app.drivers.registers import plan_reads, read_frame_sizes, wire_time, write_frame_sizes

    profile = load_profile(profile_name)
    turnaround = profile.serial.turnaround_ms / 1000
    parity, stop = "N", 1  # 8N1, as the issue asks
    point = profile.points[profile.controls["trip"].point]
    write = wire_time(*write_frame_sizes(point.count, point.write_function), baud, parity, stop,
                      turnaround)
    back = sum(wire_time(*read_frame_sizes(b.count), baud, parity, stop, turnaround)
               for b in plan_reads(profile, [point]))
    poll = sum(wire_time(*read_frame_sizes(b.count), baud, parity, stop, turnaround)
               for b in plan_reads(profile, profile.poll_points(("fast",))))
    worst = max(per_bus.values())
    return {"write": write, "back": back, "poll": poll, "command": worst * (write + back),
            "as_sent": worst * (write + back + poll), "cycle": worst * poll}


def instrument(service) -> dict[int, list[tuple[float, float]]]:
    """Record each bus's cycles as (start, end) wall times (the bench's own wrapper around the
    poller's ``cycle``; nothing in it changes what the poller does)."""
    cycles: dict[int, list[tuple[float, float]]] = {}
    for poller in service.pollers.values():
        log = cycles.setdefault(poller.bus.id, [])

        def timed(inner=poller.cycle, log=log):
            t0 = time.time()
            try:
                return inner()
            finally:
                log.append((t0, time.time()))

        poller.cycle = timed
    return cycles


def run_action(operator, chosen, action: str, wait_s: float, bus_of: dict[int, int],
               cycles: dict[int, list[tuple[float, float]]]) -> dict:
    from app.core import control
    from app.storage.models import Outbox

    seen: dict[str, float] = {}

    def told(o) -> None:
        if o.outcome in ("confirmed", "failed"):
            seen.setdefault(o.meter, time.time())

    t0 = time.time()
    outcomes = control.control(operator, chosen, action, f"bench: {action} the campus",
                               selection="campus", wait_s=wait_s, on_outcome=told)
    returned = time.time() - t0
    rows = list(Outbox.select(Outbox.id, Outbox.meter, Outbox.state, Outbox.created_at,
                              Outbox.updated_at)
                .where(Outbox.created_at >= t0 - 1, Outbox.action == control.ACTIONS[action])
                .tuples())
    queued = min(r[3] for r in rows)
    applied = [r for r in rows if r[2] == "applied"]
    per_bus: dict[int, list[float]] = {}
    for _id, meter, _s, _c, updated in applied:
        per_bus.setdefault(bus_of[meter], []).append(updated)
    timeline = {}
    for bus_id, times in per_bus.items():
        runs = cycles.get(bus_id, [])
        current = next(((s, e) for s, e in runs if s <= queued < e), None)
        nxt = next((s for s, _e in runs if s >= queued), None)
        timeline[bus_id] = {"current_start": current[0] - queued if current else None,
                            "current_end": current[1] - queued if current else None,
                            "next_start": nxt - queued if nxt is not None else None,
                            "first": min(times) - queued, "last": max(times) - queued}
    return {"outcomes": outcomes, "returned": returned, "queued": queued,
            "confirmed": sum(o.outcome == "confirmed" for o in outcomes),
            "failed": [o for o in outcomes if o.outcome != "confirmed"],
            "last": max((r[4] for r in applied), default=queued) - queued,
            "timeline": timeline}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buses", type=int, default=12)
    ap.add_argument("--meters", type=int, default=27)
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--profile", default="acrel-ddsy1352")
    ap.add_argument("--poll-interval", type=float, default=None,
                    help="each bus's poll interval in s (default: the seed's)")
    ap.add_argument("--wait", type=float, default=120.0, help="control's wait_s per action")
    ap.add_argument("--online-timeout", type=float, default=180.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    tmp = Path(tempfile.mkdtemp(prefix="batch-control-"))
    os.environ["VOLTKEEPER_HOME"] = str(tmp)  # the command key is made here, not in ~
    from app.core import control
    from app.core.operators import Operator
    from app.core.service import ReadingService
    from app.simulator.demo_campus import create_demo_campus
    from app.storage import campus, readings
    from app.storage.models import Bus

    sim, urls = start_simulator(args.buses, args.meters, args.baud)
    service = None
    try:
        db = tmp / "bench.db"
        extra = {} if args.poll_interval is None else {"poll_interval_s": args.poll_interval}
        create_demo_campus(db, buses=args.buses, meters=args.meters, open_accounts=False,
                           profile=args.profile, **extra)
        for k, url in enumerate(urls, start=1):
            Bus.update(link=url).where(Bus.name == f"B{k:02d}").execute()
        interval = {b.poll_interval_s for b in campus.buses()}
        service = ReadingService(role="bench", db_path=db)
        assert service.start()[0], "the bench did not get the polling lease"
        cycles = instrument(service)
        n = args.buses * args.meters
        t_start = time.monotonic()
        online = 0
        while time.monotonic() - t_start < args.online_timeout:
            online = sum(1 for r in readings.latest() if r.online)
            if online >= n:
                break
            time.sleep(0.5)
        print(f"{args.buses} buses x {args.meters} meters ({args.profile}) on ptys at "
              f"{args.baud} 8N1, poll interval {'/'.join(f'{i:g}' for i in interval)} s: "
              f"{online} of {n} online after {time.monotonic() - t_start:.1f} s")
        if online < n:
            print("not every meter came online: no measurement")
            return 1
        settle = time.monotonic() + 60  # two cycles more on every bus: the plain cycle's time
        while min(len(c) for c in cycles.values()) < 3 and time.monotonic() < settle:
            time.sleep(0.2)
        root = next(nd for nd in campus.nodes() if nd.parent_id is None)
        chosen = control.targets(building=root.name)  # the tree under the campus
        bus_names = {b.id: b.name for b in campus.buses()}
        bus_of = {m.id: m.bus_id for m in campus.meters()}
        per_bus: dict[str, int] = {}
        for t in chosen:
            per_bus[t.meter.split("/")[0]] = per_bus.get(t.meter.split("/")[0], 0) + 1
        lim = limits(args.profile, per_bus, args.baud)
        print(f"targets: {len(chosen)} meters (every building and shop under {root.name}), "
              f"up to {max(per_bus.values())} a bus")
        print(f"wire time a meter: write {lim['write'] * 1000:.1f} ms + control_mode read-back "
              f"{lim['back'] * 1000:.1f} ms (the poller's fast-point poll after it: "
              f"{lim['poll'] * 1000:.1f} ms)")
        print(f"limit of the writes and read-backs (slowest bus): {lim['command']:.2f} s; "
              f"of what the poller sends delivering them (with its fast polls): "
              f"{lim['as_sent']:.2f} s")
        operator = Operator.system("bench")
        first_queued = None
        for action in ("trip", "close"):
            r = run_action(operator, chosen, action, args.wait, bus_of, cycles)
            first_queued = first_queued or r["queued"]
            ratio = r["last"] / lim["command"]
            print(f"\n{action}: {r['confirmed']} confirmed, {len(r['failed'])} failed; last "
                  f"confirmation {r['last']:.2f} s after queuing (control returned after "
                  f"{r['returned']:.2f} s); limit {lim['command']:.2f} s, ratio {ratio:.2f} "
                  f"(to the as-sent limit {lim['as_sent']:.2f} s: "
                  f"{r['last'] / lim['as_sent']:.2f})")
            for o in r["failed"][:10]:
                print(f"  failed: {o.room} {o.meter}: {o.reason}")
            tl = r["timeline"]
            if tl:
                waits = [v["first"] for v in tl.values()]
                spans = [v["last"] - v["first"] for v in tl.values()]
                print(f"  per bus: first confirmation after {min(waits):.2f}-{max(waits):.2f} s "
                      f"(median {statistics.median(waits):.2f} s); first to last "
                      f"{min(spans):.2f}-{max(spans):.2f} s (median "
                      f"{statistics.median(spans):.2f} s)")
                print("  bus  cycle running at queuing: began    ended  next cycle began  "
                      "first    last")
                for bus_id in sorted(tl):
                    v = tl[bus_id]

                    def show(x):
                        return "      -" if x is None else f"{x:+7.2f}"

                    print(f"  {bus_names[bus_id]:<4} {show(v['current_start']):>26}  "
                          f"{show(v['current_end'])}  {show(v['next_start']):>16}  "
                          f"{v['first']:+6.2f}  {v['last']:+6.2f}")
        plain = [e - s for runs in cycles.values() for s, e in runs[1:] if e < first_queued]
        if plain:  # cycles with no command in them (not the first: it reads the slow group)
            print(f"\npoll cycle without commands: mean {statistics.mean(plain):.2f} s over "
                  f"{len(plain)} bus cycles (wire limit {lim['cycle']:.2f} s)")
    finally:
        if service is not None:
            service.stop()
        sim.terminate()
        sim.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
