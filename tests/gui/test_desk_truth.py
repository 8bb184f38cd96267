"""The front desk tells the truth: the room's account beside its meter's money, a closed
account found and said closed, accounts and occupants from the window, recharges not crowded
out by billing, receipts that say what happened on A4 and on 80 mm paper, numbers never cut,
old readings shown as stale, and a bus that is down named with its reason."""

from __future__ import annotations

import shutil
import subprocess
import time
from decimal import Decimal
from types import SimpleNamespace

import pytest

from app.core import accounts
from app.core.billing import bill
from app.core.live import BusLive, LiveBatch, MeterLive
from app.core.operators import Operator, Role
from app.core.recharge import recharge
from app.drivers.meter_values import MeterValues
from app.storage import accounts as store
from app.storage import campus, readings
from app.storage.readings import BusOutcome, PollOutcome
from app.ui.language import apply_language
from app.ui.live_store import MeterState
from app.ui.receipt import A4, ROLL, receipt_pdf
from app.ui.runner import OperationRunner
from app.ui.session import Session
from app.views.account_dialog import AccountDialog
from app.views.recharge_dialog import RechargeDialog
from app.views.room_table import COLUMNS

from .conftest import store_readings

SYSTEM = Operator.system("test")
SIZES = ((1024, 768), (1920, 1080))


def _adopt_all() -> None:
    for acct_id in store.accounts_to_adopt():
        store.adopted(acct_id)


def _read(meter_id: int, money_cents: int, t: float | None = None) -> None:
    t = time.time() if t is None else t
    readings.write_batch([PollOutcome(meter_id, t, True, values=MeterValues(
        read_at=t, voltage_v=220.0, active_power_w=80.0, energy_kwh=Decimal("100.00"),
        remaining_money_cents=money_cents, relay_closed=True, control_mode="auto"))])


# -- the panel -----------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_the_panel_shows_account_balance_and_the_meter_beside_it(qtbot, open_window,
                                                                 seed_campus, shoot, language):
    store_readings(power_of=lambda i: 60.0)
    _adopt_all()
    room = next(a for a in store.open_accounts() if a.room == "1-101")
    recharge(Operator("desk", Role.CASHIER), room.id, 50_00, "cash")
    meter = store.meters_of_node(room.node_id)[0][0]
    _read(meter, 47_80)  # the meter holds 2.20 less than the books
    apply_language(language)
    window = open_window(seed_campus)
    window.tree.select_node(room.node_id)
    panel = window.panel
    assert room.number in panel.account_line.text()
    assert "50.00" in panel.balance.text()
    assert "47.80" in panel.difference.text() and "-¥2.20" in panel.difference.text()
    assert panel.difference.styleSheet() == "color: #c62828;"  # beyond the tolerance
    for w, h in SIZES:
        window.resize(w, h)
        shoot(window, f"truth_panel_{language}_{w}x{h}")
        assert panel.balance.width() >= panel.balance.sizeHint().width()
        assert panel.difference.width() >= panel.difference.sizeHint().width()


# -- a closed account ----------------------------------------------------------------------------
def test_a_closed_account_is_found_and_said_closed(qtbot, seed_campus, shoot):
    _adopt_all()
    acct = next(a for a in store.open_accounts() if a.room == "1-103")
    meter = store.meters_of_node(acct.node_id)[0][0]
    _read(meter, 0)
    accounts.close_account(Operator("li", Role.FINANCE), acct.id)
    ctx = SimpleNamespace(runner=OperationRunner(), session=Session(Operator("desk",
                                                                            Role.CASHIER)))
    dlg = RechargeDialog(ctx, initial_query="1-103")
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.account is not None and dlg.account.id == acct.id and not dlg.account.is_open
    assert dlg.results.item(0).text() == "1-103 (closed)"
    assert "closed on" in dlg.mode.text()
    dlg.amount.setText("20")
    assert not dlg.confirm_button.isEnabled() and not dlg.confirm()
    assert "closed" in dlg.amount_message.text()
    shoot(dlg, "truth_recharge_closed_account")


# -- accounts and occupants from the window ------------------------------------------------------
def test_accounts_opened_closed_reopened_and_occupants_moved(qtbot, open_window, seed_campus,
                                                             shoot):
    _adopt_all()
    window = open_window(seed_campus)
    node = window.ctx.index.exact("2-101")
    meter = store.meters_of_node(node)[0][0]
    _read(meter, 0)
    window.tree.select_node(node)
    window.actions_["account"].trigger()
    dlg: AccountDialog = window.dialogs["account"]
    dlg.confirm = lambda text: True
    runner = window.ctx.runner
    assert dlg.close_form.isVisible() and not dlg.open_form.isVisible()
    shoot(dlg, "truth_account_open")
    with qtbot.waitSignal(runner.jobDone, timeout=15_000):
        dlg.close_account()
    assert "Closed" in dlg.message.text(), dlg.message.text()
    assert store.open_account_for_node(node) is None
    assert dlg.open_form.isVisible() and dlg.open_button.text() == "Open a new account"
    shoot(dlg, "truth_account_closed")
    dlg.mode.setCurrentIndex(dlg.mode.findData("station"))
    with qtbot.waitSignal(runner.jobDone, timeout=15_000):
        dlg.open_account()
    reopened = store.open_account_for_node(node)
    assert reopened is not None and reopened.mode == "station"
    before = dlg.people.rowCount()
    dlg.ask_move_in = lambda: ("新同学", "20269999", "13800000000")
    with qtbot.waitSignal(runner.jobDone, timeout=15_000):
        dlg.move_in()
    assert dlg.people.rowCount() == before + 1
    assert "新同学" in window.ctx.index.occupant_names(node)  # the tree's index knows too
    dlg.people.selectRow(0)
    with qtbot.waitSignal(runner.jobDone, timeout=15_000):
        dlg.move_out()
    assert dlg.people.rowCount() == before
    shoot(dlg, "truth_account_reopened")


def test_a_cashier_opens_but_does_not_close(qtbot, open_window, seed_campus):
    window = open_window(seed_campus, role="cashier")
    window.tree.select_node(window.ctx.index.exact("1-101"))
    window.actions_["account"].trigger()
    dlg = window.dialogs["account"]
    assert not dlg.close_form.isVisible() and dlg.move_in_button.isVisible()


# -- billing does not crowd out recharges --------------------------------------------------------
def test_recent_bookings_keep_recharges_and_sum_billing_per_day(qtbot, seed_campus):
    _adopt_all()
    acct = next(a for a in store.open_accounts() if a.room == "1-101")
    meter = store.meters_of_node(acct.node_id)[0][0]
    recharge(Operator("desk", Role.CASHIER), acct.id, 30_00, "cash")
    # thirty billed intervals over a midnight, after the account was opened: billing books
    # each day once it is over; the desk shows one line a day whatever it books
    tomorrow = time.localtime(time.time() + 4 * 3600 + 86400)
    midnight = time.mktime((tomorrow.tm_year, tomorrow.tm_mon, tomorrow.tm_mday, 0, 0, 0, 0, 0,
                            -1))
    start = int(midnight) - 15 * 900
    for k in range(30):
        readings.write_batch([PollOutcome(meter, start + k * 900 + 1.0, True,
                                          intervals=[(start + k * 900, 200)])])
        bill(now=start + (k + 1) * 900 + 1)
    ctx = SimpleNamespace(runner=OperationRunner(), session=Session(Operator("desk",
                                                                            Role.CASHIER)))
    dlg = RechargeDialog(ctx, initial_query="1-101")
    qtbot.addWidget(dlg)
    kinds = [dlg.txn_table.item(r, 1).text() for r in range(dlg.txn_table.rowCount())]
    assert "recharge" in kinds
    assert kinds.count("electricity used") <= 2  # one line a day, not thirty
    operators_shown = {dlg.txn_table.item(r, 4).text() for r in range(dlg.txn_table.rowCount())}
    assert "billing" in operators_shown
    apply_language("zh_CN")
    dlg.retranslate()
    operators_shown = {dlg.txn_table.item(r, 4).text() for r in range(dlg.txn_table.rowCount())}
    assert "billing" not in operators_shown and "计费" in operators_shown


# -- receipts ------------------------------------------------------------------------------------
def _pdf_page_size(pdf) -> tuple[float, float]:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True,
                          timeout=30).stdout
    line = next(x for x in info.splitlines() if x.startswith("Page size:"))
    w, _x, h = line.split(":", 1)[1].split()[:3]
    return float(w), float(h)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils")
@pytest.mark.parametrize("paper, size_mm", [(ROLL, (80, 150)), (A4, (210, 297))])
def test_receipts_say_what_happened_on_each_paper(qtbot, seed_campus, tmp_path, artifacts_dir,
                                                  paper, size_mm):
    _adopt_all()
    acct = next(a for a in store.open_accounts() if a.room == "1-101")
    result = recharge(Operator("王老师", Role.CASHIER), acct.id, 88_00, "cash")
    for state, words in (("pending", "Waiting for the meter"),
                         ("applied", "The meter has been credited")):
        pdf = receipt_pdf(result, tmp_path / f"{paper}-{state}.pdf", state=state, paper=paper)
        w, h = _pdf_page_size(pdf)
        assert abs(w - size_mm[0] / 25.4 * 72) < 2 and abs(h - size_mm[1] / 25.4 * 72) < 2
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                              text=True, check=True, timeout=30).stdout
        assert words in text and "¥88.00" in text and "000001" in text
        png = artifacts_dir / f"truth_receipt_{paper}_{state}.png"
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf),
                        str(png.with_suffix(""))], check=True, timeout=30)
        assert png.stat().st_size > 4000


# -- numbers never cut ---------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_room_table_numbers_are_never_cut(qtbot, open_window, seed_campus, shoot, language):
    store_readings()
    _adopt_all()
    apply_language(language)
    window = open_window(seed_campus)
    window.tree.select_node(window.ctx.index.exact("1号宿舍楼"))
    view = window.table.view
    header = view.horizontalHeader()
    qtbot.wait(50)
    for col in range(len(COLUMNS)):
        needed = max(view.sizeHintForColumn(col), header.sectionSizeHint(col))
        assert header.sectionSize(col) >= needed, (COLUMNS[col][0], header.sectionSize(col),
                                                   needed)
    # switching language widens what the other language needs
    window.set_language("zh_CN" if language == "en" else "en")
    for col in range(len(COLUMNS)):
        assert header.sectionSize(col) >= view.sizeHintForColumn(col), COLUMNS[col][0]
    assert [c for c, _t in COLUMNS][2:5] == ["state", "balance", "money"]
    for w, h in SIZES:
        window.resize(w, h)
        shoot(window, f"truth_table_{language}_{w}x{h}")


# -- stale and down ------------------------------------------------------------------------------
def test_old_readings_are_stale_until_a_fresh_one(qtbot, open_window, seed_campus):
    store_readings()
    old = time.time() - 3600
    meter = campus.meters()[0].id
    _read(meter, 10_00, t=old)
    window = open_window(seed_campus)
    ctx = window.ctx
    node = ctx.index.node_of_meter(meter)
    assert ctx.store.is_stale(meter) and ctx.room_state(node) is MeterState.STALE
    window.tree.select_node(node)
    assert window.panel.state_text.text() == "stale"
    assert window.panel.values["voltage"].styleSheet() == "color: #9e9e9e;"
    fresh = time.time()
    ctx.bridge.push(LiveBatch([MeterLive(meter, True, MeterValues(
        read_at=fresh, voltage_v=221.0, remaining_money_cents=10_00, relay_closed=True,
        control_mode="auto"))]))
    ctx.bridge.flush()
    assert not ctx.store.is_stale(meter) and ctx.room_state(node) is not MeterState.STALE
    assert window.panel.values["voltage"].styleSheet() == ""


def test_a_bus_that_is_down_is_named_with_its_reason(qtbot, open_window, seed_campus, shoot):
    store_readings()
    window = open_window(seed_campus)
    b3 = next(b for b in campus.buses() if b.name == "B03")
    window.ctx.bridge.push(LiveBatch([], [BusLive(b3.id, "down", None, None,
                                                  "connection refused by the gateway", 0, 27)]))
    window.ctx.bridge.flush()
    assert window.bus_problem_label.text() == "B03 down: connection refused by the gateway"
    readings.write_batch([], [BusOutcome(b3.id, "polling", 0.8, time.time(), "", 27, 27)])
    window.ctx.bridge.push(LiveBatch([], [BusLive(b3.id, "polling", 0.8, time.time(), "", 27,
                                                  27)]))
    window.ctx.bridge.flush()
    assert window.bus_problem_label.text() == ""
    shoot(window, "truth_bus_back")
