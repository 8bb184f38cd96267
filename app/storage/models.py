"""The schema, as peewee models. Storage owns it: nothing outside app/storage defines tables.

Conventions: times are UTC epoch seconds (float for instants, int for interval starts);
energy is integer Wh (0.01 kWh registers are exact in Wh); money is integer cents (fen);
days are the campus's local calendar day as ``YYYY-MM-DD``.
"""

from __future__ import annotations

from peewee import (
    SQL,
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    DatabaseProxy,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

database = DatabaseProxy()


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class Meta(BaseModel):
    """Key/value facts about the database itself (schema version, campus name)."""

    key = CharField(primary_key=True)
    value = TextField()


NODE_KINDS = ("campus", "building", "floor", "room", "shop")


class Node(BaseModel):
    """The campus tree: campus -> building -> floor -> room or shop."""

    id = AutoField()
    parent = ForeignKeyField("self", null=True, backref="children", on_delete="CASCADE")
    kind = CharField()
    name = CharField()
    code = CharField(default="", index=True)  # room number such as "3-204"
    sort_key = IntegerField(default=0)

    class Meta:
        indexes = ((("parent", "sort_key"), False),)


class Occupant(BaseModel):
    """Who lives in (or runs) a room or shop. Accounts build on it."""

    id = AutoField()
    node = ForeignKeyField(Node, backref="occupants", on_delete="CASCADE")
    name = CharField(index=True)
    person_no = CharField(default="", index=True)  # student or staff number
    phone = CharField(default="")
    moved_in = FloatField()
    moved_out = FloatField(null=True)


class Bus(BaseModel):
    """One RS485 bus (or Modbus-TCP segment): where it is and how often it is read."""

    id = AutoField()
    name = CharField(unique=True)
    link = CharField()  # LinkConfig URL: rtu:///dev/ttyS1?baud=9600, tcp://host:port, ...
    poll_interval_s = FloatField(default=5.0)
    enabled = BooleanField(default=True)


class Meter(BaseModel):
    id = AutoField()
    bus = ForeignKeyField(Bus, backref="meters", on_delete="CASCADE")
    address = IntegerField()
    serial = CharField(default="", index=True)
    profile = CharField()
    node = ForeignKeyField(Node, null=True, backref="meters", on_delete="SET NULL")
    enabled = BooleanField(default=True)

    class Meta:
        indexes = ((("bus", "address"), True),)


class LatestReading(BaseModel):
    """The last good values of a meter, and whether it answers now."""

    meter = ForeignKeyField(Meter, primary_key=True, on_delete="CASCADE")
    read_at = FloatField(null=True)
    voltage_v = FloatField(null=True)
    current_a = FloatField(null=True)
    power_w = FloatField(null=True)
    power_factor = FloatField(null=True)
    frequency_hz = FloatField(null=True)
    energy_wh = BigIntegerField(null=True)
    remaining_energy_wh = BigIntegerField(null=True)
    money_cents = BigIntegerField(null=True)
    purchase_count = IntegerField(null=True)
    relay_closed = BooleanField(null=True)
    control_mode = CharField(null=True)
    trip_reason = IntegerField(null=True)
    flags = CharField(default="")  # comma-separated status flags
    online = BooleanField(default=False)
    changed_at = FloatField(default=0.0, index=True)  # when this row last changed


class IntervalEnergy(BaseModel):
    """Energy used in one 15-minute interval, from the energy register's deltas."""

    meter = ForeignKeyField(Meter, on_delete="CASCADE")
    start = IntegerField()  # epoch seconds, a multiple of 900
    energy_wh = BigIntegerField()

    class Meta:
        primary_key = CompositeKey("meter", "start")
        without_rowid = True


class DailyEnergy(BaseModel):
    meter = ForeignKeyField(Meter, on_delete="CASCADE")
    day = CharField()  # local YYYY-MM-DD
    energy_wh = BigIntegerField()

    class Meta:
        primary_key = CompositeKey("meter", "day")
        without_rowid = True


class Sample(BaseModel):
    """Raw per-poll values for live charts: kept only for a short window."""

    meter = ForeignKeyField(Meter, on_delete="CASCADE")
    t = FloatField()
    power_w = FloatField(null=True)
    voltage_v = FloatField(null=True)
    current_a = FloatField(null=True)

    class Meta:
        primary_key = CompositeKey("meter", "t")
        without_rowid = True


class CommStats(BaseModel):
    """Per-meter communication statistics since the database was made."""

    meter = ForeignKeyField(Meter, primary_key=True, on_delete="CASCADE")
    reads = BigIntegerField(default=0)
    failures = BigIntegerField(default=0)
    timeouts = BigIntegerField(default=0)
    crc_errors = BigIntegerField(default=0)
    exceptions = BigIntegerField(default=0)
    consecutive_failures = IntegerField(default=0)
    last_latency_ms = FloatField(null=True)
    worst_latency_ms = FloatField(null=True)
    last_error = TextField(default="")
    offline_since = FloatField(null=True)


class BusState(BaseModel):
    bus = ForeignKeyField(Bus, primary_key=True, on_delete="CASCADE")
    state = CharField(default="idle")  # idle, polling, down
    last_cycle_s = FloatField(null=True)
    last_cycle_at = FloatField(null=True)
    error = TextField(default="")
    meters_online = IntegerField(default=0)
    meters_total = IntegerField(default=0)


class MeterEvent(BaseModel):
    """Things worth a line in the log: offline, online, counter reset, meter replaced."""

    id = AutoField()
    meter = ForeignKeyField(Meter, null=True, on_delete="CASCADE")
    t = FloatField(index=True)
    kind = CharField()
    detail = TextField(default="")


class Lease(BaseModel):
    """Who polls the buses: one process at a time per database."""

    name = CharField(primary_key=True)
    holder = CharField()
    pid = IntegerField()
    host = CharField()
    acquired_at = FloatField()
    expires_at = FloatField()


ALL_MODELS = [Meta, Node, Occupant, Bus, Meter, LatestReading, IntervalEnergy, DailyEnergy,
              Sample, CommStats, BusState, MeterEvent, Lease]


# -- schema 2: prepaid accounts, tariffs, the ledger, recharges and the outbox ----------------
class Account(BaseModel):
    """A prepaid account: belongs to a room or shop; its meters are that node's meters."""

    id = AutoField()
    number = CharField(unique=True)
    node = ForeignKeyField(Node, backref="accounts", on_delete="RESTRICT")
    tariff_group = CharField(default="dorm")
    mode = CharField(default="meter")  # meter: the meter keeps the money; station: we do
    opened_at = FloatField()
    closed_at = FloatField(null=True)
    opened_by = CharField(default="")
    # Taking over a meter that already holds money: the first reading's money becomes the
    # opening balance (commissioning, replacing a vendor system).
    adopt_meter_balance = BooleanField(default=False)


class BookAccount(BaseModel):
    """The chart of accounts: where every cent sits (cash drawer, clearing, prepaid, revenue)."""

    id = AutoField()
    code = CharField(unique=True)
    kind = CharField()  # asset, liability, revenue, expense, equity


class LedgerTxn(BaseModel):
    """One booking: its entries sum to zero. Append-only (triggers refuse UPDATE and DELETE)."""

    id = AutoField()
    t = FloatField(index=True)
    kind = CharField()  # recharge, consumption, allowance, refund, correction, opening, ...
    account = ForeignKeyField(Account, null=True, backref="txns", on_delete="RESTRICT")
    operator = CharField()
    memo = TextField(default="")
    reference = CharField(null=True, unique=True)  # external payment id: imports apply once
    method = CharField(default="")  # cash, campus_card, wechat, alipay, bank
    corrects = IntegerField(null=True)  # the txn a correction reverses


class LedgerEntry(BaseModel):
    id = AutoField()
    txn = ForeignKeyField(LedgerTxn, backref="entries", on_delete="RESTRICT")
    book = ForeignKeyField(BookAccount, on_delete="RESTRICT")
    account = ForeignKeyField(Account, null=True, on_delete="RESTRICT", index=True)
    amount_cents = BigIntegerField()  # debit positive, credit negative


class Tariff(BaseModel):
    """A tariff version for a group, in force from ``starts_on`` until the next version."""

    id = AutoField()
    group = CharField()
    starts_on = CharField()  # YYYY-MM-DD, local
    price = CharField()  # Decimal text, yuan/kWh (first tier for tiered)
    tiers = TextField(default="")  # JSON [[up_to_kwh or null, price], ...] by monthly use
    allowance_kwh = CharField(default="0")  # free kWh per account per month
    created_at = FloatField()
    created_by = CharField(default="")

    class Meta:
        indexes = ((("group", "starts_on"), True),)


class Counter(BaseModel):
    """Gapless counters (receipt numbers): bumped inside the booking's transaction."""

    name = CharField(primary_key=True)
    value = BigIntegerField(default=0)


class Outbox(BaseModel):
    """Commands for meters that must survive a crash: written with their booking, delivered by
    the process that polls the meter's bus, confirmed by reading the meter back."""

    id = AutoField()
    meter = ForeignKeyField(Meter, on_delete="CASCADE", index=True)
    action = CharField()  # recharge, trip, close
    amount_cents = BigIntegerField(default=0)
    purchase_count = IntegerField(null=True)
    txn = ForeignKeyField(LedgerTxn, null=True, on_delete="RESTRICT")
    receipt_no = BigIntegerField(null=True, unique=True)
    state = CharField(default="pending", index=True)  # pending, applied, failed
    attempts = IntegerField(default=0)
    last_error = TextField(default="")
    created_at = FloatField()
    updated_at = FloatField()
    mac = CharField(default="")  # HMAC under the station's command key (core/commands.py)
    # a setting's value read before it was written (undo); a default in SQL too, for the
    # rows other writers insert by hand (the import's set-based booking)
    previous = TextField(default="", constraints=[SQL("DEFAULT ''")])


class BillingCursor(BaseModel):
    """Up to where a meter's interval energy has been billed (exclusive interval start)."""

    meter = ForeignKeyField(Meter, primary_key=True, on_delete="CASCADE")
    billed_until = IntegerField()


class BillingMonth(BaseModel):
    """Per account and month: energy so far (tiers, allowance) and the exact cost carried so
    that the month's booked cents equal its exact cost rounded once. A day is booked once it is
    over: ``open_day``'s cost and allowance so far are counted in ``exact_*`` but not booked
    yet (schema 9). ``settled``: the month is over and booked to the cent."""

    account = ForeignKeyField(Account, on_delete="CASCADE")
    month = CharField()  # YYYY-MM
    energy_wh = BigIntegerField(default=0)
    exact_cost = CharField(default="0")  # Decimal yuan
    booked_cents = BigIntegerField(default=0)
    exact_allowance = CharField(default="0")
    booked_allowance_cents = BigIntegerField(default=0)
    open_day = CharField(default="")  # YYYY-MM-DD: the last day billed, booked when it is over
    open_cost = CharField(default="0")  # Decimal yuan of open_day, in exact_cost already
    open_allowance = CharField(default="0")
    settled = BooleanField(default=False, index=True)

    class Meta:
        primary_key = CompositeKey("account", "month")


class Alarm(BaseModel):
    """Alarms for the alarm list (reconciliation now; low balance and others later)."""

    id = AutoField()
    t = FloatField(index=True)
    kind = CharField()
    level = IntegerField(default=1)
    meter = ForeignKeyField(Meter, null=True, on_delete="CASCADE")
    account = ForeignKeyField(Account, null=True, on_delete="CASCADE")
    message = TextField()
    data = TextField(default="")
    cleared_at = FloatField(null=True)
    bus = ForeignKeyField(Bus, null=True, on_delete="CASCADE")  # a bus's own alarm (bus_down)
    acknowledged_by = CharField(null=True)
    acknowledged_at = FloatField(null=True)
    ack_comment = TextField(default="")


LEDGER_MODELS = [Account, BookAccount, LedgerTxn, LedgerEntry, Tariff, Counter,
                 Outbox, BillingCursor, BillingMonth, Alarm]


# -- schema 3: operators, the audit log, station settings ---------------------------------------
class Operator(BaseModel):
    """A person who signs in: a role, a scrypt password hash (never the password), and the
    counters that lock a name out after repeated failures."""

    id = AutoField()
    name = CharField(unique=True)
    role = CharField()
    password_hash = CharField()
    must_change_password = BooleanField(default=True)
    disabled = BooleanField(default=False)
    failed_attempts = IntegerField(default=0)
    locked_until = FloatField(null=True)
    created_at = FloatField()
    created_by = CharField(default="")
    password_changed_at = FloatField(null=True)
    last_sign_in_at = FloatField(null=True)


class AuditEntry(BaseModel):
    """One act in the audit log. Append-only (triggers refuse UPDATE and DELETE) and
    hash-chained: each entry's hash covers its fields and the previous entry's hash, so an
    edited, deleted or reordered row is found by ``core.audit.verify``."""

    id = AutoField()  # the sequence number: gapless
    t = FloatField(index=True)
    operator = CharField(index=True)
    kind = CharField(index=True)
    target = TextField(default="")
    node = IntegerField(null=True, index=True)  # the room or shop concerned (no foreign key:
    # the log outlives what it names)
    before = TextField(default="")  # JSON
    after = TextField(default="")  # JSON
    detail = TextField(default="")
    prev_hash = CharField()
    hash = CharField()


class Setting(BaseModel):
    """Station-wide settings (idle lock, backups...): declared with types and defaults in
    ``core/settings.py``; a row exists only once someone changed the default."""

    key = CharField(primary_key=True)
    value = TextField()
    updated_at = FloatField()
    updated_by = CharField(default="")


OPERATOR_MODELS = [Operator, AuditEntry, Setting]


# -- schema 4: meters as they come, and the reading service's own threads ----------------------
class MeterCapability(BaseModel):
    """What a meter was found to lack (points of its profile it refuses), how it must be read,
    and the values it sent that could not be right (counted, the last one kept)."""

    meter = ForeignKeyField(Meter, primary_key=True, on_delete="CASCADE")
    missing = TextField(default="")  # comma-separated point names the meter refuses
    read_mode = CharField(default="merged")  # merged, no-gaps, single
    checked_at = FloatField(null=True)  # when the missing points were last tried
    serial = CharField(default="")  # the meter these were learned from
    bad_values = BigIntegerField(default=0)
    last_bad = TextField(default="")  # "point: why" of the last bad reading
    last_bad_at = FloatField(null=True)
    updated_at = FloatField(default=0.0)


class WorkerState(BaseModel):
    """Each long-running thread of the process that polls (a bus, the writer, billing, the
    lease): running, error or stopped, how often it was restarted and its last error."""

    name = CharField(primary_key=True)
    state = CharField()
    error = TextField(default="")  # the last error, kept after a restart
    restarts = IntegerField(default=0)
    last_error_at = FloatField(null=True)
    changed_at = FloatField()


CAPABILITY_MODELS = [MeterCapability, WorkerState]


# -- schema 7: automatic control and SMS -------------------------------------------------------
class RoomRule(BaseModel):
    """What the station enforces for a room or shop beside its account: the power limit (W,
    written to the meter and watched by the station; None: none of the station's)."""

    node = ForeignKeyField(Node, primary_key=True, on_delete="CASCADE")
    power_limit_w = IntegerField(null=True)
    updated_at = FloatField()
    updated_by = CharField(default="")


class Appliance(BaseModel):
    """An appliance a room may have (a 1,200 W kettle in a staff room): a step of its rating is
    not a malicious load there (``core/load_detector``)."""

    id = AutoField()
    node = ForeignKeyField(Node, backref="appliances", on_delete="CASCADE")
    name = CharField()
    rated_w = IntegerField()
    added_at = FloatField()
    added_by = CharField(default="")


class RelayHold(BaseModel):
    """Why the station keeps a meter's relay open (``core/relay_holds``): the meter is tripped
    while it has an effective hold, closed when its last one goes. ``reason``: operator,
    arrears, power_limit, malicious_load, schedule, plan; ``source``: whose (the operator, the
    schedule's or plan's name); ``restore_at``: when it goes by itself (an automatic restore);
    ``overridden_by``: an operator closed the relay over it (it stays, without effect, until
    its condition ends)."""

    id = AutoField()
    meter = ForeignKeyField(Meter, on_delete="CASCADE")
    reason = CharField()
    source = CharField(default="")
    since = FloatField()
    restore_at = FloatField(null=True)
    overridden_by = CharField(default="")
    detail = TextField(default="")

    class Meta:
        indexes = ((("meter", "reason", "source"), True),)


class ControlLog(BaseModel):
    """The station's automatic trips and restores (how many restores in the last hour)."""

    id = AutoField()
    t = FloatField()
    meter = ForeignKeyField(Meter, on_delete="CASCADE")
    action = CharField()  # trip, close
    reason = CharField()

    class Meta:
        indexes = ((("meter", "t"), False),)


class Schedule(BaseModel):
    """A weekly time control for a building (any node: every room under it) or a tariff
    group: ``windows`` JSON ``[{"days": [6, 0, 1, 2, 3], "off": "23:00", "on": "06:00"}]``
    (Monday 0; a window belongs to the day it starts on). ``applied``: the start (epoch) of the
    window whose trips were made, None outside every window."""

    id = AutoField()
    name = CharField(unique=True)
    node = ForeignKeyField(Node, null=True, on_delete="CASCADE")
    tariff_group = CharField(default="")
    windows = TextField(default="[]")
    enabled = BooleanField(default=True)
    applied = FloatField(null=True)
    updated_at = FloatField()
    updated_by = CharField(default="")


class ScheduleException(BaseModel):
    """A day when a schedule (or every schedule: None) does something else: ``windows`` JSON
    replaces the windows starting that day (``[]``: none, a holiday)."""

    id = AutoField()
    schedule = ForeignKeyField(Schedule, null=True, on_delete="CASCADE")
    day = CharField()  # YYYY-MM-DD
    windows = TextField(default="[]")
    note = TextField(default="")

    class Meta:
        indexes = ((("schedule", "day"), True),)


class LimitPlan(BaseModel):
    """Selective limiting: lower the power limit of (``action`` limit, to ``limit_w``) or trip
    (``action`` trip) a building's rooms or a tariff group's during a supply shortage.
    ``applied_at``: since when it is in force (None: not)."""

    id = AutoField()
    name = CharField(unique=True)
    node = ForeignKeyField(Node, null=True, on_delete="CASCADE")
    tariff_group = CharField(default="")
    action = CharField()
    limit_w = IntegerField(null=True)
    applied_at = FloatField(null=True)
    applied_by = CharField(default="")
    updated_at = FloatField()


class LimitPlanUndo(BaseModel):
    """What an applied plan changed, to undo exactly: each room's power limit before."""

    plan = ForeignKeyField(LimitPlan, on_delete="CASCADE")
    node = ForeignKeyField(Node, on_delete="CASCADE")
    had_rule = BooleanField()
    previous_limit_w = IntegerField(null=True)
    outbox_ids = TextField(default="[]")  # the writes to its meters (their ``previous``)

    class Meta:
        primary_key = CompositeKey("plan", "node")


class SmsMessage(BaseModel):
    """A text for a resident (``core/sms_outbox``): written with the event that causes it,
    sent by the process that polls. ``event``: what it is about, unique per number (a
    crossing, a trip), so an event is never texted twice; ``state``: pending, sending (handed
    to the sender: after a crash it is not sent again, it is marked unknown), sent, failed,
    skipped (over the daily cap), unknown."""

    id = AutoField()
    created_at = FloatField(index=True)
    phone = CharField()
    text = TextField()
    event = CharField()
    account = ForeignKeyField(Account, null=True, on_delete="SET NULL")
    state = CharField(default="pending", index=True)
    attempts = IntegerField(default=0)
    next_try_at = FloatField(default=0.0)
    last_error = TextField(default="")
    sent_at = FloatField(null=True)
    sender = CharField(default="")  # modem, http
    parts = IntegerField(default=0)

    class Meta:
        indexes = ((("event", "phone"), True),)


class SmsTemplate(BaseModel):
    """An edited text for an SMS kind and language (the default is in ``core/sms_templates``
    until someone edits it)."""

    kind = CharField()
    lang = CharField()
    text = TextField()
    updated_at = FloatField()
    updated_by = CharField(default="")

    class Meta:
        primary_key = CompositeKey("kind", "lang")


CONTROL_MODELS = [RoomRule, Appliance, RelayHold, ControlLog, Schedule, ScheduleException,
                  LimitPlan, LimitPlanUndo, SmsMessage, SmsTemplate]


# -- schema 8: reports made and kept --------------------------------------------------------
class ReportRecord(BaseModel):
    """A report the station made and kept (the monthly report on the 1st): its files and the
    totals it printed, so a later regeneration can be compared to it."""

    id = AutoField()
    month = CharField(index=True)  # YYYY-MM
    kind = CharField()  # monthly
    paths = TextField()  # JSON list of the files written
    totals = TextField()  # JSON: the report's totals in cents
    made_at = FloatField()
    made_by = CharField()


class Receipt(BaseModel):
    """Which booking each receipt number went to (every recharge's, whoever keeps the money).
    Append-only like the ledger (triggers refuse UPDATE and DELETE)."""

    no = BigIntegerField(primary_key=True)
    txn = ForeignKeyField(LedgerTxn, unique=True, on_delete="RESTRICT")


REPORT_MODELS = [ReportRecord, Receipt]


# -- schema 9: commissioning and bus diagnostics ------------------------------------------------
class BusHold(BaseModel):
    """A tool (a scan, the meter setup, the raw register tool, a commissioning run) has taken a
    bus from its poller: the poller, wherever it runs, closes its link and waits until the
    hold is released or expires (a tool that died gives the bus back within ``expires_at``)."""

    bus = ForeignKeyField(Bus, primary_key=True, on_delete="CASCADE")
    holder = CharField()  # operator name
    purpose = CharField()  # scan, setup, raw, commissioning
    pid = IntegerField()
    host = CharField()
    taken_at = FloatField()
    expires_at = FloatField()
    #: When the bus's poller had closed its link for this hold (None: not yet, or no poller).
    acknowledged_at = FloatField(null=True)



class _CommFigures(BaseModel):
    """What one bus, or one meter of it, did on the wire over a period (no table of its own).

    ``meter`` is the meter's id, 0 for the bus's own row (its cycles); no foreign key, so that
    a row is a handful of small integers (``storage/comm_history`` deletes the rows of a meter
    that is gone). Per meter: ``polls`` reads tried, ``ok`` of them good, and the Modbus
    transactions they took with the failed ones by kind; ``latency_*`` the response time of the
    good reads. Per bus: its full cycles (count, sum and worst seconds) and the least seconds a
    cycle's frames take on the wire at the bus's baud (None: a Modbus-TCP bus, no wire)."""

    start = IntegerField()  # epoch seconds: the minute's (or hour's) start
    bus = ForeignKeyField(Bus, on_delete="CASCADE", index=False)  # (in the primary key)
    meter = IntegerField()
    polls = IntegerField(default=0)
    ok = IntegerField(default=0)
    transactions = IntegerField(default=0)
    timeouts = IntegerField(default=0)
    crc_errors = IntegerField(default=0)
    exceptions = IntegerField(default=0)
    latency_sum_ms = FloatField(default=0.0)
    latency_max_ms = FloatField(default=0.0)
    cycles = IntegerField(default=0)
    cycle_sum_s = FloatField(default=0.0)
    cycle_max_s = FloatField(default=0.0)
    wire_limit_s = FloatField(null=True)


class CommMinute(_CommFigures):
    """Bus and meter health per minute, kept 48 hours (then rolled up into ``CommHour``)."""

    class Meta:
        primary_key = CompositeKey("start", "bus", "meter")
        without_rowid = True


class CommHour(_CommFigures):
    """Bus and meter health per hour, kept 90 days: the minutes older than 48 hours, summed."""

    class Meta:
        primary_key = CompositeKey("start", "bus", "meter")
        without_rowid = True


class CommissioningRun(BaseModel):
    """A bus commissioned: each meter's checklist (answers, serial, trip, close, energy,
    clock) as the technician ran it, and where its record (PDF) was written."""

    id = AutoField()
    bus = ForeignKeyField(Bus, null=True, on_delete="SET NULL")
    bus_name = CharField()  # kept when the bus is gone
    technician = CharField()
    started_at = FloatField()
    finished_at = FloatField()
    results = TextField()  # JSON: [{"meter", "address", "room", "checks": {name: [state, detail]}}]
    passed = IntegerField(default=0)
    failed = IntegerField(default=0)
    pdf = TextField(default="")


COMMISSIONING_MODELS = [BusHold, CommMinute, CommHour, CommissioningRun]


# -- schema 10: the residents' portal and online payment ----------------------------------------
class ResidentLogin(BaseModel):
    """A resident's portal password (``core/residents``): a salted scrypt hash, never the
    text; ``must_change`` while it is the initial one the desk handed out."""

    id = AutoField()
    occupant = ForeignKeyField(Occupant, unique=True, on_delete="CASCADE")
    password_hash = CharField()
    must_change = BooleanField(default=True)
    issued_at = FloatField()
    issued_by = CharField(default="")
    changed_at = FloatField(null=True)


class SignInAttempt(BaseModel):
    """A resident's sign-in attempt (the portal's rate limits per client and per room)."""

    id = AutoField()
    t = FloatField(index=True)
    client = CharField(index=True)
    room = CharField(index=True)
    ok = BooleanField(default=False)


class PortalSession(BaseModel):
    """A signed-in resident's session: ``key`` is the SHA-256 of the cookie's random id."""

    key = CharField(primary_key=True)
    occupant = ForeignKeyField(Occupant, on_delete="CASCADE")
    node = ForeignKeyField(Node, on_delete="CASCADE")
    csrf = CharField()
    created_at = FloatField()
    last_seen = FloatField()


class ResidentRequest(BaseModel):
    """A repair or dispute request from the portal; the front desk answers it."""

    id = AutoField()
    node = ForeignKeyField(Node, on_delete="CASCADE")
    occupant = ForeignKeyField(Occupant, null=True, on_delete="SET NULL")
    kind = CharField()  # repair, dispute
    text = TextField()
    created_at = FloatField(index=True)
    state = CharField(default="open")  # open, answered
    answer = TextField(default="")
    answered_by = CharField(default="")
    answered_at = FloatField(null=True)


class PaymentOrder(BaseModel):
    """A resident's online payment (``core/online_payments``): made before the hand-over to the
    provider, paid by the provider's verified notification (booked once, by its transaction
    id), or refused."""

    id = AutoField()
    number = CharField(unique=True)  # the station's order number (out_trade_no)
    account = ForeignKeyField(Account, on_delete="RESTRICT")
    amount_cents = BigIntegerField()
    channel = CharField()  # alipay, wechat
    state = CharField(default="created", index=True)  # created, paid, refused
    created_at = FloatField(index=True)
    paid_at = FloatField(null=True)
    provider_txn = CharField(null=True, unique=True)  # trade_no / transaction_id
    txn = ForeignKeyField(LedgerTxn, null=True, on_delete="RESTRICT")


PORTAL_MODELS: list[type[BaseModel]] = [ResidentLogin, SignInAttempt, PortalSession,
                                        ResidentRequest, PaymentOrder]
