"""Crash the ledger: randomized operations in a child process killed with SIGKILL at random
points, inside large statement imports and while another process holds the database's write
lock; after every restart the ledger balances and no payment is lost or doubled on any meter.

    python bench/crash_ledger.py --ops 300 --kills 12 [--seed 1] [--import-rows 3000]

The parent serves four simulated meters (meter time frozen, so money moves only by tokens) and
a station database: two meter-keeps-money accounts, two station-keeps-money accounts. The child
runs operation i = done..ops-1. Consumption with billing and refunds commit with a progress
mark in one write transaction. Delivery of queued tokens to the meters (idempotent by the
token's purchase count), recharges (with a reference, ``op-i``) and statement imports are done
as a clerk does them: the act in the program's own transaction (or transactions), then the
mark; a kill between the two makes the restarted child do the act again, and the rerun must be
refused as booked (a recharge) or book nothing new (an import). An import books a new statement
(3 rows, or one in three a large one of about ``--import-rows`` rows) or, one in four, a
statement imported before again (which must book nothing).

The parent kills the child K times, the kinds taken in turns (shuffled):

* ``op``: a moment after an operation was committed;
* ``import``: inside the apply of a large import, at a random fraction of how long the imports
  before it took to apply;
* ``locked``: while a third process holds SQLite's write lock (BEGIN IMMEDIATE and a write,
  held 1 to ``--max-hold`` seconds; the first hold is longer than the 10 s busy timeout and the
  kill comes after 10 s), at a random moment of the hold or just after. The lock may still be
  held when the child restarts.

An operation that fails with "database is locked" is rerun by the child as a careless clerk
would, after checking the invariant that holds for a failed attempt: it left nothing behind (no
recharge booked without its mark, an import booked wholly or not at all) unless its mark was
committed too. After each kill the parent checks that every import is booked wholly or not at
all (and wholly once marked done); at the end, after a final run that drains the outbox:

* every booking balances and the books sum to zero;
* every planned payment (a recharge operation, a row of a new statement) is booked exactly
  once, to its account, with its amount, and nothing else under the bench's references;
* each meter-keeps-money meter's money rose by exactly the recharges booked to its account and
  its purchase count by their number, a station-keeps-money meter's not at all, and nothing is
  left undelivered.

A child that fails before it is killed ends the bench with its error: the tail of its stderr
and one last line naming the operation and the exception. Prints the kills survived and what
they hit; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import queue
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.operators import Operator  # noqa: E402
from app.storage.db import PRAGMAS  # noqa: E402

ADMIN = Operator.system("crash bench")

METER_ACCOUNTS = (1, 2)  # units whose account is meter-keeps-money
STATION_ACCOUNTS = (3, 4)
BASE_T = 1_790_000_000.0  # fixed interval times for consumption operations
BUSY_TIMEOUT_S = PRAGMAS["busy_timeout"] / 1000  # every connection's busy timeout (10 s)
#: How long the child reruns an operation that keeps failing on a busy database.
RETRY_FOR_S = 90.0
RETRY_PAUSE_S = 0.3
#: How long the parent waits for the child's next line before calling it hung.
HUNG_AFTER_S = 180.0
#: The bench's references: op-17 (a recharge operation), imp-40-1234 (row 1234 of the
#: statement of operation 40), as booked with or without a channel prefix (``cash:op-17``).
REFERENCE = re.compile(r"^(?:[a-z_]+:)?(?:op-(\d+)|imp-(\d+)-(\d+))$")
KILL_KINDS = ("op", "import", "locked")


# -- the plan: the same in every run of a seed -------------------------------------------------
@functools.cache
def op_plan(seed: int, i: int) -> tuple[str, int, int]:
    """Operation i: (kind, a, b)."""
    rng = random.Random(seed * 1_000_003 + i)
    kind = rng.choices(["recharge", "use", "bill", "refund", "import", "deliver"],
                       [35, 20, 10, 5, 10, 20])[0]
    return kind, rng.randint(1, 4), rng.randint(1, 50_00)


@functools.cache
def _import_draw(seed: int, i: int, big_rows: int) -> tuple[bool, int]:
    """(an earlier statement again?, rows of a new one)."""
    rng = random.Random(seed * 7_000_003 + i)
    again = rng.random() < 0.25
    rows = rng.randint(big_rows * 2 // 3, big_rows * 4 // 3) if rng.random() < 1 / 3 else 3
    return again, max(rows, 3)


@functools.cache
def import_plan(seed: int, i: int, big_rows: int) -> tuple[int, int]:
    """Import operation i: (the operation whose statement it imports, its rows). A new
    statement is i's own; an earlier one is the newest new statement before i."""
    again, rows = _import_draw(seed, i, big_rows)
    if again:
        for j in range(i - 1, -1, -1):
            if op_plan(seed, j)[0] == "import" and not _import_draw(seed, j, big_rows)[0]:
                return j, _import_draw(seed, j, big_rows)[1]
    return i, rows


def statement_row(seed: int, j: int, k: int, rows: int) -> tuple[int, int]:
    """Row k of statement j: (unit, cents). A large statement books mostly station-kept
    accounts (one row in fifty a meter-keeps-money one: tokens to deliver)."""
    if rows <= 3:
        unit = 1 + k % 4
    else:
        unit = (1 + k // 50 % 2) if k % 50 == 0 else (3 + k % 2)
    return unit, 100 + (seed * 13 + j * 31 + k * 17) % 9_900


def new_imports(seed: int, ops: int, big_rows: int) -> dict[int, int]:
    """Operation -> rows of every new statement of the plan."""
    out = {}
    for i in range(ops):
        if op_plan(seed, i)[0] == "import":
            j, rows = import_plan(seed, i, big_rows)
            if j == i:
                out[i] = rows
    return out


def planned_payments(seed: int, ops: int, big_rows: int) -> dict[tuple, tuple[int, int]]:
    """Every payment the plan books: key -> (unit, cents); keys ("op", i) and ("imp", j, k)."""
    out: dict[tuple, tuple[int, int]] = {}
    for i in range(ops):
        kind, a, b = op_plan(seed, i)
        if kind == "recharge":
            out[("op", i)] = (a, b)
    for j, rows in new_imports(seed, ops, big_rows).items():
        for k in range(rows):
            out[("imp", j, k)] = statement_row(seed, j, k, rows)
    return out


def booked_payments() -> dict[tuple, list[tuple[int | None, int]]]:
    """Every booking under a bench reference: key -> [(account, cents)] (a list: a key booked
    twice, under two forms of its reference, shows as two)."""
    from app.storage.models import BookAccount, LedgerEntry, LedgerTxn

    prepaid = BookAccount.get(BookAccount.code == "prepaid").id
    q = (LedgerTxn.select(LedgerTxn.reference, LedgerEntry.account, LedgerEntry.amount_cents)
         .join(LedgerEntry)
         .where(LedgerTxn.reference.is_null(False) & (LedgerEntry.book == prepaid)).tuples())
    out: dict[tuple, list[tuple[int | None, int]]] = defaultdict(list)
    for ref, acct, cents in q:
        m = REFERENCE.match(ref or "")
        if not m:
            continue
        key = ("op", int(m.group(1))) if m.group(1) else ("imp", int(m.group(2)),
                                                          int(m.group(3)))
        out[key].append((acct, -cents))
    return out


def is_busy(exc: BaseException | None) -> bool:
    """SQLite's "database is locked" (or busy) anywhere in the exception's chain."""
    seen = 0
    while exc is not None and seen < 10:
        text = str(exc).lower()
        if "database is locked" in text or "database is busy" in text:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _app_frame(exc: BaseException | None) -> str:
    """Where in app/ the error arose: the innermost frame of the program's own code, in the
    deepest exception of the chain that passed through it."""
    import traceback

    where, bench, seen = "", "?", 0
    while exc is not None and seen < 10:
        for frame in traceback.extract_tb(exc.__traceback__):
            parts = Path(frame.filename).parts
            if "app" in parts and ".venv" not in parts:
                where = f"{'/'.join(parts[parts.index('app'):])}:{frame.lineno} {frame.name}"
            elif frame.filename == __file__:
                bench = f"bench/{Path(__file__).name}:{frame.lineno} {frame.name}"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return where or bench


def _say(*words: object) -> None:
    """One line to the parent in one write (unbuffered, PYTHONUNBUFFERED=1, ``print`` writes
    word by word, and a kill between two words would leave half a line)."""
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


# -- the child -----------------------------------------------------------------------------
def child(db: Path, ops: int, seed: int, big_rows: int, workdir: Path) -> int:
    """Run the plan from the first operation not marked done. Says on stdout: ``begin i kind``,
    ``apply i rows`` and ``applied i rows seconds`` (an import's apply), ``done i``, ``retry i
    kind waited message`` (a busy database: the operation is rerun) and ``committed i`` (the
    failed attempt's mark was committed: nothing to rerun)."""
    from app.core import billing, payments_import
    from app.core.outbox import OutboxDelivery
    from app.core.polling import BusPoller
    from app.core.recharge import recharge
    from app.drivers.profile import load_profile
    from app.drivers.token import load_master_key
    from app.paths import default_key_file
    from app.storage import accounts as store
    from app.storage import campus, ledger, readings
    from app.storage.db import open_database, write_transaction
    from app.storage.ledger import DuplicateReference
    from app.storage.models import Meta

    def busy_retry(what: str, i: int, fn, check=None):
        """``fn()``, rerun while it fails on a busy database (a clerk clicking again);
        ``check()`` after each failure: True when the failed attempt was committed after all."""
        first = time.monotonic()
        while True:
            started = time.monotonic()
            try:
                return fn()
            except Exception as exc:
                if not is_busy(exc):
                    raise
                waited = time.monotonic() - started
                _say("retry", i, what, f"{waited:.2f}", f"at {_app_frame(exc)}:",
                     f"{type(exc).__name__}: {exc}".replace("\n", " ")[:240])
                if check is not None and check():
                    return None
                if time.monotonic() - first > RETRY_FOR_S:
                    raise
                time.sleep(RETRY_PAUSE_S)

    busy_retry("open", -1, lambda: open_database(db, create=False))
    meters = campus.meters()
    bus = campus.buses()[0]
    profile = load_profile("acrel-ddsy1352")
    poller = BusPoller(bus, [(m, profile) for m in meters],
                       lambda outs, b: readings.write_batch(outs, [b] if b else []),
                       outbox=OutboxDelivery(load_master_key(default_key_file())))
    accounts_by_unit = {m.address: _account_id(m.node_id) for m in meters}

    def done() -> int:
        row = Meta.get_or_none(Meta.key == "crash_done")
        return int(row.value) if row else 0

    def mark(i: int) -> None:
        Meta.insert(key="crash_done", value=str(i + 1)).on_conflict_replace().execute()

    def statement(j: int, rows: int) -> Path:
        """Statement j, written whole or not at all (a kill while writing it leaves no half
        file for the rerun to import)."""
        path = workdir / f"statement-{j}.csv"
        if not path.exists():
            lines = [["交易号", "房间号", "金额"]]
            for k in range(rows):
                unit, cents = statement_row(seed, j, k, rows)
                lines.append([f"imp-{j}-{k}", _room_of(accounts_by_unit[unit]),
                              f"{cents // 100}.{cents % 100:02d}"])
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerows(lines)
            os.replace(tmp, path)
        return path

    def imported(j: int) -> int:
        return sum(1 for key in booked_payments() if key[0] == "imp" and key[1] == j)

    stage = {"now": ""}  # what the attempt under way is doing: "app" or "mark"

    def run(i: int) -> None:
        kind, a, b = op_plan(seed, i)
        acct = accounts_by_unit[a]
        stage["now"] = "app"
        if kind == "deliver":
            poller.cycle()
        elif kind == "recharge":  # as the clerk does it: the recharge, then the mark
            try:
                recharge(ADMIN, acct, b, random.Random(i).choice(
                    ["cash", "wechat", "alipay", "campus_card"]), reference=f"op-{i}")
            except DuplicateReference:
                # refused as booked: by an attempt killed before its mark, or one that failed
                # after its commit; never by anything else
                if len(booked_payments().get(("op", i), [])) != 1:
                    raise AssertionError(f"op {i}: refused as booked, but not booked once") \
                        from None
                _say("refused", i)
        elif kind == "import":  # as the clerk does it: preview, apply, then the mark
            j, rows = import_plan(seed, i, big_rows)
            path = statement(j, rows)
            preview = payments_import.preview(path)
            _say("apply", i, len(preview.valid))
            t0 = time.perf_counter()
            payments_import.apply(ADMIN, preview)
            _say("applied", i, len(preview.valid), f"{time.perf_counter() - t0:.4f}")
        else:  # the operation and its mark in one transaction
            stage["now"] = "mark"
            with write_transaction():
                if kind == "use":
                    start = int(BASE_T) + i * 900
                    meter_id = next(m.id for m in meters if m.address == a)
                    readings.write_batch([readings.PollOutcome(
                        meter_id, start + 1.0, True, intervals=[(start, b)])])
                elif kind == "bill":
                    billing.bill(now=BASE_T + (i + 1) * 900, operator="crash")
                elif kind == "refund" and a in STATION_ACCOUNTS:
                    bal = ledger.balance(acct)
                    if bal > 0:
                        amount = min(bal, b)
                        ledger.post("refund", [("prepaid", acct, amount), ("cash", None, -amount)],
                                    operator="crash", account_id=acct)
                mark(i)
            return
        stage["now"] = "mark"
        with write_transaction():
            mark(i)

    def failed_attempt(i: int) -> bool:
        """After an attempt failed on a busy database, before the clerk reruns it: what it
        left behind. True when its mark was committed (nothing to rerun). A recharge or an
        import that the program reported failed must have booked nothing (an import: not part
        of it); one found booked is said (``committed``): a clerk rerunning it without a
        reference would book it twice."""
        if done() > i:
            return True
        kind = op_plan(seed, i)[0]
        if kind == "recharge":
            n = len(booked_payments().get(("op", i), []))
            if n > 1:
                raise AssertionError(f"op {i}: the recharge is booked {n} times")
            if n and stage["now"] == "app":
                _say("committed", i, kind)
        if kind == "import":
            j, rows = import_plan(seed, i, big_rows)
            n = imported(j)
            if n not in (0, rows):
                raise AssertionError(f"op {i}: a failed import left {n} of {rows} rows booked")
            if n and j == i and stage["now"] == "app":
                _say("committed", i, kind)
        return False

    i = done()
    while i < ops:
        _say("begin", i, op_plan(seed, i)[0])
        busy_retry(op_plan(seed, i)[0], i, functools.partial(run, i),
                   functools.partial(failed_attempt, i))
        _say("done", i)
        i += 1
    for _ in range(40):  # drain: deliver whatever is queued
        if not busy_retry("pending", ops, store.pending_outbox):
            break
        busy_retry("deliver", ops, poller.cycle)
    poller.link and poller.link.close()
    return 0


def _account_id(node_id: int) -> int:
    from app.storage.models import Account

    return Account.get(Account.node == node_id).id


def _room_of(account_id: int) -> str:
    from app.storage import accounts as store

    return store.get_account(account_id).room


# -- the locker: a third process that holds the write lock -----------------------------------
def locker(db: Path, hold: float) -> int:
    con = sqlite3.connect(str(db), timeout=120, isolation_level=None)
    con.execute("PRAGMA busy_timeout = 120000")
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('crash_locker', ?)",
                (repr(time.time()),))
    _say("locked")
    time.sleep(hold)
    con.execute("COMMIT")
    con.close()
    _say("released")
    return 0


# -- the parent ----------------------------------------------------------------------------
def build(db: Path, endpoint: str, sim) -> dict[int, tuple[int, int]]:
    """The station database; returns each unit's meter money and purchase count at start."""
    from app.core import accounts
    from app.simulator import serial_for
    from app.storage import accounts as store
    from app.storage import campus
    from app.storage.db import open_database

    open_database(db)
    root = campus.add_node(None, "campus", "crash")
    bus = campus.add_bus("B01", endpoint, poll_interval_s=0.1)
    start = {}
    for unit in (1, 2, 3, 4):
        node = campus.add_node(root, "room", f"1-10{unit}", f"1-10{unit}")
        campus.add_meter(bus, unit, "acrel-ddsy1352", serial_for(1, unit), node)
        snap = sim.meter(1, unit).snapshot()
        start[unit] = (snap.remaining_money_cents, snap.purchase_count)
        if unit in METER_ACCOUNTS:
            accounts.open_account(ADMIN, node, mode="meter",
                                  opening_cents=snap.remaining_money_cents)
        else:
            accounts.open_account(ADMIN, node, mode="station")
    store.insert_tariff("dorm", "2000-01-01", "0.588", "", "0", "crash")
    return start


def imports_whole(imports: dict[int, int], done: int) -> list[str]:
    """Every new statement booked wholly or not at all, wholly once its operation is done."""
    counts = Counter(key[1] for key, rows in booked_payments().items() if key[0] == "imp"
                     for _ in rows)
    problems = []
    for j, rows in imports.items():
        n = counts.get(j, 0)
        if n not in (0, rows) or (j < done and n != rows):
            problems.append(f"import of op {j}: {n} of {rows} rows booked (op {j} "
                            f"{'done' if j < done else 'not done'})")
    return problems


def check(sim, start: dict[int, tuple[int, int]], ops: int, seed: int,
          big_rows: int) -> list[str]:
    from app.storage import accounts as store
    from app.storage import campus, ledger

    problems = []
    if ledger.unbalanced_txns():
        problems.append(f"unbalanced bookings: {ledger.unbalanced_txns()}")
    if sum(ledger.trial_balance().values()) != 0:
        problems.append(f"the books do not sum to zero: {ledger.trial_balance()}")
    account_of = {m.address: _account_id(m.node_id) for m in campus.meters()}
    planned = planned_payments(seed, ops, big_rows)
    booked = booked_payments()
    lost = sorted(k for k in planned if k not in booked)
    doubled = sorted(k for k, v in booked.items() if len(v) > 1)
    extra = sorted(k for k in booked if k not in planned)
    wrong = sorted(k for k, v in booked.items() if k in planned and len(v) == 1
                   and v[0] != (account_of[planned[k][0]], planned[k][1]))
    for what, keys in (("lost", lost), ("doubled", doubled), ("booked but never made", extra),
                       ("booked to the wrong account or amount", wrong)):
        if keys:
            problems.append(f"payments {what}: {len(keys)}, e.g. {keys[:5]}")
    imports = new_imports(seed, ops, big_rows)
    problems += imports_whole(imports, ops)
    if store.pending_outbox():
        problems.append(f"{len(store.pending_outbox())} commands never delivered")
    for m in campus.meters():
        acct = account_of[m.address]
        snap = sim.meter(1, m.address).snapshot()
        money0, count0 = start[m.address]
        recharges = [t for t in ledger.txns(acct, limit=1_000_000) if t.kind == "recharge"]
        items = [i for i in store.outbox_items(m.id) if i.action == "recharge"]
        if m.address in METER_ACCOUNTS:
            want_money = money0 + sum(t.amount_cents for t in recharges)
            want_count = count0 + len(recharges)
            if len(items) != len(recharges) or any(i.state != "applied" for i in items):
                problems.append(f"meter {m.address}: {len(recharges)} recharges booked, "
                                f"{len(items)} tokens queued, "
                                f"{sum(i.state == 'applied' for i in items)} applied")
        else:  # the station keeps the money: no token ever goes to the meter
            want_money, want_count = money0, count0
            if items:
                problems.append(f"meter {m.address} (station-kept): {len(items)} tokens queued")
        if snap.remaining_money_cents != want_money:
            problems.append(f"meter {m.address}: money {snap.remaining_money_cents}, "
                            f"expected {want_money} (start {money0})")
        if snap.purchase_count != want_count:
            problems.append(f"meter {m.address}: purchase count {snap.purchase_count}, "
                            f"expected {want_count} (start {count0})")
    return problems


class ChildFailed(Exception):
    """The child exited with an error (or hung) before it was killed."""


class Child:
    """One run of the child: its stdout read line by line on a thread (so the parent can wait
    with a timeout), its stderr in a file (never a pipe nobody reads: a child that logs a lot
    must not block on it)."""

    def __init__(self, cmd: list[str], env: dict, err_path: Path, stats: dict) -> None:
        self.err_path = err_path
        self.stats = stats
        with err_path.open("w") as err:
            self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err,
                                         text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.current: tuple[int, str] | None = None  # the operation begun and not done
        self.applying: int | None = None  # the import whose apply began and is not done
        self.done = -1  # the last operation done
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _take(self, line: str) -> None:
        try:
            self._parse(line)
        except (ValueError, IndexError):  # the last line of a killed child may be cut short
            if self.proc.poll() is None or self.proc.returncode != -signal.SIGKILL:
                raise ChildFailed(f"the child said {line!r}") from None

    def _parse(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        parts = rest.split(" ")
        if word == "begin":
            self.current = (int(parts[0]), parts[1])
        elif word == "apply":
            self.applying = int(parts[0])
        elif word == "applied":
            if int(parts[1]) > 3:
                self.stats["apply_s_per_row"].append(float(parts[2]) / int(parts[1]))
        elif word == "done":
            self.done, self.current, self.applying = int(parts[0]), None, None
        elif word == "retry":
            self.stats["retries"].append((parts[1], float(parts[2])))
            self.stats["busy_errors"][(parts[1], " ".join(parts[3:]))] += 1
        elif word == "committed":
            self.stats["committed_after_error"] += 1
        elif word == "refused":
            self.stats["refused_as_booked"] += 1

    def wait_for(self, want, timeout: float = HUNG_AFTER_S) -> bool:
        """Take lines until ``want(line)``; False when the child's output ends. A child silent
        for ``timeout`` seconds is hung."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise ChildFailed(f"the child said nothing for {timeout:.0f} s: hung") from None
            if line is None:
                self.lines.put(None)
                return False
            self._take(line)
            if want(line):
                return True

    def pause(self, seconds: float) -> None:
        """Let the child work ``seconds`` (less if it ends meanwhile)."""
        try:
            self.proc.wait(timeout=max(0.0, seconds))
        except subprocess.TimeoutExpired:
            pass

    def drain(self) -> None:
        """Take the lines said before the child died."""
        self.proc.wait()
        self.wait_for(lambda line: False)

    def kill(self) -> bool:
        """SIGKILL; True when it killed a running child. A child that had ended with an error
        raises ``ChildFailed``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        rc = self.proc.wait()  # it may have ended just before the signal: its own status
        self.drain()
        if rc == -signal.SIGKILL:
            return True
        if rc != 0:
            raise ChildFailed(f"exit status {rc}")
        return False

    def finish(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise ChildFailed(f"the final run took more than {timeout:.0f} s") from None
        self.drain()
        if self.proc.returncode != 0:
            raise ChildFailed(f"exit status {self.proc.returncode}")

    def where(self) -> str:
        if self.current is None:
            return f"after op {self.done}"
        return f"in op {self.current[0]} ({self.current[1]})"

    def error_tail(self, lines: int = 25) -> tuple[str, str]:
        """The last lines of the child's stderr, and its error: the exception line of its last
        traceback (else its last line)."""
        text = self.err_path.read_text(errors="replace").rstrip().splitlines()
        last = text[-1].strip() if text else "(nothing on stderr)"
        heads = [n for n, s in enumerate(text) if s.startswith("Traceback (most recent call")]
        if heads:
            body = [s for s in text[heads[-1] + 1:] if s and not s[0].isspace()]
            if body:
                last = body[0].strip()
        return "\n".join(text[-lines:]), last


def parent(ops: int, kills: int, seed: int, big_rows: int, max_hold: float,
           keep: Path | None = None) -> int:
    from app.drivers.token import save_master_key
    from app.paths import default_key_file
    from app.simulator import start_simulator

    rng = random.Random(seed)
    kinds = [KILL_KINDS[k % len(KILL_KINDS)] for k in range(kills)]
    rng.shuffle(kinds)
    imports = new_imports(seed, ops, big_rows)
    stats: dict = {"retries": [], "busy_errors": Counter(), "committed_after_error": 0,
                   "refused_as_booked": 0,
                   "apply_s_per_row": [], "kills": Counter(), "import_rolled_back": 0,
                   "import_unmarked": 0, "locks": [], "runs": 0}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if keep is not None:
            keep.mkdir(parents=True)  # a new folder: the run starts from nothing
            tmp = str(keep.resolve())
        os.environ["VOLTKEEPER_HOME"] = tmp
        work = Path(tmp)
        db = work / "crash.db"
        with start_simulator(buses=1, meters=4, transport="tcp", seed=seed, speed=0.0,
                             random_heaters=False) as sim:
            save_master_key(default_key_file(), sim.master_key)
            start = build(db, sim.endpoints[0], sim)
            cmd = [sys.executable, __file__, "--child", "--db", str(db), "--ops", str(ops),
                   "--seed", str(seed), "--import-rows", str(big_rows), "--workdir", str(work)]
            env = {**os.environ, "VOLTKEEPER_HOME": tmp}
            lockers: list[subprocess.Popen] = []
            run: Child | None = None
            final = False

            def new_run() -> Child:
                stats["runs"] += 1
                return Child(cmd, env, work / f"child-{stats['runs']}.err", stats)

            try:
                for k in range(len(kinds)):
                    done = _done_mark()
                    if done >= ops - 1:
                        break
                    # the kills spread over the operations left: about ``spread`` apart
                    spread = max(1, 2 * (ops - done) // (len(kinds) - k + 1))
                    big = [j for j in sorted(imports) if j >= done and imports[j] > 3]
                    if kinds[k] == "import" and (not big or big[0] > done + spread):
                        # the next large import is far: another kind of kill first
                        later = [n for n in range(k + 1, len(kinds)) if kinds[n] != "import"]
                        if later:
                            kinds[k], kinds[later[0]] = kinds[later[0]], kinds[k]
                        elif not big:
                            kinds[k] = "op"
                    kind = kinds[k]
                    if kind == "locked":  # one third process at a time
                        for lk in lockers:
                            lk.wait()
                    run = new_run()
                    if kind == "op":
                        target = done + rng.randint(1, spread)
                        run.wait_for(lambda line, t=target: line == f"done {t - 1}")
                        run.pause(rng.uniform(0, 0.004))
                    elif kind == "import":
                        if run.wait_for(lambda line, j=big[0]: line.startswith(f"apply {j} ")):
                            rates = stats["apply_s_per_row"]
                            rate = sorted(rates)[len(rates) // 2] if rates else 2e-5
                            run.pause(rng.uniform(0.05, 0.95) * rate * imports[big[0]])
                    else:  # locked: a third process holds the write lock while the child works
                        target = done + rng.randint(1, min(8, spread))
                        if run.wait_for(lambda line, t=target: line.startswith("done ")
                                        and int(line.split()[1]) >= t - 1):
                            if not stats["locks"]:  # once longer than the busy timeout
                                hold = rng.uniform(BUSY_TIMEOUT_S + 1,
                                                   max(max_hold, BUSY_TIMEOUT_S + 1.5))
                                after = rng.uniform(BUSY_TIMEOUT_S + 0.5, hold + 0.3)
                            else:
                                hold = rng.uniform(1.0, max_hold)
                                after = rng.uniform(0.2, hold + 0.3)
                            lockers.append(_lock(db, hold))
                            stats["locks"].append(hold)
                            run.pause(after)
                    if not run.kill():
                        continue  # it had finished every operation
                    stats["kills"][kind] += 1
                    if kind == "import" and run.applying == big[0]:
                        n = Counter(key[1] for key in booked_payments() if key[0] == "imp")
                        if n.get(big[0], 0) == 0:
                            stats["import_rolled_back"] += 1
                        elif n[big[0]] == imports[big[0]]:
                            stats["import_unmarked"] += 1
                    problems = imports_whole(imports, _done_mark())
                    if problems:
                        print(f"VIOLATION after kill {k + 1} ({kind}, {run.where()}): "
                              f"{problems[0]}")
                        return 1
                final = True
                run = new_run()
                run.finish(timeout=900)
                for lk in lockers:
                    lk.wait()
                problems = check(sim, start, ops, seed, big_rows)
            except ChildFailed as exc:
                return _child_failed(run, exc, final)
            finally:
                for lk in lockers:
                    if lk.poll() is None:
                        lk.kill()
                    lk.wait()
                if run is not None and run.proc.poll() is None:
                    run.proc.kill()
                    run.proc.wait()
        elapsed = time.perf_counter() - started
    _report(ops, stats, elapsed)
    for p in problems:
        print(f"VIOLATION: {p}")
    if problems:
        return 1
    print("ledger balanced; every payment booked once, every import whole, and applied once "
          "on its meter")
    return 0


def _lock(db: Path, hold: float) -> subprocess.Popen:
    """Start the locker; returns once it holds the write lock."""
    lk = subprocess.Popen([sys.executable, __file__, "--locker", "--db", str(db), "--hold",
                           f"{hold:.2f}"], stdout=subprocess.PIPE, text=True)
    assert lk.stdout is not None
    if lk.stdout.readline().strip() != "locked":
        lk.kill()
        lk.wait()
        raise ChildFailed("the locker could not take the write lock")
    return lk


def _done_mark() -> int:
    from app.storage.models import Meta

    row = Meta.get_or_none(Meta.key == "crash_done")
    return int(row.value) if row else 0


def _child_failed(run: Child | None, exc: ChildFailed, final: bool) -> int:
    """The child's own error as the bench's last lines: its stderr's tail, then one line with
    the operation and the exception."""
    if run is None:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    tail, last = run.error_tail()
    what = "the final run failed" if final else "the child failed before it was killed"
    print("--- the child's stderr, last lines ---", file=sys.stderr)
    print(tail, file=sys.stderr)
    print(f"FAIL: {what} ({exc}), {run.where()}: {last}", file=sys.stderr)
    return 1


def _report(ops: int, stats: dict, elapsed: float) -> None:
    survived = sum(stats["kills"].values())
    by_kind = ", ".join(f"{stats['kills'][k]} {k}" for k in KILL_KINDS)
    print(f"ops: {ops}, kills survived: {survived} ({by_kind}), child runs: {stats['runs']}, "
          f"time: {elapsed:.1f} s")
    print(f"kills inside a large import: {stats['import_rolled_back']} rolled back whole, "
          f"{stats['import_unmarked']} booked whole before its mark (rerun: nothing new)")
    retries = stats["retries"]
    waited = [w for _, w in retries if w >= 1.0]
    holds = ", ".join(f"{h:.1f}" for h in stats["locks"])
    print(f"write lock held by a third process {len(stats['locks'])} times ({holds} s); "
          f"busy database: {len(retries)} failed attempts rerun ({len(waited)} after waiting, "
          f"{len(retries) - len(waited)} in under 1 s; by operation "
          f"{dict(Counter(w for w, _ in retries))}); {stats['committed_after_error']} reported "
          f"failed but found booked; {stats['refused_as_booked']} recharges rerun after a kill "
          "refused as booked")
    for (what, error), n in sorted(stats["busy_errors"].items()):
        print(f"  {n} x {what}: {error}")
    rates = stats["apply_s_per_row"]
    if rates:
        print(f"large import apply: {1000 * sorted(rates)[len(rates) // 2]:.2f} ms per row "
              f"(median of {len(rates)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=300)
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--import-rows", type=int, default=3000,
                    help="rows of a large statement import, about (default 3000)")
    ap.add_argument("--max-hold", type=float, default=13.0,
                    help="longest hold of the write lock by the third process, s (default 13)")
    ap.add_argument("--keep", type=Path, help="work in this new folder and keep it: the "
                    "database, the statements, each child run's stderr (child-N.err)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--locker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--hold", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.db, args.ops, args.seed, args.import_rows, args.workdir)
    if args.locker:
        return locker(args.db, args.hold)
    return parent(args.ops, args.kills, args.seed, args.import_rows, args.max_hold, args.keep)


if __name__ == "__main__":
    sys.exit(main())
