"""The administrators' screens on a real SQLite file: operators (add, disable and enable, the
last administrator who stays, a new role, a new initial password), tariff versions (added from
tomorrow, never back), station settings (saved, refused out of range), and a finance operator
refused by the core. Screenshots under artifacts/, in English and in Chinese."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QDate
from PySide6.QtWidgets import QMessageBox

from app.core import operators, queries, settings
from app.core.operators import Operator, Role, SignInFailed
from app.simulator.demo_campus import create_demo_campus
from app.storage.db import close_database
from app.ui.language import apply_language
from app.ui.runner import OperationRunner
from app.ui.session import Session
from app.views.operators_dialog import AddOperatorDialog, ChangeRoleDialog, OperatorsDialog
from app.views.password_dialogs import ResetPasswordDialog
from app.views.settings_dialog import StationSettingsDialog
from app.views.tariff_dialog import TariffDialog

PASSWORD = "secret-1"
TIMEOUT = 10_000


@pytest.fixture
def station(tmp_path):
    create_demo_campus(tmp_path / "a.db", buses=1, meters=3, password=PASSWORD)
    yield tmp_path / "a.db"
    close_database()


@pytest.fixture
def context(station, qtbot):
    """Makes an acting context (a runner, a session) for an operator of a role."""
    made: list[SimpleNamespace] = []

    def make(name: str = "admin", role: Role = Role.ADMINISTRATOR) -> SimpleNamespace:
        ctx = SimpleNamespace(runner=OperationRunner(), session=Session(Operator(name, role)))
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.runner.wait_all()


@pytest.fixture
def admin(context):
    return context()


@pytest.fixture
def no_boxes(monkeypatch):
    """Every question answered Yes (and recorded); a warning box fails the test."""
    asked: list[str] = []

    def question(_parent, _title, text, *_args, **_kw):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    def warning(_parent, title, text, *_args, **_kw):
        raise AssertionError(f"a message box: {title}: {text}")

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(warning))
    return asked


def show(qtbot, dialog):
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def act(qtbot, ctx, button) -> None:
    """Click ``button`` and wait for the act it starts."""
    with qtbot.waitSignal(ctx.runner.jobDone, timeout=TIMEOUT):
        button.click()
    assert not ctx.runner.busy


def column(table, c: int) -> list[str]:
    return [table.item(r, c).text() for r in range(table.rowCount())]


def row_of(dlg: OperatorsDialog, name: str) -> list[str]:
    r = column(dlg.table, 0).index(name)
    return [dlg.table.item(r, c).text() for c in range(dlg.table.columnCount())]


# -- operators ---------------------------------------------------------------------------------
def test_add_operator_with_a_generated_password(qtbot, admin, no_boxes, shoot):
    dlg = show(qtbot, OperatorsDialog(admin))
    assert column(dlg.table, 0) == ["admin", "cashier", "finance", "maintenance", "viewer"]
    assert row_of(dlg, "finance")[1:3] == ["finance", "active"]
    shoot(dlg, "admin_operators")
    dlg.add_button.click()
    add = dlg.sub_dialog
    assert isinstance(add, AddOperatorDialog)
    qtbot.waitExposed(add)
    qtbot.keyClicks(add.name, "clerk2")
    add.role.setCurrentIndex(add.role.findData("cashier"))
    add.generate_button.click()
    password = add.password.text()
    assert len(password) >= 12 and add.again.text() == password
    assert add.generated.isVisible() and password in add.generated.text()
    shoot(add, "admin_operator_add")
    act(qtbot, admin, add.ok_button)
    assert add.message.text() == ""
    assert not add.isVisible()
    assert row_of(dlg, "clerk2")[1:4] == ["cashier", "active", "yes"]
    assert dlg.selected().name == "clerk2"
    assert "clerk2" in dlg.info.text()
    signed_in = operators.sign_in("clerk2", password)
    assert signed_in.must_change_password is True
    assert signed_in.role is Role.CASHIER


def test_add_operator_refusals_in_the_red_label(qtbot, admin, no_boxes):
    dlg = show(qtbot, AddOperatorDialog(admin.runner, admin.session.operator))
    qtbot.keyClicks(dlg.name, "clerk3")
    dlg.password.setText("secret-22")
    dlg.again.setText("secret-23")
    dlg.ok_button.click()  # differs: refused before any act
    assert dlg.message.text() == "The two passwords differ."
    dlg.again.setText("secret-22")
    dlg.name.setText("cashier")
    act(qtbot, admin, dlg.ok_button)
    assert dlg.message.text() == "there is an operator cashier already"
    dlg.generate_button.click()
    dlg.password.setText("x")
    dlg.password.textEdited.emit("x")
    assert not dlg.generated.isVisible()  # what it showed is no longer the password


def test_disable_and_enable(qtbot, admin, no_boxes):
    dlg = show(qtbot, OperatorsDialog(admin))
    dlg.select("cashier")
    assert dlg.toggle_button.text() == "Disable"
    act(qtbot, admin, dlg.toggle_button)
    assert row_of(dlg, "cashier")[2] == "disabled"
    assert dlg.selected().name == "cashier" and dlg.toggle_button.text() == "Enable"
    with pytest.raises(SignInFailed, match="disabled"):
        operators.sign_in("cashier", PASSWORD)
    act(qtbot, admin, dlg.toggle_button)
    assert row_of(dlg, "cashier")[2] == "active"
    assert operators.sign_in("cashier", PASSWORD).name == "cashier"
    assert dlg.message.text() == ""


def test_the_last_administrator_stays(qtbot, admin, no_boxes, shoot):
    dlg = show(qtbot, OperatorsDialog(admin))
    dlg.select("admin")
    act(qtbot, admin, dlg.toggle_button)
    assert dlg.message.text() == "admin is the last administrator and stays enabled"
    assert row_of(dlg, "admin")[2] == "active"
    assert dlg.isVisible() and dlg.toggle_button.isEnabled()
    shoot(dlg, "admin_operators_refused")


def test_change_role_and_new_initial_password(qtbot, admin, no_boxes):
    dlg = show(qtbot, OperatorsDialog(admin))
    dlg.select("viewer")
    dlg.role_button.click()
    role = dlg.sub_dialog
    assert isinstance(role, ChangeRoleDialog)
    role.role.setCurrentIndex(role.role.findData("maintenance"))
    act(qtbot, admin, role.ok_button)
    assert row_of(dlg, "viewer")[1] == "maintenance"
    dlg.select("viewer")
    dlg.reset_button.click()
    reset = dlg.sub_dialog
    assert isinstance(reset, ResetPasswordDialog)
    reset.password.setText("fresh-start-9")
    reset.again.setText("fresh-start-9")
    act(qtbot, admin, reset.ok_button)
    assert row_of(dlg, "viewer")[3] == "yes"
    assert operators.sign_in("viewer", "fresh-start-9").must_change_password is True


def test_a_finance_operator_is_refused_by_the_core(qtbot, context, no_boxes):
    finance = context("finance", Role.FINANCE)
    dlg = show(qtbot, OperatorsDialog(finance))
    assert dlg.table.rowCount() == 0  # who may sign in is for administrators to see
    assert "permission denied" in dlg.message.text()
    assert not dlg.add_button.isEnabled() and dlg.note.isVisible()
    add = show(qtbot, AddOperatorDialog(finance.runner, finance.session.operator))
    add.name.setText("sneaky")
    add.password.setText("secret-22")
    add.again.setText("secret-22")
    act(qtbot, finance, add.ok_button)
    assert add.message.text().startswith("permission denied: finance (finance) may not "
                                         "manage operators")
    assert add.isVisible()
    assert "sneaky" not in [o.name for o in operators.list_operators(Operator.system())]


# -- tariffs -----------------------------------------------------------------------------------
def test_a_tariff_version_from_tomorrow(qtbot, admin, no_boxes, shoot):
    dlg = show(qtbot, TariffDialog(admin))
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    assert dlg.group.currentText() == "dorm"
    assert dlg.first_day.date().toPython().isoformat() == tomorrow
    assert column(dlg.table, 0) == ["dorm", "shop"]
    assert column(dlg.table, 1)[0] == "2000-01-01 (in force)"
    assert not dlg.add_button.isEnabled()  # no price yet
    qtbot.keyClicks(dlg.tiers, "50:0.588,*:0.888")
    dlg.allowance.setText("10")
    assert not dlg.price.isEnabled()  # with tiers, the first tier's price is the price
    assert dlg.preview.text() == (f"From {tomorrow}, group dorm pays by the month's use: up to "
                                  "50 kWh 0.588; above 0.888 yuan/kWh. The first 10 kWh of "
                                  "each month are free.")
    shoot(dlg, "admin_tariffs")
    act(qtbot, admin, dlg.add_button)
    assert len(no_boxes) == 1 and no_boxes[0].startswith(f"From {tomorrow}, group dorm pays")
    assert "This cannot be undone; a wrong version is corrected by a newer one." in no_boxes[0]
    assert dlg.message.text() == ""
    assert dlg.info.text().startswith("Added: From")
    rows = [[dlg.table.item(r, c).text() for c in range(6)] for r in range(dlg.table.rowCount())]
    assert [tomorrow, "0.588", "up to 50 kWh 0.588; above 0.888", "10", "admin"] == rows[1][1:]
    stored = [t for t in queries.tariffs(admin.session.operator) if t["starts_on"] == tomorrow]
    assert len(stored) == 1
    assert (stored[0]["group"], stored[0]["price"], stored[0]["allowance_kwh"]) == (
        "dorm", "0.588", "10")
    # a flat price for a new group
    dlg.group.setCurrentText("staff")
    dlg.tiers.clear()
    dlg.price.setText("0.6500")
    dlg.allowance.setText("0")
    act(qtbot, admin, dlg.add_button)
    assert "staff" in column(dlg.table, 0)
    assert dlg.group.findText("staff") >= 0
    assert [t["price"] for t in queries.tariffs(admin.session.operator)
            if t["group"] == "staff"] == ["0.6500"]


def test_a_tariff_version_dated_yesterday_is_refused(qtbot, admin, no_boxes):
    dlg = show(qtbot, TariffDialog(admin))
    tomorrow, yesterday = QDate.currentDate().addDays(1), QDate.currentDate().addDays(-1)
    dlg.first_day.setDate(yesterday)
    assert dlg.first_day.date() == tomorrow  # the date edit does not go back (nor to today)
    # a dialog left open over midnight: its lowest day is yesterday; the core refuses
    dlg.first_day.setMinimumDate(yesterday)
    dlg.first_day.setDate(yesterday)
    dlg.price.setText("0.7")
    before = len(queries.tariffs(admin.session.operator))
    act(qtbot, admin, dlg.add_button)
    assert dlg.message.text() == ("a tariff change applies from tomorrow on, never back to a "
                                  "day already billed")
    assert len(queries.tariffs(admin.session.operator)) == before
    assert dlg.table.rowCount() == before


def test_tariff_form_refusals(qtbot, admin, no_boxes):
    dlg = show(qtbot, TariffDialog(admin))
    dlg.price.setText("abc")
    assert dlg.preview.text() == "'abc' is not a price" and not dlg.add_button.isEnabled()
    dlg.price.setText("0.6")
    dlg.tiers.setText("*:0.5,50:0.6")
    assert dlg.preview.text() == "tiers need rising limits and an open last tier"
    dlg.tiers.clear()
    dlg.allowance.setText("lots")
    assert dlg.preview.text() == "'lots' is not a number of kWh"
    dlg.allowance.setText("0")
    dlg.group.setCurrentText(" ")
    assert dlg.preview.text() == "name the tariff group"
    dlg.submit()  # refused before the question
    assert dlg.message.text() == "name the tariff group" and no_boxes == []


# -- station settings ----------------------------------------------------------------------------
def test_station_settings_saved_and_refused(qtbot, admin, no_boxes, shoot):
    dlg = show(qtbot, StationSettingsDialog(admin))
    hour = dlg.fields[settings.BACKUP_HOUR.key]
    assert hour.value() == 3 and (hour.minimum(), hour.maximum()) == (0, 23)
    assert dlg.captions[settings.BACKUP_HOUR.key].text() == "Daily backup at this hour"
    dlg.save_button.click()
    assert dlg.info.text() == "Nothing changed."
    hour.setValue(5)
    act(qtbot, admin, dlg.save_button)
    assert settings.get(settings.BACKUP_HOUR) == 5
    assert dlg.info.text() == "Saved:\nDaily backup at this hour: 3 → 5"
    assert dlg.message.text() == ""
    shoot(dlg, "admin_settings")
    hour.setValue(99)
    assert hour.value() == 23  # the spin box keeps to the bounds
    hour.setMaximum(99)  # were it not to, the core refuses
    hour.setValue(99)
    act(qtbot, admin, dlg.save_button)
    assert dlg.message.text() == "Daily backup at this hour: from 0 to 23"
    assert settings.get(settings.BACKUP_HOUR) == 5
    # two at once: one act each
    hour.setValue(4)
    dlg.fields[settings.BACKUP_DIR.key].setText("/srv/backups")
    dlg.save_button.click()
    qtbot.waitUntil(lambda: not dlg.saving and not admin.runner.busy, timeout=TIMEOUT)
    assert settings.get(settings.BACKUP_HOUR) == 4
    assert settings.get(settings.BACKUP_DIR) == "/srv/backups"
    assert dlg.info.text().count("→") == 2
    assert dlg.message.text() == ""


def test_a_cashier_may_not_save_settings(qtbot, context, no_boxes):
    cashier = context("cashier", Role.CASHIER)
    dlg = show(qtbot, StationSettingsDialog(cashier))
    assert not dlg.save_button.isEnabled()
    dlg.fields[settings.BACKUP_KEEP.key].setValue(9)
    dlg.saving = False
    dlg.save_button.setEnabled(True)  # the button hides it; the core refuses anyway
    act(qtbot, cashier, dlg.save_button)
    assert dlg.message.text().startswith("permission denied: cashier (cashier)")
    assert settings.get(settings.BACKUP_KEEP) == 30


# -- Chinese -----------------------------------------------------------------------------------
def test_screens_in_chinese(qtbot, admin, no_boxes, shoot):
    apply_language("zh_CN")
    operators_dlg = show(qtbot, OperatorsDialog(admin))
    tariff_dlg = show(qtbot, TariffDialog(admin))
    settings_dlg = show(qtbot, StationSettingsDialog(admin))
    shoot(operators_dlg, "admin_operators_zh_CN")
    shoot(tariff_dlg, "admin_tariffs_zh_CN")
    shoot(settings_dlg, "admin_settings_zh_CN")
    apply_language("en")
    for dlg in (operators_dlg, tariff_dlg, settings_dlg):
        dlg.retranslate()
    assert operators_dlg.windowTitle() == "Operators"
    assert tariff_dlg.windowTitle() == "Tariffs"
    assert settings_dlg.windowTitle() == "Station settings"
