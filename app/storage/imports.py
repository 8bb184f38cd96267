"""Booking a large import in one short write transaction: rows staged, then booked set-based.

``core/payments_import.apply`` checks every row first, then puts them into TEMP tables of its
own connection (``Staging``: a temporary table is private to the connection, and writing it
takes no lock on the station's database file, so polling goes on meanwhile), together with the
commands for the meters, prepared with the ids, booking ids and receipt numbers they will have
(``bases``: what the next numbers follow) and their MACs. Then, inside one ``BEGIN IMMEDIATE``,
a few ``INSERT ... SELECT`` statements (``book``) write the same rows, in the same order, as
booking each row through ``recharge.book_recharge`` would write: the bookings, their two
entries each, the receipt counter's advance, the outbox's commands. 100,000 rows hold the
write lock about a second, where row by row they held it for minutes.

Nothing here decides anything: which commands the meters get, and whether the prepared numbers
still hold once the lock is taken, is the core's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app.storage import ledger
from app.storage.ledger import METHOD_BOOKS
from app.storage.models import Occupant, database

STAGING = "import_staging"
TABLES = (STAGING, "import_accounts", "import_outbox", "import_books", "import_entry_sides")


@dataclass(frozen=True)
class StagedAccount:
    id: int
    node_id: int
    mode: str
    is_open: bool
    room: str
    meters: tuple[int, ...]  # the node's enabled meters, by id


def occupant_numbers() -> list[tuple[str, int]]:
    """(student or staff number, room) of every current occupant who has a number."""
    return list(Occupant.select(Occupant.person_no, Occupant.node)
                .where(Occupant.moved_out.is_null() & (Occupant.person_no != "")).tuples())


def _db():
    db = database.obj
    if db is None:
        raise RuntimeError("no database is open")
    return db


class Staging:
    """The rows of one import, waiting in a temporary table of this thread's connection:
    (seq, line, account_id, amount_cents, method, reference, memo), seq 1, 2, ... in the order
    they are booked. Use as a context manager: the table is dropped afterwards."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> Staging:
        db = _db()
        for table in TABLES:
            db.execute_sql(f"DROP TABLE IF EXISTS temp.{table}")
        db.execute_sql(f"CREATE TEMP TABLE {STAGING} (seq INTEGER PRIMARY KEY, line INTEGER, "
                       "account_id INTEGER NOT NULL, amount_cents INTEGER NOT NULL, "
                       "method TEXT NOT NULL, reference TEXT NOT NULL UNIQUE, memo TEXT)")
        db.execute_sql("CREATE TEMP TABLE import_accounts (account_id INTEGER PRIMARY KEY)")
        db.execute_sql("CREATE TEMP TABLE import_outbox (id INTEGER PRIMARY KEY, "
                       "meter_id INTEGER NOT NULL, action TEXT NOT NULL, "
                       "amount_cents INTEGER NOT NULL, txn_id INTEGER, receipt_no INTEGER, "
                       "mac TEXT NOT NULL)")
        db.execute_sql("CREATE TEMP TABLE import_books (method TEXT PRIMARY KEY, "
                       "book_id INTEGER NOT NULL)")
        db.execute_sql("CREATE TEMP TABLE import_entry_sides (k INTEGER PRIMARY KEY)")
        db.execute_sql("INSERT INTO temp.import_entry_sides VALUES (0), (1)")
        return self

    def __exit__(self, *exc) -> None:
        db = database.obj
        if db is None or db.is_closed():
            return
        for table in TABLES:
            db.execute_sql(f"DROP TABLE IF EXISTS temp.{table}")

    def add(self, rows: Iterable[tuple[int, int, int, str, str, str]]) -> int:
        """Stage (line, account_id, amount_cents, method, reference, memo) rows; returns how
        many are staged now. Takes no lock on the database file."""
        db = _db()
        start = self.count

        def numbered() -> Iterator[tuple]:
            for n, row in enumerate(rows, start=start + 1):
                self.count = n
                yield (n, *row)

        with database.atomic():  # one transaction of the temporary database, not a lock
            db.cursor().executemany(
                f"INSERT INTO temp.{STAGING} (seq, line, account_id, amount_cents, method, "
                "reference, memo) VALUES (?, ?, ?, ?, ?, ?, ?)", numbered())
            db.execute_sql("INSERT OR IGNORE INTO temp.import_accounts SELECT DISTINCT "
                           f"account_id FROM temp.{STAGING} WHERE seq > ?", (start,))
        return self.count

    # -- read inside the write transaction ----------------------------------------------------
    def accounts(self) -> dict[int, StagedAccount]:
        """The accounts the staged rows name, as they are now."""
        db = _db()
        rows = db.execute_sql(
            "SELECT a.id, a.node_id, a.mode, a.closed_at IS NULL, "
            "CASE WHEN n.code != '' THEN n.code ELSE n.name END "
            "FROM temp.import_accounts s JOIN account a ON a.id = s.account_id "
            "JOIN node n ON n.id = a.node_id").fetchall()
        meters: dict[int, list[int]] = {}
        for meter_id, node_id in db.execute_sql(
                "SELECT m.id, m.node_id FROM temp.import_accounts s CROSS JOIN account a "
                "CROSS JOIN meter m WHERE a.id = s.account_id AND m.node_id = a.node_id "
                "AND m.enabled ORDER BY m.id"):
            meters.setdefault(node_id, []).append(meter_id)
        return {a: StagedAccount(a, node, mode, bool(is_open), room,
                                 tuple(meters.get(node, ())))
                for a, node, mode, is_open, room in rows}

    def prepaid_sums(self, account_ids: Iterable[int]) -> dict[int, int]:
        """The sum of each account's ``prepaid`` entries (minus its balance), for the staged
        station-keeps-money accounts among ``account_ids``."""
        wanted = set(account_ids)
        db = _db()
        book = db.execute_sql("SELECT id FROM book_account WHERE code = 'prepaid'").fetchone()
        if not wanted or book is None:  # (read only: no book made here) no entries at all
            return {}
        rows = db.execute_sql(
            # account by account through its index (CROSS JOIN keeps that order; the unary +
            # keeps the planner off the book's index, which holds every account's entries)
            "SELECT e.account_id, SUM(e.amount_cents) FROM temp.import_accounts s "
            "CROSS JOIN account a CROSS JOIN ledger_entry e WHERE a.id = s.account_id "
            "AND a.mode = 'station' AND e.account_id = s.account_id AND +e.book_id = ? "
            "GROUP BY e.account_id", (book[0],)).fetchall()
        return {a: int(total) for a, total in rows if a in wanted}

    def set_outbox(self, rows: list[tuple[int, int, str, int, int | None, int | None, str]]
                   ) -> None:
        """The commands the booking will add to the outbox, prepared: (id, meter, action,
        amount, txn id, receipt number, MAC) with the ids they will have."""
        db = _db()
        db.execute_sql("DELETE FROM temp.import_outbox")
        db.cursor().executemany("INSERT INTO temp.import_outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
                                rows)

    def book(self, operator: str, t: float, bases: Bases, methods: list[str], now: float
             ) -> int:
        """Book every staged row as a recharge: the booking (id ``bases.txn`` + seq, its
        reference and memo as staged), its entries (the method's book debited, the account's
        ``prepaid`` credited), receipt numbers ``bases.receipt`` + seq from the gapless
        counter, and the outbox's commands as prepared (``set_outbox``), all in staged order.
        ``methods``: the staged rows' payment methods in the order of their first row. Call
        inside the write transaction, with the ``bases`` read there. Returns the rows
        booked."""
        db = _db()
        n = self.count
        if n == 0:
            return 0
        # the book accounts in the order booking row by row would first use them
        books = {methods[0]: ledger._book_id(METHOD_BOOKS[methods[0]])}
        prepaid = ledger._book_id("prepaid")  # the first row's second entry
        for method in methods[1:]:
            books[method] = ledger._book_id(METHOD_BOOKS[method])
        db.execute_sql("DELETE FROM temp.import_books")
        db.cursor().executemany("INSERT INTO temp.import_books VALUES (?, ?)", books.items())
        db.execute_sql(
            "INSERT INTO ledger_txn (id, t, kind, account_id, operator, memo, reference, "
            "method, corrects) SELECT ? + seq, ?, 'recharge', account_id, ?, memo, reference, "
            f"method, NULL FROM temp.{STAGING} ORDER BY seq", (bases.txn, t, operator))
        # each booking's two entries in order: one pass over the staged rows, crossed with
        # (0, 1) in its key order, so nothing is sorted while the lock is held
        db.execute_sql(
            "INSERT INTO ledger_entry (txn_id, book_id, account_id, amount_cents) "
            "SELECT ? + s.seq, CASE WHEN e.k = 0 THEN b.book_id ELSE ? END, "
            "CASE WHEN e.k = 0 THEN NULL ELSE s.account_id END, "
            "CASE WHEN e.k = 0 THEN s.amount_cents ELSE -s.amount_cents END "
            f"FROM temp.{STAGING} s JOIN temp.import_books b ON b.method = s.method "
            "CROSS JOIN temp.import_entry_sides e ORDER BY s.seq, e.k", (bases.txn, prepaid))
        db.execute_sql("INSERT OR IGNORE INTO counter (name, value) VALUES ('receipt', 0)")
        db.execute_sql("UPDATE counter SET value = value + ? WHERE name = 'receipt'", (n,))
        db.execute_sql(f"INSERT INTO receipt (no, txn_id) SELECT ? + seq, ? + seq "
                       f"FROM temp.{STAGING} ORDER BY seq", (bases.receipt, bases.txn))
        db.execute_sql(
            "INSERT INTO outbox (id, meter_id, action, amount_cents, purchase_count, txn_id, "
            "receipt_no, state, attempts, last_error, created_at, updated_at, mac, previous) "
            "SELECT id, meter_id, action, amount_cents, NULL, txn_id, receipt_no, 'pending', 0, "
            "'', ?, ?, mac, '' FROM temp.import_outbox ORDER BY id", (now, now))
        return n


@dataclass(frozen=True)
class Bases:
    """What the next bookings' numbers follow: the last booking's id, the last outbox row's,
    the receipt counter's value."""

    txn: int
    outbox: int
    receipt: int


def bases() -> Bases:
    db = _db()
    txn = db.execute_sql("SELECT COALESCE(MAX(id), 0) FROM ledger_txn").fetchone()[0]
    outbox = db.execute_sql("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0]
    receipt = db.execute_sql("SELECT value FROM counter WHERE name = 'receipt'").fetchone()
    return Bases(int(txn), int(outbox), int(receipt[0]) if receipt else 0)


@contextmanager
def bulk_writing() -> Iterator[None]:
    """Settings of this connection for the one big booking: a page cache that holds what the
    inserts touch, and foreign keys not checked row by row (the core checked every account,
    meter and book inside the same write lock, and nothing here deletes). Back as they were
    afterwards. Call outside a transaction (SQLite ignores the foreign-key setting inside)."""
    db = _db()
    cache = db.execute_sql("PRAGMA cache_size").fetchone()[0]
    keys = db.execute_sql("PRAGMA foreign_keys").fetchone()[0]
    db.execute_sql("PRAGMA cache_size = -262144")  # 256 MB at most, for this booking
    db.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        db.execute_sql(f"PRAGMA foreign_keys = {int(keys)}")
        db.execute_sql(f"PRAGMA cache_size = {int(cache)}")


def checkpoint() -> None:
    """Copy what the write-ahead log holds into the database file now, without waiting for
    anyone (a big import's pages would otherwise be copied in the next writer's commit).
    Inside a caller's transaction nothing is done."""
    db = _db()
    if not db.in_transaction():
        db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")


def references_since(txn_id: int) -> list[tuple[int, str, str]]:
    """(txn id, reference, method) of the bookings after ``txn_id`` that carry a reference."""
    return [(int(i), r, m) for i, r, m in _db().execute_sql(
        "SELECT id, reference, method FROM ledger_txn WHERE id > ? AND reference IS NOT NULL",
        (txn_id,))]
