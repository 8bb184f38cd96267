"""The energy analysis of the whole campus: how long does a year take?

    python bench/energy_analysis.py [--rooms 10000 --days 365 --interval-days 2]

Builds a campus of ``--rooms`` rooms (one meter each, 25 buildings of 10 floors) in a temporary
SQLite file with ``--days`` days of daily energy (plus the 28 days before, for the norms), the
last ``--interval-days`` days of 15-minute energy, and a nightly lights-out schedule for the
first building; then prints the seconds each question of ``core/energy_analysis`` takes for the
campus and for one building, and ``analyse`` (what the window asks) as a whole.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core import energy_analysis as ea
from app.core import energy_anomalies
from app.core.operators import Operator, Role
from app.storage import campus, rules
from app.storage.db import open_database
from app.storage.models import DailyEnergy, IntervalEnergy, database


def build(db: Path, rooms: int, days: int, interval_days: int, last: date) -> tuple[int, int]:
    open_database(db)
    root = campus.add_node(None, "campus", "bench")
    meters: list[int] = []
    buildings: list[int] = []
    per_building = max(1, rooms // 25)
    with database.atomic():
        for k in range(rooms):
            if k % per_building == 0:
                buildings.append(campus.add_node(root, "building", f"B{len(buildings) + 1}"))
            if k % 40 == 0:
                floor = campus.add_node(buildings[-1], "floor", f"{k // 40 % 10 + 1}F")
            node = campus.add_node(floor, "room", f"r{k}", f"{len(buildings)}-{k % 1000:03d}")
            if k % 200 == 0:
                bus = campus.add_bus(f"B{k // 200 + 1:02d}", f"tcp://127.0.0.1:{k // 200 + 1}")
            meters.append(campus.add_meter(bus, k % 200 + 1, "acrel-ddsy1352", f"{k:012d}",
                                           node))
    first = last - timedelta(days=days - 1 + energy_anomalies.NORM_DAYS)
    batch: list[tuple] = []

    def flush(model, fields) -> None:
        model.insert_many(batch, fields=fields).execute()
        batch.clear()

    with database.atomic():
        for n in range((last - first).days + 1):
            day = (first + timedelta(days=n)).isoformat()
            for k, m in enumerate(meters):
                batch.append((m, day, 2_000 + (k * 37 + n * 11) % 3_000))
                if len(batch) >= 5_000:
                    flush(DailyEnergy, [DailyEnergy.meter, DailyEnergy.day,
                                        DailyEnergy.energy_wh])
        if batch:
            flush(DailyEnergy, [DailyEnergy.meter, DailyEnergy.day, DailyEnergy.energy_wh])
    with database.atomic():
        for n in range(interval_days):
            day = last - timedelta(days=n)
            t0 = int(datetime(day.year, day.month, day.day).timestamp())
            for m in meters:
                for slot in range(96):
                    batch.append((m, t0 + slot * 900, 20 + slot % 7))
                if len(batch) >= 9_600:
                    flush(IntervalEnergy, [IntervalEnergy.meter, IntervalEnergy.start,
                                           IntervalEnergy.energy_wh])
        if batch:
            flush(IntervalEnergy, [IntervalEnergy.meter, IntervalEnergy.start,
                                   IntervalEnergy.energy_wh])
    rules.save_schedule("lights-out", buildings[0], "",
                        [{"days": list(range(7)), "off": "23:00", "on": "06:00"}], True, "b")
    return root, buildings[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rooms", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--interval-days", type=int, default=2)
    ap.add_argument("--db", type=Path, default=None,
                    help="keep the campus in this file (reused when it is there)")
    args = ap.parse_args()
    viewer = Operator("bench", Role.VIEWER)
    last = date.today() - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        if args.db is not None and args.db.exists():
            open_database(args.db)
            root, building = 1, 2  # the campus, then the first building
        else:
            root, building = build(args.db or Path(tmp) / "bench.db", args.rooms, args.days,
                                   args.interval_days, last)
        print(f"built {args.rooms} rooms, {args.days} days: {time.perf_counter() - started:.1f} s")
        for name, node in (("campus", root), ("building", building)):
            for label, ask in (
                    ("daily use", lambda n=node: ea.daily_use(viewer, n, first, last)),
                    ("intraday", lambda n=node: ea.intraday(viewer, n, last)),
                    ("month vs last year", lambda n=node: ea.month_vs_last_year(viewer, n, last)),
                    ("top 10", lambda n=node: ea.top_consumers(viewer, n, first, last)),
                    ("anomalies", lambda n=node: ea.anomalies(viewer, n, first, last)),
                    ("analyse (all)", lambda n=node: ea.analyse(viewer, n, first, last))):
                t = time.perf_counter()
                ask()
                print(f"{name:9s} {label:20s} {time.perf_counter() - t:7.2f} s")


if __name__ == "__main__":
    main()
