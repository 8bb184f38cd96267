"""Operators and roles: who may do what, signing in, passwords.

Five roles (administrator, cashier, finance, maintenance, viewer) each carry a set of
permissions; every operation checks the one it needs with ``require`` in the core, whatever the
front end (window, command line, portal) showed or hid. Passwords are stored as scrypt hashes
(``hashlib.scrypt``: memory-hard, salted per operator); a name is locked for
``LOCK_S`` after ``MAX_FAILURES`` wrong passwords in a row. Every sign-in and every failed one
is in the audit log.

The automatic parts of the station (billing, the daily backup, building the demo) act as a
*system* operator: it has every permission and cannot sign in.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import secrets
import string
import time
from dataclasses import dataclass

from app.core import audit
from app.core.changes import Changes
from app.errors import UserFacingError
from app.i18n import N_, _
from app.storage import operators as store
from app.storage.db import write_transaction
from app.storage.models import Meta

#: Scripts and tests give a password in this environment variable (never in a flag).
PASSWORD_ENV = "VOLTKEEPER_PASSWORD"
MAX_FAILURES = 5
LOCK_S = 300.0
MIN_PASSWORD_LENGTH = 6
#: scrypt cost: N=2^14, r=8 takes 16 MB and about 50 ms: cheap for a sign-in, dear for a guesser.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class Role(enum.StrEnum):
    ADMINISTRATOR = "administrator"
    CASHIER = "cashier"
    FINANCE = "finance"
    MAINTENANCE = "maintenance"
    VIEWER = "viewer"
    SYSTEM = "system"  # the station's own automatic acts; never a person, never signs in


class Permission(enum.StrEnum):
    VIEW = "view"
    RECHARGE = "recharge"
    IMPORT_PAYMENTS = "import_payments"
    MANAGE_ACCOUNTS = "manage_accounts"  # open accounts, occupants in and out
    CLOSE_ACCOUNTS = "close_accounts"  # settle and close (refunds the balance)
    REFUND = "refund"
    CORRECT = "correct"
    SET_TARIFFS = "set_tariffs"
    CONTROL_METER = "control_meter"  # trip, close, keep power on one meter
    CONTROL_BATCH = "control_batch"  # the same on a floor, a building, a group
    RAW_REGISTERS = "raw_registers"
    COMMISSION = "commission"  # buses, meters, scans
    REPORTS = "reports"
    VIEW_AUDIT = "view_audit"
    MANAGE_OPERATORS = "manage_operators"
    SETTINGS = "settings"
    BACKUP = "backup"
    RESTORE = "restore"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMINISTRATOR: frozenset(Permission),
    Role.SYSTEM: frozenset(Permission),
    Role.CASHIER: frozenset({P.VIEW, P.RECHARGE, P.IMPORT_PAYMENTS, P.MANAGE_ACCOUNTS}),
    Role.FINANCE: frozenset({P.VIEW, P.IMPORT_PAYMENTS, P.CLOSE_ACCOUNTS, P.REFUND, P.CORRECT,
                             P.SET_TARIFFS, P.REPORTS, P.VIEW_AUDIT}),
    Role.MAINTENANCE: frozenset({P.VIEW, P.CONTROL_METER, P.RAW_REGISTERS, P.COMMISSION,
                                 P.BACKUP}),
    Role.VIEWER: frozenset({P.VIEW}),
}
#: Roles a person can have (the system role is not one).
PERSON_ROLES = tuple(r for r in Role if r is not Role.SYSTEM)

ROLE_TEXT = {Role.ADMINISTRATOR: N_("administrator"), Role.CASHIER: N_("cashier"),
             Role.FINANCE: N_("finance"), Role.MAINTENANCE: N_("maintenance"),
             Role.VIEWER: N_("viewer"), Role.SYSTEM: N_("system")}
PERMISSION_TEXT = {
    P.VIEW: N_("view the campus"), P.RECHARGE: N_("recharge"),
    P.IMPORT_PAYMENTS: N_("import payments"),
    P.MANAGE_ACCOUNTS: N_("open accounts or move occupants"),
    P.CLOSE_ACCOUNTS: N_("close accounts"), P.REFUND: N_("refund"), P.CORRECT: N_("correct"),
    P.SET_TARIFFS: N_("change tariffs"), P.CONTROL_METER: N_("control a meter"),
    P.CONTROL_BATCH: N_("control many meters"), P.RAW_REGISTERS: N_("use raw registers"),
    P.COMMISSION: N_("commission buses and meters"), P.REPORTS: N_("print reports"),
    P.VIEW_AUDIT: N_("read the audit log"), P.MANAGE_OPERATORS: N_("manage operators"),
    P.SETTINGS: N_("change settings"), P.BACKUP: N_("make backups"),
    P.RESTORE: N_("restore backups"),
}


#: The station's own acting names (bookings and log entries made without a person), as read.
SYSTEM_NAMES = {"billing": N_("billing"), "system": N_("system"), "demo": N_("demo"),
                "daily backup": N_("daily backup")}


def operator_text(name: str) -> str:
    """An operator's name as the desk shows it: the station's own names translated."""
    label = SYSTEM_NAMES.get(name)
    return _(label) if label else name


def role_text(role: str) -> str:
    label = ROLE_TEXT.get(Role(role)) if role in Role.__members__.values() else None
    return _(label) if label else role


def permission_text(permission: Permission) -> str:
    return _(PERMISSION_TEXT[permission])


@dataclass(frozen=True)
class Operator:
    """Who acts: a signed-in person, or the system."""

    name: str
    role: Role
    id: int | None = None
    must_change_password: bool = False

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    @classmethod
    def system(cls, name: str = "system") -> Operator:
        return cls(name, Role.SYSTEM)


class PermissionDenied(UserFacingError):
    """The operator's role does not allow the act (the command line exits with 3)."""

    def __init__(self, operator: Operator, permission: Permission) -> None:
        super().__init__(_("permission denied: {name} ({role}) may not {what} (needs the "
                           "'{permission}' permission)").format(
            name=operator.name, role=role_text(operator.role),
            what=permission_text(permission), permission=permission.value))
        self.operator = operator
        self.permission = permission


class SignInFailed(UserFacingError):
    """Wrong name or password, a disabled operator, or a name locked after failures."""


def require(operator: Operator, permission: Permission) -> None:
    """Refuse (and log the refusal) unless ``operator`` may ``permission``."""
    if not isinstance(operator, Operator):
        raise TypeError("an operation takes the acting Operator")
    if operator.can(permission):
        return
    audit.record(operator.name, "denied", target=permission.value,
                 detail=f"{operator.role.value} may not {permission.value}")
    raise PermissionDenied(operator, permission)


# -- passwords ---------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), maxmem=64 * 1024 * 1024, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


#: Checked against when a name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


def validate_password(password: str, name: str = "") -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserFacingError(_("a password has at least {n} characters").format(
            n=MIN_PASSWORD_LENGTH))
    if name and password.strip().lower() == name.strip().lower():
        raise UserFacingError(_("a password is not the operator's name"))
    return password


def generate_password(length: int = 12) -> str:
    """A password to hand out (no look-alike characters)."""
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in "Il1O0o")
    return "".join(secrets.choice(alphabet) for _ in range(length))


# -- signing in --------------------------------------------------------------------------------
def _record(row: store.OperatorRow) -> Operator:
    return Operator(row.name, Role(row.role), row.id, row.must_change_password)


def _locked(name: str, remaining_s: float) -> SignInFailed:
    return SignInFailed(_("{name} is locked after {n} wrong passwords; try again in {minutes} "
                          "min").format(name=name, n=MAX_FAILURES,
                                        minutes=max(1, round(remaining_s / 60))))


def sign_in(name: str, password: str, *, where: str = "window",
            now: float | None = None) -> Operator:
    """The operator ``name`` if ``password`` is theirs; refused (and logged) otherwise."""
    now = time.time() if now is None else now
    name = name.strip()
    refusal: SignInFailed | None = None
    with write_transaction():  # the failure is recorded (and counted) even though we refuse
        row = store.operator_by_name(name)
        if row is None:
            check_password(password, _DUMMY_HASH)
            # not the text itself: a password typed into the name field must not be kept
            audit.record("?", "sign_in_failed", target="?",
                         detail=f"{where}: unknown name ({len(name)} characters)", t=now)
            refusal = SignInFailed(_("wrong name or password"))
        elif row.disabled:
            audit.record(name, "sign_in_failed", target=name, detail=f"{where}: disabled", t=now)
            refusal = SignInFailed(_("{name} is disabled; ask an administrator").format(
                name=name))
        elif row.locked_until is not None and row.locked_until > now:
            audit.record(name, "sign_in_failed", target=name, detail=f"{where}: locked", t=now)
            refusal = _locked(name, row.locked_until - now)
        elif not check_password(password, row.password_hash):
            failures = row.failed_attempts + 1
            locked = failures >= MAX_FAILURES
            store.update_operator(row.id, failed_attempts=0 if locked else failures,
                                  locked_until=now + LOCK_S if locked else row.locked_until)
            audit.record(name, "sign_in_failed", target=name,
                         detail=f"{where}: wrong password ({failures} in a row)"
                         + ("; locked" if locked else ""), t=now)
            refusal = _locked(name, LOCK_S) if locked else SignInFailed(
                _("wrong name or password"))
        else:
            store.update_operator(row.id, failed_attempts=0, locked_until=None,
                                  last_sign_in_at=now)
            audit.record(name, "sign_in", target=name, detail=where, t=now)
    if refusal is not None:
        raise refusal
    assert row is not None
    return _record(row)


def is_demo_database() -> bool:
    row = Meta.get_or_none(Meta.key == "demo")
    return row is not None and row.value == "1"


def demo_sign_in(name: str) -> Operator:
    """``--demo``: sign in as a demo operator without a password; only on a demo database."""
    if not is_demo_database():
        raise SignInFailed(_("only a demo database signs in without a password"))
    row = store.operator_by_name(name)
    if row is None or row.disabled:
        raise SignInFailed(_("the demo has no operator {name}").format(name=name))
    with write_transaction():
        store.update_operator(row.id, last_sign_in_at=time.time())
        audit.record(name, "sign_in", target=name, detail="demo, without a password")
    return Operator(row.name, Role(row.role), row.id, False)


# -- managing operators ------------------------------------------------------------------------
@dataclass(frozen=True)
class OperatorInfo:
    """What a list of operators shows (never the hash)."""

    id: int
    name: str
    role: Role
    disabled: bool
    must_change_password: bool
    locked_until: float | None
    last_sign_in_at: float | None
    created_at: float
    created_by: str


@dataclass(frozen=True)
class OperatorChange:
    operator: OperatorInfo
    changes: Changes


def _info(row: store.OperatorRow) -> OperatorInfo:
    return OperatorInfo(row.id, row.name, Role(row.role), row.disabled, row.must_change_password,
                        row.locked_until, row.last_sign_in_at, row.created_at, row.created_by)


def has_operators() -> bool:
    return store.count_operators() > 0


def list_operators(operator: Operator) -> list[OperatorInfo]:
    """Every operator, with their state (for administrators)."""
    require(operator, Permission.MANAGE_OPERATORS)
    return [_info(r) for r in store.operators()]


def demo_operators() -> list[OperatorInfo]:
    """The demo's operators, to switch between without a password (a demo database only)."""
    if not is_demo_database():
        raise SignInFailed(_("only a demo database signs in without a password"))
    return [_info(r) for r in store.operators() if not r.disabled]


def _parse_role(role: str) -> Role:
    try:
        parsed = Role(role)
    except ValueError:
        parsed = None
    if parsed is None or parsed is Role.SYSTEM:
        raise UserFacingError(_("unknown role {role!r} (use: {known})").format(
            role=role, known=", ".join(r.value for r in PERSON_ROLES)))
    return parsed


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 40 or any(c.isspace() or not c.isprintable() for c in name):
        raise UserFacingError(_("an operator's name is 1 to 40 characters without spaces"))
    return name


def add_operator(operator: Operator | None, name: str, role: str, password: str, *,
                 must_change: bool = True, check_strength: bool = True) -> OperatorChange:
    """Add an operator. ``operator`` None creates the station's first administrator (only
    while there is no operator at all). ``check_strength`` False: a password given by a
    script (the demo's ``VOLTKEEPER_PASSWORD``) is taken as it is."""
    name, parsed = _check_name(name), _parse_role(role)
    if check_strength:
        validate_password(password, name)
    elif not password:
        raise UserFacingError(_("a password cannot be empty"))
    if operator is None:
        if has_operators():
            raise UserFacingError(_("this station has operators: an administrator adds more"))
        if parsed is not Role.ADMINISTRATOR:
            raise UserFacingError(_("the first operator is an administrator"))
        operator = Operator(name, Role.ADMINISTRATOR)
        kind = "first_administrator"
    else:
        require(operator, Permission.MANAGE_OPERATORS)
        kind = "operator_add"
    hashed = hash_password(password)
    now = time.time()
    with write_transaction():
        taken = {o.name.casefold(): o.name for o in store.operators()}
        if name.casefold() in taken:
            raise UserFacingError(_("there is an operator {name} already").format(
                name=taken[name.casefold()]))
        store.insert_operator(name, parsed.value, hashed, must_change, operator.name, now)
        audit.record(operator.name, kind, target=name, after={"role": parsed.value,
                                                              "must_change": must_change})
        row = store.operator_by_name(name)
    assert row is not None
    return OperatorChange(_info(row), Changes(operators=True))


def _existing(name: str) -> store.OperatorRow:
    row = store.operator_by_name(name.strip())
    if row is None:
        raise UserFacingError(_("no operator {name}").format(name=name))
    return row


def change_own_password(operator: Operator, current: str, new: str) -> OperatorChange:
    """An operator changes their own password (also the forced change of an initial one)."""
    row = _existing(operator.name)
    if not check_password(current, row.password_hash):
        audit.record(operator.name, "password_change_failed", target=operator.name,
                     detail="wrong current password")
        raise SignInFailed(_("the current password is wrong"))
    validate_password(new, operator.name)
    if new == current:
        raise UserFacingError(_("choose a new password, not the current one"))
    return _set_password(operator, row, new, must_change=False, kind="password_change")


def reset_password(operator: Operator, name: str, new: str) -> OperatorChange:
    """An administrator gives ``name`` a new initial password (to be changed at first use);
    it also lifts a lock."""
    require(operator, Permission.MANAGE_OPERATORS)
    row = _existing(name)
    validate_password(new, row.name)
    return _set_password(operator, row, new, must_change=True, kind="password_reset")


def _set_password(operator: Operator, row: store.OperatorRow, new: str, *, must_change: bool,
                  kind: str) -> OperatorChange:
    """Store ``new`` for ``row`` (which lifts a lock-out), audited as ``kind``."""
    hashed = hash_password(new)
    with write_transaction():
        store.update_operator(row.id, password_hash=hashed, must_change_password=must_change,
                              password_changed_at=time.time(), failed_attempts=0,
                              locked_until=None)
        audit.record(operator.name, kind, target=row.name)
    return OperatorChange(_info(_existing(row.name)), Changes(operators=True))


def set_disabled(operator: Operator, name: str, disabled: bool = True) -> OperatorChange:
    """Disable (or enable again) an operator; the last active administrator stays."""
    require(operator, Permission.MANAGE_OPERATORS)
    row = _existing(name)
    with write_transaction():
        if disabled and row.role == Role.ADMINISTRATOR and not row.disabled \
                and store.count_operators(Role.ADMINISTRATOR.value) <= 1:
            raise UserFacingError(_("{name} is the last administrator and stays enabled")
                                  .format(name=row.name))
        # enabling also lifts a lock-out: an administrator's way to let someone in again
        store.update_operator(row.id, disabled=disabled,
                              **({} if disabled else {"failed_attempts": 0,
                                                      "locked_until": None}))
        audit.record(operator.name, "operator_disable" if disabled else "operator_enable",
                     target=row.name, before={"disabled": row.disabled},
                     after={"disabled": disabled})
    return OperatorChange(_info(_existing(row.name)), Changes(operators=True))


def set_role(operator: Operator, name: str, role: str) -> OperatorChange:
    require(operator, Permission.MANAGE_OPERATORS)
    row, parsed = _existing(name), _parse_role(role)
    with write_transaction():
        if row.role == Role.ADMINISTRATOR and parsed is not Role.ADMINISTRATOR \
                and not row.disabled and store.count_operators(Role.ADMINISTRATOR.value) <= 1:
            raise UserFacingError(_("{name} is the last administrator and stays one")
                                  .format(name=row.name))
        store.update_operator(row.id, role=parsed.value)
        audit.record(operator.name, "operator_role", target=row.name,
                     before={"role": row.role}, after={"role": parsed.value})
    return OperatorChange(_info(_existing(row.name)), Changes(operators=True))
