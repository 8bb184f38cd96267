"""An account's bookings, with the two acts finance does on them: a refund (money paid back
from a station-kept balance) and a correction (a booking reversed by a new one, once, with a
reason). Both are the core's (``accounts.refund``, ``accounts.correct``), role-checked there
and audited; this dialog shows and asks, and offers only what the operator's role allows.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import accounts, queries
from app.core.money import format_cents
from app.core.operators import Permission, operator_text
from app.core.queries import AccountRecord, TxnRecord
from app.core.recharge import METHODS
from app.errors import UserFacingError
from app.i18n import N_, _
from app.ui import fmt
from app.ui.account_finder import AccountFinder
from app.ui.amount_edit import AmountEdit
from app.ui.context import ActingContext
from app.ui.errors import error_text
from app.ui.widgets import ERROR_STYLE, GOOD_STYLE, message_label, ok_cancel, scaled_font
from app.views.account_summary import MODE_TEXT, kind_text, method_text

COLUMNS = (N_("No."), N_("Time"), N_("Booking"), N_("Method"), N_("Amount"), N_("Operator"),
           N_("Memo"))
TXN_ROLE = Qt.ItemDataRole.UserRole + 1


class RefundForm(QDialog):
    """Amount, how it is paid back, and why."""

    def __init__(self, balance_cents: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("RefundForm")
        self.setWindowTitle(_("Refund"))
        self.amount = AmountEdit()
        self.method = QComboBox()
        for code in METHODS:
            self.method.addItem(method_text(code), code)
        self.reason = QLineEdit()
        form = QFormLayout(self)
        form.addRow(_("Balance:"), QLabel(fmt.money(balance_cents)))
        form.addRow(_("Refund (¥):"), self.amount)
        form.addRow(_("Paid back by:"), self.method)
        form.addRow(_("Reason:"), self.reason)
        buttons = ok_cancel(self)
        form.addRow(buttons)


class BookingsDialog(QDialog):
    def __init__(self, ctx: ActingContext, parent: QWidget | None = None, *,
                 initial_query: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("BookingsDialog")
        self.ctx = ctx
        self.account: AccountRecord | None = None
        self.balance_cents = 0
        self.txns: list[TxnRecord] = []
        #: Asks for the refund (amount cents, method, reason) or None; tests replace it.
        self.ask_refund = self._ask_refund
        #: Asks for a correction's reason or None; tests replace it.
        self.ask_reason = self._ask_reason
        self.finder = AccountFinder(ctx)
        self.finder.setMaximumWidth(280)
        self.finder.chosen.connect(self.show_account)
        self.heading = QLabel()
        self.heading.setFont(scaled_font(self.heading.font(), 1.3, bold=True))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._update)
        self.message = message_label("message")
        self.refund_button, self.correct_button, self.close_button = (QPushButton(),
                                                                      QPushButton(),
                                                                      QPushButton())
        self.refund_button.clicked.connect(self.refund)
        self.correct_button.clicked.connect(self.correct)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.refund_button)
        buttons.addWidget(self.correct_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        right = QVBoxLayout()
        right.addWidget(self.heading)
        right.addWidget(self.table, 1)
        right.addWidget(self.message)
        right.addLayout(buttons)
        top = QHBoxLayout(self)
        top.addWidget(self.finder)
        top.addLayout(right, 1)
        self.retranslate()
        self._update()
        self.resize(1000, 560)
        if initial_query:
            self.finder.search.setText(initial_query)
            self.finder.run_search()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Bookings, refunds and corrections"))
        self.finder.retranslate()
        self.table.setHorizontalHeaderLabels([_(c) for c in COLUMNS])
        self.refund_button.setText(_("Refund…"))
        self.correct_button.setText(_("Correct the selected booking…"))
        self.close_button.setText(_("Close"))
        self.refund_button.setVisible(self.ctx.session.can(Permission.REFUND))
        self.correct_button.setVisible(self.ctx.session.can(Permission.CORRECT))
        self._show_heading()

    def focus_on(self, purpose: str) -> None:
        """Opened for a refund or a correction: the search box first, else that button."""
        if self.account is None:
            self.finder.search.setFocus()
        else:
            (self.refund_button if purpose == "refund" else self.correct_button).setFocus()

    # -- the account ---------------------------------------------------------------------------
    def show_account(self, account: AccountRecord | None) -> None:
        self.account = account
        self.txns = []
        if account is not None:
            # this account's balance: a closed one's, not the room's open account's
            self.balance_cents = queries.balance(self.ctx.session.operator, account.id)
            self.txns = queries.bookings(self.ctx.session.operator, account.id)
        self._show_heading()
        self.table.setRowCount(len(self.txns))
        for row, t in enumerate(self.txns):
            values = [str(t.id), time.strftime("%Y-%m-%d %H:%M", time.localtime(t.t)),
                      kind_text(t.kind), method_text(t.method), fmt.money(t.amount_cents),
                      operator_text(t.operator), t.memo]
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setData(TXN_ROLE, t.id)
                if col in (0, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self._update()

    def _show_heading(self) -> None:
        a = self.account
        self.heading.setText(_("Choose an account.") if a is None else _(
            "{room} · {number} · money kept by {mode} · balance {balance}").format(
            room=a.room, number=a.number, mode=_(MODE_TEXT.get(a.mode, a.mode)),
            balance=fmt.money(self.balance_cents)))

    def selected_txn(self) -> TxnRecord | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.txns[rows[0].row()]

    def _update(self) -> None:
        self.refund_button.setEnabled(self.account is not None
                                      and self.account.mode == "station"
                                      and self.balance_cents > 0)
        self.refund_button.setToolTip(
            _("The meter keeps this account's money: close the account to refund it.")
            if self.account is not None and self.account.mode != "station" else "")
        self.correct_button.setEnabled(self.selected_txn() is not None)

    # -- the acts ------------------------------------------------------------------------------
    def _ask_refund(self) -> tuple[int, str, str] | None:
        form = RefundForm(self.balance_cents, self)
        if form.exec() != QDialog.DialogCode.Accepted:
            return None
        if form.amount.cents() is None:
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText(_("Not refunded: {why}").format(
                why=form.amount.verdict().message or _("enter an amount")))
            return None
        return form.amount.cents(), str(form.method.currentData()), form.reason.text()

    def _ask_reason(self, txn: TxnRecord) -> str | None:
        text, ok = QInputDialog.getText(
            self, _("Correct a booking"),
            _("Reverse booking {id} ({kind}, {amount})? Give the reason:").format(
                id=txn.id, kind=kind_text(txn.kind), amount=format_cents(txn.amount_cents)))
        return text if ok else None

    def refund(self) -> None:
        if self.account is None:
            return
        asked = self.ask_refund()
        if asked is None:
            return
        cents, method, reason = asked
        operator, account_id = self.ctx.session.operator, self.account.id
        self._act(lambda: accounts.refund(operator, account_id, cents, method, reason),
                  _("Refunded {amount}.").format(amount=fmt.money(cents)))

    def correct(self) -> None:
        txn = self.selected_txn()
        if txn is None:
            return
        reason = self.ask_reason(txn)
        if reason is None:
            return
        operator, account_id = self.ctx.session.operator, self.account.id if self.account else None
        self._act(lambda: accounts.correct(operator, txn.id, reason, account_id=account_id),
                  _("Booking {id} is reversed.").format(id=txn.id))

    def _act(self, work, success: str) -> None:
        account = self.account
        self.refund_button.setEnabled(False)
        self.correct_button.setEnabled(False)

        def done(_result) -> None:
            self.message.setStyleSheet(GOOD_STYLE)
            self.message.setText(success)
            self.show_account(account)

        def failed(exc: BaseException) -> None:
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText(str(exc) if isinstance(exc, UserFacingError)
                                 else error_text(exc))
            self.show_account(account)

        self.ctx.runner.run(work, title=self.windowTitle(), parent=self, on_done=done,
                            on_error=failed)

    def closeEvent(self, event) -> None:
        self.finder.stop()
        super().closeEvent(event)

