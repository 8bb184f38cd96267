"""Recharge at the desk: find the room, see its money and use, take the payment, print.

The dialog computes nothing: the core books (``recharge.recharge``, run off the UI thread by
the context's runner, which then tells every view what changed), validates
(``validate_amount`` through the AmountEdit), finds the room (``queries.find_accounts``,
``queries.room_overview``) and says how far the meter got (``delivery_state``). One booking per
dialog run: Confirm is disabled from the click until "New recharge" resets the form, so a
double click or a second Enter books nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core import queries
from app.core.money import format_cents
from app.core.queries import AccountRecord, RoomOverview
from app.core.recharge import (
    CONFIRM_ABOVE_CENTS,
    MAX_RECHARGE_CENTS,
    METHODS,
    RechargeResult,
    delivery_state,
    recharge,
    validate_amount,
)
from app.errors import UserFacingError
from app.i18n import N_, _
from app.ui import fmt
from app.ui.account_finder import AccountFinder
from app.ui.amount_edit import AmountEdit, AmountVerdict
from app.ui.context import ActingContext
from app.ui.errors import error_text
from app.ui.receipt import ROLL, desk_printer, receipt_number, render_receipt
from app.ui.widgets import ERROR_STYLE, scaled_font
from app.views.account_summary import (
    MODE_TEXT,
    RECENT_DAYS,
    fill_txns,
    fill_use,
    meter_text,
    small_table,
)

log = logging.getLogger("voltkeeper.ui.recharge")

FINAL_STATES = ("applied", "failed", "booked")
DELIVERY_POLL_MS = 1000

STATE_TEXT = {"pending": N_("pending: waiting for the meter"),
              "applied": N_("applied: the meter confirmed it"),
              "failed": N_("failed: the meter refused it (see alarms)"),
              "booked": N_("booked: the station keeps the money")}
STATE_COLOR = {"pending": "#8a6d00", "applied": "#1b5e20", "failed": "#c62828",
               "booked": "#1b5e20"}
#: What the desk printer is: a configured QPrinter, or a file path for a PDF; None: cancelled.
PrinterFactory = Callable[[], object]


class RechargeDialog(QDialog):
    """The desk's recharge form. ``recharged`` carries the RechargeResult of a booking."""

    recharged = Signal(object)  # RechargeResult

    def __init__(self, ctx: ActingContext, parent: QWidget | None = None, *,
                 maximum_cents: int = MAX_RECHARGE_CENTS,
                 confirm_above_cents: int = CONFIRM_ABOVE_CENTS, initial_query: str = "",
                 printer_factory: PrinterFactory | None = None, paper: str = ROLL) -> None:
        super().__init__(parent)
        self.setObjectName("RechargeDialog")
        self.ctx = ctx
        self.runner = ctx.runner
        self.maximum_cents = maximum_cents
        self.confirm_above_cents = confirm_above_cents
        self.paper = paper
        self.printer_factory: PrinterFactory = printer_factory or (
            lambda: desk_printer(self.paper, self))
        #: Asked before booking more than ``confirm_above_cents``; tests replace it.
        self.confirm_large: Callable[[int], bool] = self._ask_large
        self.account: AccountRecord | None = None
        self.overview: RoomOverview | None = None
        self.result: RechargeResult | None = None
        self.booking = False  # a booking is running
        self.state = ""
        #: Set when a booking failed unexpectedly: Confirm waits for "New recharge", so the
        #: operator checks the bookings list before booking again.
        self.blocked = False

        self.delivery_timer = QTimer(self, interval=DELIVERY_POLL_MS)
        self.delivery_timer.timeout.connect(self.refresh_delivery)
        self._build()
        self.retranslate()
        self.resize(940, 640)
        if initial_query:
            self.search.setText(initial_query)
            self.run_search()

    # -- building ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.finder = AccountFinder(self.ctx)
        self.finder.chosen.connect(self._select)
        # the finder's parts, as the desk's tests and keyboard use them
        self.search, self.results, self.found = (self.finder.search, self.finder.results,
                                                 self.finder.found)

        self.details = QGroupBox()
        form = QFormLayout(self.details)
        self.room = QLabel()
        self.room.setFont(scaled_font(self.room.font(), 1.5, bold=True))
        self.account_no, self.mode = QLabel(), QLabel()
        self.people = QLabel()
        self.people.setWordWrap(True)
        self.balance = QLabel()
        self.balance.setFont(scaled_font(self.balance.font(), 1.3, bold=True))
        self.meter = QLabel()
        self.meter.setWordWrap(True)
        self.use_table = small_table(RECENT_DAYS, 1)
        self.use_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.use_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.use_table.setFixedHeight(self.use_table.horizontalHeader().sizeHint().height()
                                      + self.use_table.verticalHeader().defaultSectionSize() + 4)
        self.use_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.use_total = QLabel()
        self.txn_table = small_table(5)
        # every column as wide as its content (an amount is never cut), the spare room to the
        # booking's kind
        header = self.txn_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.txn_table.setMinimumHeight(110)
        self.form_labels = {key: QLabel() for key in
                            ("room", "account", "mode", "people", "balance", "meter", "use",
                             "txns")}
        for key, widget in (("room", self.room), ("account", self.account_no),
                            ("mode", self.mode), ("people", self.people),
                            ("balance", self.balance), ("meter", self.meter)):
            form.addRow(self.form_labels[key], widget)
        use_box = QVBoxLayout()
        use_box.addWidget(self.use_table)
        use_box.addWidget(self.use_total)
        form.addRow(self.form_labels["use"], use_box)
        form.addRow(self.form_labels["txns"], self.txn_table)

        self.payment = QGroupBox()
        pay = QFormLayout(self.payment)
        self.amount = AmountEdit(check=self._check_amount)
        self.amount.verdictChanged.connect(self._on_verdict)
        self.amount.returnPressed.connect(self._confirm_from_keyboard)
        self.amount_message = QLabel()
        self.amount_message.setObjectName("amount_message")
        self.amount_message.setWordWrap(True)
        self.amount_message.setStyleSheet(ERROR_STYLE)
        self.method = QComboBox()
        for code in METHODS:
            self.method.addItem("", code)
        self.amount_caption, self.method_caption = QLabel(), QLabel()
        pay.addRow(self.amount_caption, self.amount)
        pay.addRow("", self.amount_message)
        pay.addRow(self.method_caption, self.method)

        self.outcome = QLabel()
        self.outcome.setObjectName("outcome")
        self.outcome.setWordWrap(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.outcome.setMinimumHeight(48)
        self.outcome.setFont(scaled_font(self.outcome.font(), 1.15, bold=True))

        self.confirm_button = QPushButton()
        self.print_button = QPushButton()
        self.reset_button = QPushButton()
        self.close_button = QPushButton()
        for b in (self.confirm_button, self.print_button, self.reset_button, self.close_button):
            b.setAutoDefault(False)  # Enter in the search box must never book
            b.setDefault(False)
        self.confirm_button.clicked.connect(self.confirm)
        self.print_button.clicked.connect(self.print_receipt)
        self.reset_button.clicked.connect(self.reset)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.print_button)
        buttons.addWidget(self.reset_button)
        buttons.addStretch(1)
        buttons.addWidget(self.confirm_button)
        buttons.addWidget(self.close_button)

        right = QVBoxLayout()
        right.addWidget(self.details, 1)
        right.addWidget(self.payment)
        right.addWidget(self.outcome)
        right.addLayout(buttons)
        top = QHBoxLayout(self)
        self.finder.setMaximumWidth(300)
        top.addWidget(self.finder)
        top.addLayout(right, 1)
        self._show_account(None)
        self._update_buttons()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Recharge"))
        self.finder.retranslate()
        self.details.setTitle(_("Account"))
        self.payment.setTitle(_("Payment"))
        for key, text in (("room", N_("Room")), ("account", N_("Account No.")),
                          ("mode", N_("Money kept by")), ("people", N_("Occupants")),
                          ("balance", N_("Balance")), ("meter", N_("Meter")),
                          ("use", N_("Last 7 days")), ("txns", N_("Recent bookings"))):
            self.form_labels[key].setText(_(text) + ":")
        self.txn_table.setHorizontalHeaderLabels(
            [_("Time"), _("Booking"), _("Method"), _("Amount"), _("Operator")])
        self.amount_caption.setText(_("Amount (¥):"))
        self.amount.setPlaceholderText(_("at most {max}").format(
            max=format_cents(self.maximum_cents, symbol=True)))
        self.method_caption.setText(_("Payment method:"))
        for i in range(self.method.count()):
            self.method.setItemText(i, _(METHODS[self.method.itemData(i)]))
        self.confirm_button.setText(_("Confirm recharge"))
        self.print_button.setText(_("Print receipt"))
        self.reset_button.setText(_("New recharge"))
        self.close_button.setText(_("Close"))
        self._show_account(self.account)
        if self.result is not None:
            self._show_outcome()

    # -- finding the account -------------------------------------------------------------------
    def run_search(self) -> None:
        """List the open accounts the search text names; one match is selected at once."""
        self.finder.run_search()

    def _select(self, account: AccountRecord | None) -> None:
        if self.result is not None or self.booking:
            return  # the booked account stays on screen until "New recharge"
        self.account = account
        self.amount_message.setText(self.amount.verdict().message if self.amount.text() else "")
        self._show_account(account)
        self._update_buttons()

    def select_account(self, account_id: int) -> None:
        """Show ``account_id`` (from a room's panel: "Recharge this room")."""
        acct = queries.account(self.ctx.session.operator, account_id)
        if acct is not None:
            self.search.setText(acct.room)
            self.run_search()

    # -- showing the account -------------------------------------------------------------------
    def _show_account(self, acct: AccountRecord | None) -> None:
        blank = fmt.NONE
        self.overview = None
        if acct is None:
            for w in (self.room, self.account_no, self.mode, self.people, self.balance,
                      self.meter):
                w.setText(blank)
            self.use_table.clearContents()
            self.use_total.setText("")
            self.txn_table.setRowCount(0)
            return
        try:
            room = queries.room_overview(self.ctx.session.operator, acct.node_id,
                                         account_id=acct.id)
        except Exception as exc:  # keep the desk's dialog open on a database trouble
            self.meter.setText(error_text(exc, "room overview"))
            return
        self.overview = room
        self.room.setText(acct.room)
        self.account_no.setText(acct.number)
        self.mode.setText(_(MODE_TEXT.get(acct.mode, acct.mode)) if acct.is_open else
                          _("closed on {day}").format(day=fmt.day(acct.closed_at)))
        self.people.setText(fmt.name_list([f"{o.name} ({o.person_no})" if o.person_no
                                           else o.name for o in room.occupants]) or blank)
        self.balance.setText(fmt.money(room.balance_cents))
        self.meter.setText(meter_text(room))
        fill_use(self.use_table, self.use_total, room)
        fill_txns(self.txn_table, room.bookings)

    # -- the amount ----------------------------------------------------------------------------
    def _check_amount(self, cents: int) -> int:
        return validate_amount(cents, self.maximum_cents)

    def _on_verdict(self, verdict: AmountVerdict) -> None:
        self.amount_message.setText(verdict.message)
        self._update_buttons()

    def amount_cents(self) -> int | None:
        return self.amount.cents()

    def method_code(self) -> str:
        return str(self.method.currentData())

    def _update_buttons(self) -> None:
        done = self.result is not None or self.booking
        closed = self.account is not None and not self.account.is_open
        if closed and not done:
            self.amount_message.setText(_("This account is closed: open a new account for the "
                                          "room (Desk > Account and occupants) to recharge "
                                          "it."))
        self.confirm_button.setEnabled(not done and not self.blocked and self.account is not None
                                       and not closed and self.amount.cents() is not None)
        self.print_button.setEnabled(done)
        self.reset_button.setEnabled(done or self.blocked or bool(self.amount.text()))
        for w in (self.search, self.results, self.amount, self.method):
            w.setEnabled(not done)

    # -- booking -------------------------------------------------------------------------------
    def _confirm_from_keyboard(self) -> None:
        if self.confirm_button.isEnabled():
            self.confirm()
        elif not self.amount.message() and self.amount.text().strip() and self.account is None:
            self.amount_message.setText(_("Choose the room first."))

    def _ask_large(self, cents: int) -> bool:
        answer = QMessageBox.question(
            self, _("Large recharge"),
            _("Recharge {amount} to {room}? This is more than {limit}.").format(
                amount=format_cents(cents, symbol=True),
                room=self.account.room if self.account else "",
                limit=format_cents(self.confirm_above_cents, symbol=True)),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def confirm(self) -> bool:
        """Book the recharge shown on the form (off the UI thread); False when nothing was
        started. ``recharged`` carries the result once booked."""
        if self.result is not None or self.booking or self.blocked or self.account is None \
                or not self.account.is_open:
            return False
        verdict = self.amount.verdict()
        if verdict.cents is None:
            self.amount_message.setText(verdict.message or _("enter an amount"))
            return False
        cents, account = verdict.cents, self.account
        if cents > self.confirm_above_cents and not self.confirm_large(cents):
            self.amount_message.setText(_("Not booked: the large amount was not confirmed."))
            return False
        self.booking = True  # no second booking while this one runs
        self._update_buttons()
        operator, method, maximum = self.ctx.session.operator, self.method_code(), \
            self.maximum_cents
        self.runner.run(lambda: recharge(operator, account.id, cents, method, maximum=maximum),
                        title=_("Recharge"), parent=self, on_done=self._booked,
                        on_error=lambda exc: self._failed(exc, account))
        return True

    def _booked(self, result: RechargeResult) -> None:
        self.booking = False
        log.info("recharge %s: %s to %s by %s (%s), receipt %s", result.txn_id,
                 format_cents(result.amount_cents), result.room, result.operator,
                 result.method, receipt_number(result.receipt_no))
        self.result = result
        self.state = ""
        self.amount_message.setText("")
        self.refresh_delivery()
        if self.state not in FINAL_STATES:
            self.delivery_timer.start()
        if self.account is not None:
            self._show_account(self.account)
        self._update_buttons()
        self.recharged.emit(result)

    def _failed(self, exc: BaseException, account: AccountRecord) -> None:
        self.booking = False
        self.blocked = not isinstance(exc, UserFacingError)
        self._show_failure(exc)
        self._show_account(account)  # the bookings list tells whether anything was booked
        self._update_buttons()

    def _show_failure(self, exc: BaseException) -> None:
        self.outcome.setStyleSheet(ERROR_STYLE)
        if isinstance(exc, UserFacingError):
            self.outcome.setText(_("Not booked: {reason}").format(reason=exc))
        else:
            self.outcome.setText(error_text(exc, "recharge") + " " + _(
                "Check the account's bookings before trying again."))

    def refresh_delivery(self) -> None:
        """Ask the core how far the meter got; stops asking once the state is final."""
        if self.result is None:
            self.delivery_timer.stop()
            return
        try:
            state = delivery_state(self.result)
        except Exception as exc:  # keep trying: the database may be busy for a moment
            log.warning("delivery state of %s: %s", self.result.outbox_id, exc)
            return
        if state in FINAL_STATES:
            self.delivery_timer.stop()
        if state != self.state:
            self.state = state
            self._show_outcome()
            if state == "applied" and self.account is not None:
                self._show_account(self.account)  # the meter's money has changed

    def _show_outcome(self) -> None:
        r = self.result
        if r is None:
            self.outcome.setText("")
            return
        state = STATE_TEXT.get(self.state)
        self.outcome.setStyleSheet(f"color: {STATE_COLOR.get(self.state, '#000')};")
        self.outcome.setText(
            _("Booked {amount} to {room}. Receipt No. {receipt}. New balance {balance}.")
            .format(amount=fmt.money(r.amount_cents), room=r.room,
                    receipt=receipt_number(r.receipt_no), balance=fmt.money(r.balance_cents))
            + "\n" + _("Meter: {state}").format(state=_(state) if state else self.state))

    # -- after booking -------------------------------------------------------------------------
    def print_receipt(self) -> bool:
        """Print (or write) the receipt of the booking; False when cancelled or failed."""
        if self.result is None:
            return False
        try:
            target = self.printer_factory()
            if target is None:
                return False
            render_receipt(self.result, target, state=self.state,  # type: ignore[arg-type]
                           paper=self.paper)
        except Exception as exc:
            self.amount_message.setText(_("The receipt was not printed: {reason}").format(
                reason=error_text(exc, "printing a receipt")))
            return False
        return True

    def reset(self) -> None:
        """Clear the form for the next recharge (the booked one stays booked)."""
        self.delivery_timer.stop()
        self.result = None
        self.blocked = False
        self.state = ""
        self.account = None
        self.outcome.setText("")
        self.amount.clear()
        self.amount_message.setText("")
        self.finder.clear()
        self._show_account(None)
        self._update_buttons()
        self.search.setFocus()

    def done(self, r: int) -> None:
        self.delivery_timer.stop()
        self.finder.stop()
        super().done(r)
