"""Storage cost per meter-year: a year of 15-minute interval energy, daily totals, the latest
reading, statistics and the rolling sample window, written through the real storage layer
into a real SQLite file. Prints bytes per meter-year.

    python bench/storage_budget.py [--meters 20]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core.energy import INTERVAL_S, local_day
from app.drivers.meter_values import MeterValues
from app.storage import campus, readings
from app.storage.db import open_database
from app.storage.models import database
from app.storage.readings import PollOutcome


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--meters", type=int, default=20)
    ap.add_argument("--days", type=int, default=365)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "budget.db"
        open_database(path)
        root = campus.add_node(None, "campus", "c")
        bus = campus.add_bus("B01", "tcp://127.0.0.1:1")
        ids = [campus.add_meter(bus, i + 1, "acrel-ddsy1352", f"{i:012d}",
                                campus.add_node(root, "room", f"r{i}", f"r{i}"))
               for i in range(args.meters)]
        empty = path.stat().st_size + Path(str(path) + "-wal").stat().st_size
        rng = random.Random(1)
        t0 = int(time.time()) // INTERVAL_S * INTERVAL_S - args.days * 86400
        started = time.perf_counter()
        energy = {m: 1_000_000 for m in ids}
        for day in range(args.days):
            batch = []
            for k in range(96):
                start = t0 + day * 86400 + k * INTERVAL_S
                for m in ids:
                    wh = rng.randint(0, 150)
                    energy[m] += wh
                    batch.append(PollOutcome(
                        m, start + 899.0, True,
                        values=MeterValues(start + 899.0,
                                           energy_kwh=Decimal(energy[m]).scaleb(-3),
                                           active_power_w=wh * 4.0),
                        intervals=[(start, wh)], days=[(local_day(start), wh)],
                        latency_ms=5.0))
            readings.write_batch(batch)
        elapsed = time.perf_counter() - started
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        database.execute_sql("VACUUM")
        size = path.stat().st_size
    per_meter_year = (size - empty) / args.meters * 365 / args.days
    print(f"meters: {args.meters}, days: {args.days}, intervals: "
          f"{args.meters * args.days * 96:,} rows written in {elapsed:.1f} s")
    print(f"database: {size / 1e6:.1f} MB; per meter-year: {per_meter_year / 1e6:.2f} MB")
    print(f"324 meters (the seed's campus): {per_meter_year * 324 / 1e6:.0f} MB a year; "
          f"10,000 meters: {per_meter_year * 10_000 / 1e9:.1f} GB a year")
    return 0


if __name__ == "__main__":
    sys.exit(main())
