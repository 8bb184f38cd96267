"""The seed's campus polled by the real service, in the real window: how close to the wire?

    python bench/poll_cycle.py [--buses 12 --meters 27 --baud 9600 --cycles 3]

Starts ``main.py simulate --transport pty --wire-baud 9600`` as its own process (12 buses of 27
meters, every byte paced at 9600 baud plus the meter's turnaround), a demo database pointing at
it, and the campus window (offscreen) polling it through one QThread per bus. Prints, for a
healthy campus and again with one silent meter per bus: the full-cycle time (the slowest bus),
the wire-time limit of one cycle (every transaction's frames, gaps and turnaround at that baud),
their ratio (goal <= 1.15), the process's CPU use, and the UI thread's worst stall while
polling (goal < 50 ms), measured by a 10 ms timer's lateness.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def wire_limit(profile_name: str, meters: int, baud: int) -> float:
    from app.drivers.profile import load_profile
    from app.drivers.registers import plan_reads, read_frame_sizes, wire_time

    profile = load_profile(profile_name)
    turnaround = profile.serial.turnaround_ms / 1000
    per_meter = sum(wire_time(*read_frame_sizes(b.count), baud, "N", 1, turnaround)
                    for b in plan_reads(profile, profile.poll_points()))
    return per_meter * meters


def start_simulator(buses: int, meters: int, baud: int, faults: str = ""
                    ) -> tuple[subprocess.Popen, list[str]]:
    """The simulator on ptys at ``baud`` wire pacing; its output is drained so it never
    blocks on a full pipe."""
    cmd = [sys.executable, str(ROOT / "main.py"), "simulate", "--buses", str(buses),
           "--meters", str(meters), "--transport", "pty", "--wire-baud", str(baud),
           "--seed", "1", "--speed", "1"]
    if faults:
        cmd += ["--faults", faults]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=ROOT)
    urls: list[str] = []
    assert proc.stdout is not None
    while len(urls) < buses:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the simulator did not start")
        m = re.search(r"listening on (\S+)", line)
        if m:
            urls.append(m.group(1) + f"?baud={baud}")
    out = proc.stdout
    threading.Thread(target=lambda: [None for _ in out], daemon=True).start()
    return proc, urls


def run(buses: int, meters: int, baud: int, cycles: int, faults: str) -> dict[str, float]:
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from app.simulator.demo_campus import create_demo_campus
    from app.storage.models import Bus
    from app.ui.app import configure_application
    from app.ui.context import build_context
    from app.ui.settings import UiSettings
    from app.views.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    configure_application(app)
    sim, urls = start_simulator(buses, meters, baud, faults)
    tmp = tempfile.mkdtemp()
    try:
        db = Path(tmp) / "bench.db"
        create_demo_campus(db, buses=buses, meters=meters, open_accounts=False)
        for k, url in enumerate(urls, start=1):
            Bus.update(link=url, poll_interval_s=0.0).where(Bus.name == f"B{k:02d}").execute()
        ctx = build_context(db, UiSettings.at(Path(tmp) / "ui.ini"), role="bench")
        window = MainWindow(ctx)
        window.show()
        ctx.start()
        service = ctx.source.service
        assert service is not None, "the window did not take the polling lease"
        worst_stall = 0.0
        clock = QElapsedTimer()
        clock.start()
        last = [clock.elapsed()]

        def tick() -> None:
            nonlocal worst_stall
            now = clock.elapsed()
            worst_stall = max(worst_stall, (now - last[0] - 10) / 1000)
            last[0] = now

        timer = QTimer()
        timer.timeout.connect(tick)
        timer.start(10)
        # warm-up: every bus through one cycle (connections, first slow-group reads)
        target = {p.bus.id: p.cycles + 4 for p in service.pollers.values()}
        while any(p.cycles < target[p.bus.id] for p in service.pollers.values()):
            app.processEvents()
            time.sleep(0.005)
        worst_stall = 0.0
        last[0] = clock.elapsed()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        wall0 = time.perf_counter()
        start_cycles = {p.bus.id: p.cycles for p in service.pollers.values()}
        samples: list[float] = []
        while min(p.cycles - start_cycles[p.bus.id] for p in service.pollers.values()) < cycles:
            app.processEvents()
            time.sleep(0.002)
            for p in service.pollers.values():
                if p.cycles > start_cycles[p.bus.id] and p.last_cycle_s is not None:
                    samples.append(p.last_cycle_s)
        wall = time.perf_counter() - wall0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cycle = max(p.last_cycle_s or 0 for p in service.pollers.values())
        timer.stop()
        window.close()
        ctx.close()
    finally:
        sim.terminate()
        sim.wait(10)
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / wall
    return {"cycle": cycle, "mean_cycle": sum(samples) / max(len(samples), 1), "cpu": cpu,
            "stall": worst_stall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buses", type=int, default=12)
    ap.add_argument("--meters", type=int, default=27)
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--profile", default="acrel-ddsy1352")
    args = ap.parse_args()
    limit = wire_limit(args.profile, args.meters, args.baud)
    print(f"{args.buses} buses x {args.meters} meters at {args.baud} baud; wire-time limit of "
          f"one cycle: {limit:.2f} s")
    silent = ";".join(f"{b}.{args.meters // 2}:offline" for b in range(1, args.buses + 1))
    for label, faults in (("healthy", ""), ("one silent meter per bus", silent)):
        r = run(args.buses, args.meters, args.baud, args.cycles, faults)
        print(f"{label:>26}: full cycle {r['cycle']:.2f} s (mean {r['mean_cycle']:.2f} s), "
              f"ratio {r['cycle'] / limit:.3f} (goal <= 1.15), CPU {r['cpu'] * 100:.0f}% of a "
              f"core, worst UI stall {r['stall'] * 1000:.0f} ms (goal < 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
