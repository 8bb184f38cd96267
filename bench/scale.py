"""Scale: 10,000 meters on Modbus-TCP buses, the real service, the real window.

    python bench/scale.py [--buses 41 --meters 244 --seconds 60]

A Modbus bus addresses at most 247 meters, so 10,000 meters take 41 buses of 244 (the issue's
"40 buses" would need 250 a bus). Prints:

* the full-cycle time (slowest bus), CPU use and peak memory of the polling process (simulator
  in its own process, meter time at ``--speed``);
* the database size after a week: the polled database plus a week of interval and daily energy
  rows for every meter (the station books intervals by its own clock, so a faster meter clock
  alone does not make a week of rows; the rows are written in bulk, as this measures size);
* the window's cold start to usable (tree and status bar built) on 10,000 rooms (goal < 3 s).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buses", type=int, default=41)
    ap.add_argument("--meters", type=int, default=244)
    ap.add_argument("--seconds", type=float, default=60.0, help="polling time measured")
    ap.add_argument("--speed", type=float, default=60.0)
    ap.add_argument("--port", type=int, default=25020)
    args = ap.parse_args()
    n = args.buses * args.meters
    from app.core.energy import INTERVAL_S, local_day
    from app.core.service import ReadingService
    from app.simulator.demo_campus import create_demo_campus
    from app.storage import readings
    from app.storage.models import database

    tmp = Path(tempfile.mkdtemp())
    os.environ["VOLTKEEPER_HOME"] = str(tmp)
    db = tmp / "scale.db"
    t0 = time.perf_counter()
    create_demo_campus(db, buses=args.buses, meters=args.meters, port=args.port,
                       open_accounts=False, poll_interval_s=1.0)
    print(f"{n:,} meters on {args.buses} buses: campus database built in "
          f"{time.perf_counter() - t0:.1f} s")
    sim = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "simulate", "--buses",
                            str(args.buses), "--meters", str(args.meters), "--port",
                            str(args.port), "--speed", str(args.speed)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    try:
        assert sim.stdout is not None
        up = 0
        while up < args.buses:
            line = sim.stdout.readline()
            if not line:
                raise SystemExit("the simulator did not start")
            up += bool(re.search(r"listening on", line))
        service = ReadingService(role="bench")
        assert service.start()[0]
        try:
            warm = time.monotonic() + 300
            while (min(p.cycles for p in service.pollers.values()) < 2
                   and time.monotonic() < warm):
                time.sleep(0.2)
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            w0 = time.perf_counter()
            time.sleep(args.seconds)
            wall = time.perf_counter() - w0
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cycle = max(p.last_cycle_s or 0 for p in service.pollers.values())
            online = sum(1 for r in readings.latest() if r.online)
        finally:
            service.stop()
    finally:
        sim.terminate()
        sim.wait(10)
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / wall
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"polling: full cycle {cycle:.2f} s, {online:,} of {n:,} meters online, CPU "
          f"{cpu * 100:.0f}% of a core, peak memory {rss:.0f} MB")

    # a week of interval and daily energy for every meter (bulk rows: this measures size)
    from app.storage.models import DailyEnergy, IntervalEnergy

    week0 = int(time.time()) // INTERVAL_S * INTERVAL_S - 7 * 86400
    ids = [r.meter_id for r in readings.latest()] or list(range(1, n + 1))
    t1 = time.perf_counter()
    for day in range(7):
        with database.atomic():
            rows = [{"meter": m, "start": week0 + day * 86400 + k * INTERVAL_S,
                     "energy_wh": 25 + (m + k) % 90} for m in ids for k in range(96)]
            for i in range(0, len(rows), 5000):
                IntervalEnergy.insert_many(rows[i:i + 5000]).on_conflict_ignore().execute()
            DailyEnergy.insert_many([{"meter": m, "day": local_day(week0 + day * 86400),
                                      "energy_wh": 5000} for m in ids]) \
                .on_conflict_ignore().execute()
    database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    print(f"a week of energy written in {time.perf_counter() - t1:.0f} s; database after a week: "
          f"{size / 1e6:.0f} MB ({size / n / 1e3:.1f} kB a meter)")

    # cold start of the window on 10,000 rooms
    from PySide6.QtWidgets import QApplication

    from app.ui.app import configure_application
    from app.ui.context import build_context
    from app.ui.settings import UiSettings
    from app.views.main_window import MainWindow

    t2 = time.perf_counter()
    app = QApplication.instance() or QApplication([])
    configure_application(app)
    ctx = build_context(db, UiSettings.at(tmp / "ui.ini"), role="bench")
    window = MainWindow(ctx)
    window.show()
    app.processEvents()
    cold = time.perf_counter() - t2
    rows = window.tree.model.rowCount()
    window.close()
    ctx.close()
    print(f"window cold start to usable with {n:,} rooms: {cold:.2f} s (goal < 3 s); "
          f"top-level rows {rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
