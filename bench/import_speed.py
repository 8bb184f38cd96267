"""Import speed: a 100,000-row payment statement on a campus of 10,000 accounts, while a writer
like the polling process's stores something every 50 ms.

    python bench/import_speed.py [--rows 100000 --buses 41 --meters 244 --row-by-row 1000]
                                 [--keep]

Builds the campus (the demo campus's layout, 41 buses of 244 meters: 10,004 rooms and shops,
each with an account; one in ten keeps its money at the station, some of their meters tripped),
writes the statement as .csv and as .xlsx (a WeChat-style 19-digit id, the room or else the
student number, the amount, the method), and for each file on a fresh copy of the campus:
reads it, previews it and books it (``payments_import.preview`` and ``apply``, the real code),
while a thread imitating the storage writer runs a small write transaction every 50 ms on its
own connection (busy timeout 10 s, as the station's). Prints the time of each step, the
longest write transaction of the import (the write lock held), and the writer's longest wait.
``--row-by-row N``: also books N rows one by one through ``book_recharge`` in one
transaction, as imports did before, to compare the time the lock is held per row.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import PollingWriter  # noqa: E402  (the same writer the test uses)

STATION_SHARE = 10  # one account in ten keeps its money at the station


def build_campus(db: Path, buses: int, meters: int) -> dict:
    """The demo campus's rooms, meters and occupants; accounts opened through the core (one
    in ten keeps its money at the station; a third of those with its meter tripped)."""
    from app.core import accounts
    from app.core.operators import Operator
    from app.simulator.demo_campus import create_demo_campus
    from app.storage import campus
    from app.storage.accounts import meters_of_node
    from app.storage.models import LatestReading, Node, Occupant

    create_demo_campus(db, buses=buses, meters=meters, open_accounts=False,
                       password="bench-pass-1")
    system = Operator.system("bench")
    rooms: list[tuple[str, list[str]]] = []
    people = {}
    for node_id, person_no in Occupant.select(Occupant.node, Occupant.person_no).tuples():
        people.setdefault(node_id, []).append(person_no)
    now = time.time()
    with campus.atomic():
        for i, (node_id, code) in enumerate(Node.select(Node.id, Node.code)
                                            .where(Node.kind.in_(("room", "shop")))
                                            .order_by(Node.id).tuples()):
            station = i % STATION_SHARE == 0
            accounts.open_account(system, node_id, mode="station" if station else "meter")
            if station and i % (3 * STATION_SHARE) == 0:  # its meter tripped: a recharge closes
                meter_id = meters_of_node(node_id)[0][0]
                LatestReading.insert(meter=meter_id, read_at=now, control_mode="forced_trip",
                                     online=True, changed_at=now).execute()
            rooms.append((code, people.get(node_id, [])))
    return {"rooms": rooms}


def write_statement(folder: Path, rooms: list[tuple[str, list[str]]], n: int, seed: int = 1
                    ) -> tuple[Path, Path]:
    """The same n payments as .csv and .xlsx: most name the room, some the student number."""
    from openpyxl import Workbook

    rng = random.Random(seed)
    header = ["交易时间", "交易号", "房间号", "学号", "金额", "支付方式", "交易状态"]
    methods = ["微信", "支付宝", "校园卡", "银联"]
    rows = []
    for k in range(n):
        room, people = rooms[rng.randrange(len(rooms))]
        by_person = people and rng.random() < 0.2
        rows.append([f"2026-11-{1 + k % 28:02d} {k % 24:02d}:{k % 60:02d}:00",
                     f"42000{k:014d}",  # 19 digits, as WeChat's
                     "" if by_person else room, people[0] if by_person else "",
                     f"{rng.randrange(1, 300)}.{rng.randrange(100):02d}",
                     methods[k % len(methods)], "SUCCESS"])
    path_csv = folder / "statement.csv"
    with path_csv.open("w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh).writerows([header, *rows])
    path_xlsx = folder / "statement.xlsx"
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("流水")
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path_xlsx)
    return path_csv, path_xlsx


def copy_db(src: Path, dst: Path) -> Path:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


def run_import(db: Path, statement: Path) -> dict:
    from app.core import payments_import, statements
    from app.core.operators import Operator
    from app.storage.db import close_database, open_database

    open_database(db)
    out: dict = {}
    t0 = time.perf_counter()
    statements.read_statement(statement)
    out["read"] = time.perf_counter() - t0
    writer = PollingWriter(db)
    writer.start()
    time.sleep(0.3)
    try:
        t1 = time.perf_counter()
        preview = payments_import.preview(statement, default_method="campus_card")
        out["preview"] = time.perf_counter() - t1
        out["valid"], out["errors"] = len(preview.valid), len(preview.errors)
        out["example"] = preview.errors[0].problem if preview.errors else ""
        t2 = time.perf_counter()
        result = payments_import.apply(Operator.system("bench"), preview)
        out["apply"] = time.perf_counter() - t2
        out["lock"] = result.lock_s
        out["booked"] = result.booked
        out["total"] = time.perf_counter() - t1
        time.sleep(0.5)  # the writer's next writes (a checkpoint of the import's pages)
    finally:
        writer.stop()
    out["writer"] = writer
    close_database()
    return out


def row_by_row(db: Path, statement: Path, n: int) -> tuple[int, float]:
    """Book the first n valid rows one by one through ``book_recharge`` in one transaction
    (imports before the staged booking): the time the write lock was held."""
    from app.core import payments_import
    from app.core.recharge import book_recharge
    from app.storage.db import close_database, open_database, write_transaction

    open_database(db)
    preview = payments_import.preview(statement, default_method="campus_card")
    rows = preview.valid[:n]
    t0 = time.perf_counter()
    with write_transaction():
        for r in rows:
            book_recharge("bench", r.account_id, r.amount_cents, r.method,
                          reference=r.reference, memo="row by row", t=time.time())
    held = time.perf_counter() - t0
    close_database()
    return len(rows), held


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--buses", type=int, default=41)
    ap.add_argument("--meters", type=int, default=244)
    ap.add_argument("--row-by-row", type=int, default=1_000, metavar="N",
                    help="also book N rows one by one, as before (0: not)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the databases and statements (a few hundred MB)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vk-import-"))
    os.environ["VOLTKEEPER_HOME"] = str(tmp / "home")
    base = tmp / "campus.db"
    t0 = time.perf_counter()
    campus_info = build_campus(base, args.buses, args.meters)
    from app.storage.db import close_database

    close_database()
    print(f"campus: {len(campus_info['rooms']):,} accounts (one in {STATION_SHARE} kept by the "
          f"station) built in {time.perf_counter() - t0:.0f} s")
    t1 = time.perf_counter()
    path_csv, path_xlsx = write_statement(tmp, campus_info["rooms"], args.rows)
    print(f"statement: {args.rows:,} rows written as .csv ({path_csv.stat().st_size / 1e6:.1f} MB)"
          f" and .xlsx ({path_xlsx.stat().st_size / 1e6:.1f} MB) in "
          f"{time.perf_counter() - t1:.0f} s")
    worst_lock = worst_wait = 0.0
    for statement in (path_csv, path_xlsx):
        db = copy_db(base, tmp / f"import-{statement.suffix[1:]}.db")
        r = run_import(db, statement)
        waits = r["writer"]
        worst_lock = max(worst_lock, r["lock"])
        worst_wait = max(worst_wait, max(waits.waits, default=0.0))
        print(f"{statement.suffix}: read {r['read']:.1f} s; preview {r['preview']:.1f} s "
              f"({r['valid']:,} valid, {r['errors']:,} wrong); apply {r['apply']:.1f} s, the "
              f"write lock held {r['lock']:.2f} s; {r['booked']:,} booked, end to end "
              f"{r['total']:.1f} s")
        print(f"    polling writer every 50 ms meanwhile: {waits.summary()}")
        if r["example"]:
            print(f"    a wrong row (the generated student numbers repeat): {r['example']}")
    if args.row_by_row:
        db = copy_db(base, tmp / "row-by-row.db")
        n, held = row_by_row(db, path_csv, args.row_by_row)
        whole = held / max(n, 1) * args.rows
        print(f"row by row (as before): {n:,} rows held the write lock {held:.1f} s "
              f"({held / max(n, 1) * 1000:.1f} ms a row: {args.rows:,} rows would hold it "
              + (f"{whole / 60:.0f} min)" if whole >= 120 else f"{whole:.0f} s)"))
    print(f"longest import transaction {worst_lock:.2f} s; longest polling wait "
          f"{worst_wait * 1000:.0f} ms (goal: under 1 s)")
    if args.keep:
        print(f"(files in {tmp})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
