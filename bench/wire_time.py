"""How close one bus's poll cycle comes to the RS485 wire's own limit, through the station's
driver, and what one silent meter adds to the cycle.

27 simulated meters on one bus, paced by the simulator at the real wire time of every byte
(``--wire-baud``: request, 3.5-character gap, the meter's turnaround, response, gap), read once
each with ``ModbusLink.read_meter`` (the fast group), over a pty and over RTU-over-TCP. The
limit is the sum of the wire times of those transactions (``registers.wire_time`` with the
profile's turnaround): no master can read the bus faster.

    python bench/wire_time.py [--meters 27] [--baud 9600] [--parity N] [--cycles 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.drivers.modbus_link import LinkConfig, ModbusLink
from app.drivers.profile import MeterProfile, load_profile
from app.drivers.registers import plan_reads, read_frame_sizes, wire_time
from app.errors import NoResponse
from app.simulator import start_simulator

GOAL = 1.10


def wire_limit(profile: MeterProfile, meters: int, baud: int, parity: str) -> float:
    """Seconds the wire needs to read every meter's fast group once."""
    turnaround = profile.serial.turnaround_ms / 1000
    blocks = plan_reads(profile, profile.poll_points(("fast",)))
    per_meter = sum(wire_time(*read_frame_sizes(b.count), baud, parity, 1, turnaround)
                    for b in blocks)
    return meters * per_meter


def cycle(link: ModbusLink, profile: MeterProfile, meters: int,
          silent: int | None = None) -> list[float]:
    """One pass over the bus: seconds each meter took (the silent one's until it gave up)."""
    times = []
    for unit in range(1, meters + 1):
        t0 = time.perf_counter()
        try:
            link.read_meter(unit, profile)
        except NoResponse:
            if unit != silent:
                raise
        times.append(time.perf_counter() - t0)
    return times


def bench(transport: str, args: argparse.Namespace, profile: MeterProfile) -> dict[str, float]:
    with start_simulator(buses=1, meters=args.meters, transport=transport, speed=0,
                         wire_baud=args.baud, wire_parity=args.parity,
                         profile=profile) as sim, \
            ModbusLink(LinkConfig.from_url(sim.endpoints[0])) as link:
        link.read_meter(1, profile)  # open the port, warm up
        cycles = [cycle(link, profile, args.meters) for _ in range(args.cycles)]
        silent = (args.meters + 1) // 2
        sim.set_faults(f"1.{silent}:offline")
        with_silent = cycle(link, profile, args.meters, silent)
        per_meter = statistics.median(t for c in cycles for t in c)
        return {"measured": statistics.median(sum(c) for c in cycles),
                "with_silent": sum(with_silent), "lost": with_silent[silent - 1],
                "added": with_silent[silent - 1] - per_meter,
                "timeout": link.config.effective_timeout_s, "tries": link.config.retries + 1}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meters", type=int, default=27)
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--parity", choices=("N", "E"), default="N")
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--profile", default="acrel-ddsy1352")
    ap.add_argument("--transports", default="pty,rtu-tcp")
    args = ap.parse_args()
    profile = load_profile(args.profile)
    blocks = plan_reads(profile, profile.poll_points(("fast",)))
    limit = wire_limit(profile, args.meters, args.baud, args.parity)
    print(f"{args.meters} meters ({profile.name}, fast group: {len(blocks)} reads of "
          f"{'+'.join(str(b.count) for b in blocks)} registers) on one bus at {args.baud} "
          f"8{args.parity}1, turnaround {profile.serial.turnaround_ms} ms")
    print(f"wire-time limit for one cycle: {limit:.3f} s "
          f"({limit / args.meters * 1000:.1f} ms a meter)")
    worst = 0.0
    for transport in args.transports.split(","):
        r = bench(transport, args, profile)
        ratio = r["measured"] / limit
        worst = max(worst, ratio)
        print(f"\n{transport}: measured {r['measured']:.3f} s a cycle (median of {args.cycles}), "
              f"limit {limit:.3f} s, ratio {ratio:.3f} "
              f"({'meets' if ratio <= GOAL else 'misses'} the goal of {GOAL:.2f})")
        print(f"{transport}: one silent meter adds {r['added']:.3f} s to a cycle: it takes "
              f"{r['lost']:.3f} s ({r['tries']} tries x {r['timeout']:.3f} s timeout) instead "
              f"of a meter's {r['measured'] / args.meters:.3f} s (cycle with it: "
              f"{r['with_silent']:.3f} s)")
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
