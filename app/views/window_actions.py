"""What each menu action of the main window does: open the screen for it, or run its act.

One function per action key of ``main_window.ACTIONS``, each taking the window. Dialogs are kept
in ``window.dialogs`` (one of each kind open at a time) and see the context, so every act they
do goes through the one runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDialog, QMessageBox

from app.core import backup as backups
from app.core import operators
from app.core.operators import Operator
from app.i18n import _
from app.ui import settings

if TYPE_CHECKING:
    from app.views.main_window import MainWindow


def _show(window: MainWindow, key: str, make) -> QDialog:
    """Bring the dialog ``key`` to the front, making it first if needed."""
    dialog = window.dialogs.get(key)
    if dialog is None or not dialog.isVisible():
        dialog = make()
        window.dialogs[key] = dialog
        dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


# -- who is signed in ---------------------------------------------------------------------------
def _signed_in(window: MainWindow, operator: Operator) -> None:
    """A new operator at this window: the initial password first, if it is one."""
    if operator.must_change_password:
        from app.views.password_dialogs import ChangePasswordDialog

        dialog = ChangePasswordDialog(window.ctx.runner, operator, window, forced=True)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            window.close()
            return
    window.ctx.session.set_operator(operator)
    window.unlocked()


def switch_operator(window: MainWindow) -> None:
    ctx = window.ctx
    if ctx.demo:
        from app.views.sign_in import DemoOperatorDialog

        chooser = DemoOperatorDialog([(o.name, o.role.value)
                                      for o in operators.demo_operators()], window)
        if chooser.exec() != QDialog.DialogCode.Accepted:
            return
        name = chooser.chosen()
        ctx.runner.run(lambda: operators.demo_sign_in(name), title=_("Switch operator"),
                       parent=window, on_done=lambda op: _signed_in(window, op))
        return
    from app.views.sign_in import SignInDialog

    dialog = SignInDialog(ctx.runner, window, campus=ctx.index.campus_name(),
                          where="window, switch operator")
    if dialog.exec() == QDialog.DialogCode.Accepted and dialog.operator is not None:
        _signed_in(window, dialog.operator)


def change_password(window: MainWindow) -> None:
    from app.views.password_dialogs import ChangePasswordDialog

    ChangePasswordDialog(window.ctx.runner, window.ctx.operator, window).exec()


def lock(window: MainWindow) -> None:
    window.lock()


def unlock(window: MainWindow) -> None:
    """The lock screen: the same operator's password, or "Switch operator"."""
    from app.views.sign_in import SignInDialog

    dialog = SignInDialog(window.ctx.runner, window, locked_name=window.ctx.operator.name,
                          campus=window.ctx.index.campus_name(), where="window, unlock")
    window.dialogs["unlock"] = dialog

    def done(result: int) -> None:
        if result == QDialog.DialogCode.Accepted and dialog.operator is not None:
            _signed_in(window, dialog.operator)
        else:
            window.close()

    dialog.finished.connect(done)
    dialog.open()


def quit(window: MainWindow) -> None:
    window.close()


# -- the desk ------------------------------------------------------------------------------------
def _selected_room(window: MainWindow) -> str:
    """The room or shop selected in the tree (its number), or ""."""
    node = window.tree.current_node()
    if node and window.ctx.index.is_leaf(node):
        record = window.ctx.index.nodes[node]
        return record.code or record.name
    return ""


def recharge(window: MainWindow, query: str = "") -> None:
    from app.views.recharge_dialog import RechargeDialog

    if not query:
        query = _selected_room(window)
    paper = window.ctx.settings.get(settings.RECEIPT_PAPER)
    _show(window, "recharge", lambda: RechargeDialog(window.ctx, window, initial_query=query,
                                                     paper=paper))


def import_payments(window: MainWindow) -> None:
    from app.views.import_dialog import ImportDialog

    _show(window, "import", lambda: ImportDialog(window.ctx, window))


def account(window: MainWindow) -> None:
    """The selected room's account (open, close, open again) and occupants (in, out)."""
    from app.views.account_dialog import AccountDialog

    node = window.tree.current_node()
    if not node or not window.ctx.index.is_leaf(node):
        QMessageBox.information(window, _("Account and occupants"),
                                _("Choose a room or shop in the tree first."))
        return
    old = window.dialogs.get("account")
    if old is not None and getattr(old, "node_id", None) != node:
        old.close()
    _show(window, "account", lambda: AccountDialog(window.ctx, node, window))


def refund(window: MainWindow) -> None:
    _bookings(window, "refund")


def correct(window: MainWindow) -> None:
    _bookings(window, "correct")


def _bookings(window: MainWindow, purpose: str) -> None:
    from app.views.bookings_dialog import BookingsDialog

    room = _selected_room(window)
    dialog = _show(window, "bookings", lambda: BookingsDialog(window.ctx, window,
                                                              initial_query=room))
    dialog.focus_on(purpose)  # type: ignore[attr-defined]


# -- the station ---------------------------------------------------------------------------------
def control(window: MainWindow, node_id: int | None = None) -> None:
    """Trip, close or keep power on the selected room, floor or building, on a tariff group or
    on hand-picked rooms (several selected in the tree open checked in the dialog's list)."""
    from app.core.operators import Permission
    from app.views.control_dialog import ControlDialog

    node = node_id or window.tree.current_node()
    selected = window.tree.selected_nodes()
    picked = selected if len(selected) > 1 and (not node_id or node_id in selected) else None
    if not node and not window.ctx.session.can(Permission.CONTROL_BATCH):
        QMessageBox.information(window, _("Control"), _("Select a room, a floor or a building "
                                                        "in the tree first."))
        return
    _show(window, "control", lambda: ControlDialog(window.ctx, node or None, window,
                                                   picked=picked))


def alarms(window: MainWindow) -> None:
    from app.views.alarm_view import AlarmView

    _show(window, "alarms", lambda: AlarmView(window.ctx, window))


def sms_log(window: MainWindow) -> None:
    from app.views.sms_log_view import SmsLogView

    _show(window, "sms_log", lambda: SmsLogView(window.ctx, window))


def frame_monitor(window: MainWindow) -> None:
    """A bus's raw frames, from whichever process polls it (maintenance)."""
    from app.views.frame_monitor import FrameMonitor

    _show(window, "frame_monitor", lambda: FrameMonitor(window.ctx, window))


def bus_health(window: MainWindow) -> None:
    from app.views.bus_health_view import BusHealthView

    _show(window, "bus_health", lambda: BusHealthView(window.ctx, window))


def meter_setup(window: MainWindow, meter_id: int) -> None:
    """A meter's own settings, read and changed (maintenance: commission)."""
    from app.views.meter_setup_dialog import MeterSetupDialog

    old = window.dialogs.get("meter_setup")
    if old is not None and getattr(old, "meter_id", None) != meter_id:
        old.close()
    _show(window, "meter_setup", lambda: MeterSetupDialog(window.ctx, meter_id, window))


def raw_registers(window: MainWindow, meter_id: int | None = None) -> None:
    """The raw register tool, on the meter's bus and address (maintenance: raw registers)."""
    from app.views.raw_register_dialog import RawRegisterDialog

    meter = window.ctx.index.meters.get(meter_id) if meter_id is not None else None
    bus = window.ctx.index.buses.get(meter.bus_id) if meter is not None else None
    _show(window, "raw_registers", lambda: RawRegisterDialog(
        window.ctx, window, bus=bus.name if bus else None,
        unit=meter.address if meter else None))


def energy(window: MainWindow, node_id: int | None = None) -> None:
    """Energy analysis of ``node_id`` or the node selected in the tree (the campus when none
    is); the view follows the tree's selection while it is open."""
    from app.views.energy_view import EnergyView

    node = node_id or window.tree.current_node()

    def make() -> EnergyView:
        view = EnergyView(window.ctx, node, window)
        window.tree.nodeSelected.connect(view.follow_node)
        return view

    view = _show(window, "energy", make)
    if node:
        view.follow_node(node)  # type: ignore[attr-defined]


def buses(window: MainWindow) -> None:
    """The buses and their meters: added, changed, moved, removed (maintenance)."""
    from app.views.bus_editor import BusEditor

    _show(window, "buses", lambda: BusEditor(window.ctx, window))


def commissioning(window: MainWindow) -> None:
    """Scan a bus, bind what answers to rooms, run the checklist, print the record."""
    from app.views.commissioning_view import CommissioningView

    _show(window, "commissioning", lambda: CommissioningView(window.ctx, window))


def automatic(window: MainWindow) -> None:
    """Power limits, allowed appliances, schedules, limiting plans, and the rooms held off."""
    from app.views.automatic_view import AutomaticView

    _show(window, "automatic", lambda: AutomaticView(window.ctx, window))


def tariffs(window: MainWindow) -> None:
    from app.views.tariff_dialog import TariffDialog

    _show(window, "tariffs", lambda: TariffDialog(window.ctx, window))


def reports(window: MainWindow) -> None:
    """The monthly report, journal, shift settlement and arrears list: files and printing."""
    from app.views.reports_dialog import ReportsDialog

    _show(window, "reports", lambda: ReportsDialog(window.ctx, window))


def audit(window: MainWindow) -> None:
    from app.views.audit_view import AuditView

    _show(window, "audit", lambda: AuditView(window.ctx, window))


def manage_operators(window: MainWindow) -> None:
    from app.views.operators_dialog import OperatorsDialog

    _show(window, "operators", lambda: OperatorsDialog(window.ctx, window))


def station_settings(window: MainWindow) -> None:
    from app.views.settings_dialog import StationSettingsDialog

    _show(window, "station_settings", lambda: StationSettingsDialog(window.ctx, window))


def backup(window: MainWindow) -> None:
    """Back up the database now (a copy beside the daily ones), with progress."""
    ctx = window.ctx
    operator, db_path = ctx.operator, ctx.db_path

    def done(result) -> None:
        QMessageBox.information(window, _("Back up now"), _(
            "The backup is made and checked: {path}").format(path=result.path))

    ctx.runner.run(lambda progress: backups.backup(operator, db_path, progress=progress),
                   title=_("Back up now"), parent=window, progress=True, on_done=done,
                   label=_("Copying the database…"))
