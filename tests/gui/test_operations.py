"""The one path every act takes, in the window: sign-in and its lock-out, what each role is
offered, a recharge that redraws tree, panel and table from one signal, the idle lock, the
audit view and its red banner, refunds and corrections."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest
from PySide6.QtWidgets import QMessageBox

from app.core import audit, operators
from app.core.operators import Operator, Role
from app.storage import accounts as store
from app.storage import ledger
from app.storage.models import AuditEntry
from app.ui.language import apply_language
from app.ui.live_store import MeterState
from app.ui.runner import OperationRunner
from app.ui.session import Session
from app.views.audit_view import AuditView
from app.views.bookings_dialog import BookingsDialog
from app.views.password_dialogs import ChangePasswordDialog, FirstAdministratorDialog
from app.views.room_table import COL
from app.views.sign_in import SignInDialog

from .conftest import store_readings

SYSTEM = Operator.system("test")


def _adopted_everywhere() -> None:
    """The demo's accounts have taken over their meters' money (as after the first billing)."""
    for acct_id in store.accounts_to_adopt():
        store.adopted(acct_id)


def _ctx(role: str = "administrator", name: str | None = None):
    return SimpleNamespace(runner=OperationRunner(),
                           session=Session(Operator(name or role, Role(role))))


# -- signing in ----------------------------------------------------------------------------------
def test_sign_in_refuses_a_wrong_password_and_locks_after_five(qtbot, seed_campus, shoot):
    operators.add_operator(SYSTEM, "wang", "cashier", "right-pass", must_change=False)
    runner = OperationRunner()
    dialog = SignInDialog(runner, campus="湘塘校区")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.name.setText("wang")
    for _n in range(5):
        dialog.password.setText("wrong-pass")
        with qtbot.waitSignal(dialog.failed, timeout=10_000):
            dialog.submit()
        assert dialog.operator is None and dialog.isVisible()
    assert "locked" in dialog.message.text()
    shoot(dialog, "sign_in_locked")
    dialog.password.setText("right-pass")  # even the right password: locked for 5 minutes
    with qtbot.waitSignal(dialog.failed, timeout=10_000):
        dialog.submit()
    assert "locked" in dialog.message.text() and dialog.operator is None
    failures = AuditEntry.select().where((AuditEntry.kind == "sign_in_failed")
                                         & (AuditEntry.operator == "wang")).count()
    assert failures == 6


def test_sign_in_with_the_right_password(qtbot, seed_campus, shoot):
    operators.add_operator(SYSTEM, "li", "finance", "finance-pass", must_change=False)
    dialog = SignInDialog(OperationRunner())
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.name.setText("li")
    dialog.password.setText("wrong")
    with qtbot.waitSignal(dialog.failed, timeout=10_000):
        dialog.submit()
    assert dialog.message.text() == "wrong name or password"
    shoot(dialog, "sign_in_wrong")
    dialog.password.setText("finance-pass")
    with qtbot.waitSignal(dialog.signedIn, timeout=10_000) as signed:
        dialog.submit()
    assert signed.args[0].name == "li" and signed.args[0].role == "finance"


def test_first_start_creates_the_administrator(qtbot, tmp_path, shoot):
    from app.storage.db import open_database

    open_database(tmp_path / "new.db")
    dialog = FirstAdministratorDialog(OperationRunner())
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.password.setText("boss-pass-1")
    dialog.again.setText("boss-pass-2")
    dialog.submit()
    assert dialog.message.text() == "The two passwords differ."
    dialog.again.setText("boss-pass-1")
    shoot(dialog, "first_start")
    with qtbot.waitSignal(dialog.done_, timeout=10_000) as done:
        dialog.submit()
    assert done.args[0].name == "admin" and done.args[0].role == "administrator"
    assert operators.has_operators()


def test_an_initial_password_is_changed_first(qtbot, seed_campus, shoot):
    change = operators.add_operator(SYSTEM, "zhao", "cashier", "given-pass")
    assert change.operator.must_change_password
    me = operators.sign_in("zhao", "given-pass")
    dialog = ChangePasswordDialog(OperationRunner(), me, forced=True)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.current.setText("given-pass")
    dialog.password.setText("given-pass")
    dialog.again.setText("given-pass")
    with qtbot.waitSignal(dialog.runner.jobDone, timeout=10_000):
        dialog.submit()
    assert "not the current one" in dialog.message.text()
    dialog.password.setText("mine-now")
    dialog.again.setText("mine-now")
    shoot(dialog, "change_password_forced")
    with qtbot.waitSignal(dialog.done_, timeout=10_000):
        dialog.submit()
    assert not operators.sign_in("zhao", "mine-now").must_change_password


# -- what each role is offered -------------------------------------------------------------------
@pytest.mark.parametrize("role, shown, hidden", [
    ("cashier", {"recharge", "import_payments"},
     {"refund", "correct", "tariffs", "manage_operators", "audit", "station_settings",
      "backup"}),
    ("finance", {"refund", "correct", "tariffs", "audit", "import_payments"},
     {"recharge", "manage_operators", "station_settings", "backup"}),
    ("maintenance", {"backup"}, {"recharge", "refund", "tariffs", "audit"}),
    ("viewer", set(), {"recharge", "import_payments", "refund", "correct", "tariffs", "audit",
                       "backup", "manage_operators"}),
    ("administrator", {"recharge", "refund", "correct", "tariffs", "audit", "manage_operators",
                       "station_settings", "backup"}, set()),
])
def test_the_window_offers_what_the_role_allows(open_window, seed_campus, shoot, role, shown,
                                                 hidden):
    window = open_window(seed_campus, role=role)
    for key in shown:
        assert window.actions_[key].isVisible(), key
    for key in hidden:
        assert not window.actions_[key].isVisible(), key
    assert window.menus["desk"].menuAction().isVisible() == bool(
        shown & {"recharge", "import_payments", "refund", "correct"})
    assert f"({operators.role_text(role)})" in window.operator_label.text()
    if role == "cashier":
        shoot(window, "window_cashier")


def test_the_demo_says_so_in_the_title(open_window, seed_campus):
    window = open_window(seed_campus)
    window.ctx.demo = True
    window.retranslate()
    assert window.windowTitle().endswith("DEMO")


# -- one act, one signal, every view -------------------------------------------------------------
def test_a_recharge_updates_tree_panel_and_table_through_one_signal(qtbot, open_window,
                                                                     seed_campus, shoot):
    store_readings(power_of=lambda i: 100.0)
    _adopted_everywhere()  # every room's balance is its ledger's: zero
    window = open_window(seed_campus, role="cashier", name="王老师")
    ctx = window.ctx
    room = ctx.index.exact("1-101")
    live = ctx.store.meter(ctx.index.meters_of[room][0])
    assert live.values.relay_closed is not None
    building = ctx.index.parent_of(ctx.index.parent_of(room))
    window.tree.select_node(building)  # the table of the building, with 1-101 in it
    table = window.table
    row = next(r for r, (node, _m) in enumerate(table.model.rows) if node == room)
    assert table.model.index(row, COL["balance"]).data() == "¥0.00"
    tree_state = window.tree.model._state
    before_state = tree_state[room]
    assert before_state in (MeterState.LOW_BALANCE, MeterState.TRIPPED, MeterState.KEEP_POWER)

    emitted = []
    ctx.runner.changed.connect(emitted.append)
    window.open_recharge("1-101")
    dialog = window.recharge_dialog
    qtbot.waitUntil(lambda: dialog.account is not None, timeout=5000)
    dialog.amount.setText("100")
    with qtbot.waitSignal(dialog.recharged, timeout=10_000):
        assert dialog.confirm()
    assert len(emitted) == 1 and room in emitted[0].nodes
    # the table and the tree, from that one signal
    assert table.model.index(row, COL["balance"]).data() == "¥100.00"
    if before_state == MeterState.LOW_BALANCE:
        assert tree_state[room] == MeterState.ONLINE
    # and the room's panel, once shown
    window.tree.select_node(room)
    assert window.panel.balance.text() == "Balance ¥100.00"
    dialog.close()
    shoot(window, "panel_after_one_signal")


def test_the_panel_shows_the_account_and_its_balance(qtbot, open_window, seed_campus, shoot):
    store_readings()
    window = open_window(seed_campus)
    window.tree.select_node(window.ctx.index.exact("1-101"))
    panel = window.panel
    assert panel.account_line.text().startswith("Account A")
    assert "taken over from the meter" in panel.balance.text()  # the demo adopts at first
    assert panel.recharge_button.isVisible()
    shoot(window, "panel_with_account")


# -- the idle lock -------------------------------------------------------------------------------
def test_the_window_locks_when_idle_and_unlocks_with_the_password(qtbot, open_window,
                                                                   seed_campus, shoot):
    operators.add_operator(SYSTEM, "sun", "cashier", "sun-pass-1", must_change=False)
    window = open_window(seed_campus, role="cashier", name="sun")
    window.idle.set_minutes(1)
    window.idle.last_input -= 61
    window.idle.check()
    assert window.ctx.session.locked and window.pages.currentWidget() is window.lock_page
    assert not window.menuBar().isEnabled()
    unlock = window.dialogs["unlock"]
    assert unlock.name.text() == "sun" and unlock.name.isReadOnly()
    shoot(window, "window_locked")
    unlock.password.setText("wrong")
    with qtbot.waitSignal(unlock.failed, timeout=10_000):
        unlock.submit()
    assert window.ctx.session.locked
    unlock.password.setText("sun-pass-1")
    with qtbot.waitSignal(unlock.signedIn, timeout=10_000):
        unlock.submit()
    assert not window.ctx.session.locked and window.pages.currentWidget() is window.splitter
    assert window.menuBar().isEnabled()


# -- the audit view ------------------------------------------------------------------------------
def test_the_audit_view_shows_entries_and_a_broken_chain(qtbot, seed_campus, shoot,
                                                         artifacts_dir, tmp_path):
    operators.add_operator(SYSTEM, "wang", "cashier", "right-pass", must_change=False)
    operators.sign_in("wang", "right-pass")
    ctx = _ctx("finance", "li")
    view = AuditView(ctx)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitUntil(lambda: view.page is not None, timeout=10_000)
    assert view.table.rowCount() >= 2 and not view.banner.isVisible()
    acts = {view.table.item(r, 3).text() for r in range(view.table.rowCount())}
    assert "signed in" in acts and "operator added" in acts
    assert "whole" in view.chain.text()
    shoot(view, "audit_view")
    with qtbot.waitSignal(ctx.runner.jobDone, timeout=10_000):
        view.export(tmp_path / "audit.xlsx")
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "audit.xlsx").active
    assert sheet["D1"].value == "Act" and sheet.max_row == view.table.rowCount() + 1

    kind = view.kind.findData("sign_in")
    view.kind.setCurrentIndex(kind)
    with qtbot.waitSignal(ctx.runner.jobDone, timeout=10_000):
        view.reload()
    assert {view.table.item(r, 3).text() for r in range(view.table.rowCount())} == \
        {"signed in"}

    con = sqlite3.connect(seed_campus)
    con.execute("DROP TRIGGER audit_entry_no_update")
    con.execute("UPDATE audit_entry SET operator = 'mallory' WHERE id = 2")
    con.commit()
    con.close()
    view.kind.setCurrentIndex(0)
    with qtbot.waitSignal(ctx.runner.jobDone, timeout=10_000):
        view.reload()
    assert view.banner.isVisible() and "entry 2" in view.banner.text()
    shoot(view, "audit_view_broken")
    apply_language("zh_CN")
    with qtbot.waitSignal(ctx.runner.jobDone, timeout=10_000):
        view.retranslate()
    assert "篡改" in view.banner.text() and "内容被修改" in view.banner.text()
    shoot(view, "audit_view_broken_zh_CN")


def test_the_audit_view_is_refused_to_a_cashier(qtbot, seed_campus, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    ctx = _ctx("cashier")
    view = AuditView(ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: shown != [], timeout=10_000)
    assert "permission denied" in shown[0] and view.table.rowCount() == 0


# -- refunds and corrections ---------------------------------------------------------------------
def test_refund_and_correction_in_the_bookings_dialog(qtbot, seed_campus, shoot):
    room = next(a for a in store.open_accounts() if a.room == "1-101")
    _adopted_everywhere()
    ctx = _ctx("finance", "li")
    # a station-kept account with money on it
    from app.storage.models import Account

    Account.update(mode="station").where(Account.id == room.id).execute()
    from app.core.recharge import recharge

    booked = recharge(Operator("desk", Role.CASHIER), room.id, 80_00, "cash")
    dialog = BookingsDialog(ctx, initial_query="1-101")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.account is not None and dialog.balance_cents == 80_00
    assert dialog.refund_button.isEnabled()
    dialog.ask_refund = lambda: (30_00, "cash", "moved to another dorm")
    with qtbot.waitSignal(ctx.runner.jobDone, timeout=10_000):
        dialog.refund()
    assert ledger.balance(room.id) == 50_00 and "Refunded ¥30.00" in dialog.message.text()
    row = next(r for r, t in enumerate(dialog.txns) if t.id == booked.txn_id)
    dialog.table.selectRow(row)
    dialog.ask_reason = lambda txn: "booked to the wrong room"
    with qtbot.waitSignal(ctx.runner.jobDone, timeout=10_000):
        dialog.correct()
    assert ledger.balance(room.id) == -30_00
    with qtbot.waitSignal(ctx.runner.jobDone, timeout=10_000):
        dialog.table.selectRow(next(r for r, t in enumerate(dialog.txns)
                                    if t.id == booked.txn_id))
        dialog.correct()
    assert "already corrected" in dialog.message.text()
    shoot(dialog, "bookings_dialog")
    kinds = [e.kind for e in audit.entries(Operator("li", Role.FINANCE))]
    assert kinds[:2] == ["correction", "refund"]


def test_a_cashier_has_no_refund_or_correction_in_the_dialog(qtbot, seed_campus):
    dialog = BookingsDialog(_ctx("cashier"), initial_query="1-101")
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.refund_button.isVisible() and not dialog.correct_button.isVisible()


def test_back_up_now_from_the_window(qtbot, open_window, seed_campus, monkeypatch):
    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: told.append(a[2]))
    window = open_window(seed_campus, role="maintenance")
    with qtbot.waitSignal(window.ctx.runner.jobDone, timeout=30_000) as done:
        window.actions_["backup"].trigger()
    job = done.args[0]
    assert job.error is None and job.result.path.exists()
    assert job.result.path.parent == seed_campus.parent / "backups"
    assert told and str(job.result.path) in told[0]
    last = AuditEntry.select().order_by(AuditEntry.id.desc()).first()
    assert (last.kind, last.operator) == ("backup", "maintenance")


@pytest.mark.parametrize("key, dialog", [
    ("recharge", "recharge"), ("import_payments", "import"), ("refund", "bookings"),
    ("correct", "bookings"), ("tariffs", "tariffs"), ("audit", "audit"),
    ("manage_operators", "operators"), ("station_settings", "station_settings"),
    ("account", "account"),
])
def test_each_menu_action_opens_its_screen(qtbot, open_window, seed_campus, key, dialog):
    window = open_window(seed_campus)
    window.tree.select_node(window.ctx.index.exact("1-101"))
    window.actions_[key].trigger()
    opened = window.dialogs[dialog]
    qtbot.waitExposed(opened)
    assert opened.isVisible()
    window.ctx.runner.wait_all()
    opened.close()


def test_the_bookings_dialog_shows_the_chosen_account_s_own_balance(qtbot, seed_campus):
    """A room's closed account, with a new one open: its balance, not the new one's."""
    from app.core import accounts
    from app.core.recharge import recharge

    old = next(a for a in store.open_accounts() if a.room == "1-101")
    store.adopted(old.id)
    accounts.settle_and_close(SYSTEM, old.id, "refund")
    new = accounts.open_account(SYSTEM, old.node_id, mode="station").account
    recharge(Operator("desk", Role.CASHIER), new.id, 40_00, "cash")
    dialog = BookingsDialog(_ctx("finance", "li"))
    qtbot.addWidget(dialog)
    dialog.show_account(store.get_account(old.id))
    assert dialog.balance_cents == 0 and "¥0.00" in dialog.heading.text()
    dialog.show_account(new)
    assert dialog.balance_cents == 40_00
