"""A room's account and occupants at the desk: open (开户), close with the final settlement
(销户), open again, and occupants moving in and out.

Each act is the core's (``accounts.open_account``, ``close_account``, ``move_in``,
``move_out``), run through the runner, role-checked and audited there; this dialog shows the
room as ``queries`` give it and offers what the operator's role allows.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import accounts, queries
from app.core.money import format_cents
from app.core.operators import Permission
from app.core.queries import AccountRecord, RoomOverview
from app.core.recharge import METHODS
from app.errors import UserFacingError
from app.i18n import N_, _
from app.ui import fmt
from app.ui.context import ActingContext
from app.ui.errors import error_text
from app.ui.widgets import ERROR_STYLE, GOOD_STYLE, message_label, ok_cancel, scaled_font
from app.views.account_summary import MODE_TEXT, method_text

OCCUPANT_COLUMNS = (N_("Name"), N_("Student or staff number"), N_("Phone"), N_("Moved in"))
#: How an account's money is kept, as the open form offers it ("" lets the station choose).
MODE_CHOICES = (("", N_("as the room's meter allows")), ("meter", N_("the meter")),
                ("station", N_("the station")))


class MoveInForm(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MoveInForm")
        self.setWindowTitle(_("Move in"))
        self.name, self.person_no, self.phone = QLineEdit(), QLineEdit(), QLineEdit()
        form = QFormLayout(self)
        form.addRow(_("Name:"), self.name)
        form.addRow(_("Student or staff number:"), self.person_no)
        form.addRow(_("Phone:"), self.phone)
        buttons = ok_cancel(self)
        form.addRow(buttons)


class AccountDialog(QDialog):
    def __init__(self, ctx: ActingContext, node_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AccountDialog")
        self.ctx = ctx
        self.node_id = node_id
        self.room: RoomOverview | None = None
        self.history: list[AccountRecord] = []
        #: Asks for the move-in (name, number, phone) or None; tests replace it.
        self.ask_move_in = self._ask_move_in
        #: Asks "are you sure?" with the text given; tests replace it.
        self.confirm = self._confirm
        self.heading = QLabel()
        self.heading.setFont(scaled_font(self.heading.font(), 1.4, bold=True))
        self.account_box = QGroupBox()
        self.account_info = QLabel()
        self.account_info.setObjectName("account_info")
        self.account_info.setWordWrap(True)
        self.mode = QComboBox()
        for code, label in MODE_CHOICES:
            self.mode.addItem(_(label), code)
        self.group = QLineEdit()
        self.group.setPlaceholderText(_("dorm or shop, as the room is"))
        self.open_button = QPushButton()
        self.open_button.setObjectName("open_button")
        self.open_button.clicked.connect(self.open_account)
        self.refund = QRadioButton()
        self.carry = QRadioButton()
        self.refund.setChecked(True)
        self.method = QComboBox()
        for code in METHODS:
            self.method.addItem(method_text(code), code)
        self.close_account_button = QPushButton()
        self.close_account_button.setObjectName("close_account_button")
        self.close_account_button.clicked.connect(self.close_account)
        self.open_form, self.close_form = QWidget(), QWidget()
        opening = QFormLayout(self.open_form)
        self.mode_caption, self.group_caption = QLabel(), QLabel()
        opening.addRow(self.mode_caption, self.mode)
        opening.addRow(self.group_caption, self.group)
        opening.addRow("", self.open_button)
        closing = QFormLayout(self.close_form)
        settle = QHBoxLayout()
        settle.addWidget(self.refund)
        settle.addWidget(self.method)
        settle.addWidget(self.carry)
        settle.addStretch(1)
        self.settle_caption = QLabel()
        closing.addRow(self.settle_caption, settle)
        closing.addRow("", self.close_account_button)
        box = QVBoxLayout(self.account_box)
        box.addWidget(self.account_info)
        box.addWidget(self.open_form)
        box.addWidget(self.close_form)

        self.people_box = QGroupBox()
        self.people = QTableWidget(0, len(OCCUPANT_COLUMNS))
        self.people.setObjectName("occupants")
        self.people.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.people.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.people.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.people.verticalHeader().setVisible(False)
        self.people.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.people.horizontalHeader().setStretchLastSection(True)
        self.people.itemSelectionChanged.connect(self._update)
        self.move_in_button, self.move_out_button = QPushButton(), QPushButton()
        self.move_in_button.clicked.connect(self.move_in)
        self.move_out_button.clicked.connect(self.move_out)
        people_buttons = QHBoxLayout()
        people_buttons.addWidget(self.move_in_button)
        people_buttons.addWidget(self.move_out_button)
        people_buttons.addStretch(1)
        people = QVBoxLayout(self.people_box)
        people.addWidget(self.people)
        people.addLayout(people_buttons)

        self.message = message_label("message")
        self.close_button = QPushButton()
        self.close_button.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.message, 1)
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.account_box)
        layout.addWidget(self.people_box, 1)
        layout.addLayout(bottom)
        self.retranslate()
        self.resize(720, 560)
        self.reload()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Account and occupants"))
        self.account_box.setTitle(_("Account"))
        self.people_box.setTitle(_("Occupants"))
        self.mode_caption.setText(_("Money kept by:"))
        self.group_caption.setText(_("Tariff group:"))
        self.settle_caption.setText(_("The balance is:"))
        self.refund.setText(_("refunded by"))
        self.carry.setText(_("carried to the resident's next term"))
        self.close_account_button.setText(_("Close the account…"))
        self.people.setHorizontalHeaderLabels([_(c) for c in OCCUPANT_COLUMNS])
        self.move_in_button.setText(_("Move in…"))
        self.move_out_button.setText(_("Move out…"))
        self.close_button.setText(_("Close"))
        self._show()

    # -- the room ------------------------------------------------------------------------------
    def reload(self) -> None:
        operator = self.ctx.session.operator
        self.room = queries.room_overview(operator, self.node_id, days=0, bookings=0)
        self.history = queries.accounts_of_room(operator, self.node_id)
        self._show()

    def _show(self) -> None:
        room = self.room
        if room is None:
            return
        self.heading.setText(room.room)
        acct = room.account
        last = self.history[0] if self.history else None
        if acct is not None:
            self.account_info.setText(_(
                "Account {number}, opened {day}; money kept by {mode}; tariff group {group}; "
                "balance {balance}.").format(
                number=acct.number, day=fmt.day(acct.opened_at),
                mode=_(MODE_TEXT.get(acct.mode, acct.mode)), group=acct.tariff_group,
                balance=fmt.money(room.balance_cents)))
        elif last is not None:
            self.account_info.setText(_("No open account. The last one, {number}, was closed "
                                        "on {day}.").format(number=last.number,
                                                            day=fmt.day(last.closed_at)))
        else:
            self.account_info.setText(_("This room has never had an account."))
        self.open_button.setText(_("Open a new account") if last is not None and acct is None
                                 else _("Open the account"))
        self.people.setRowCount(len(room.occupants))
        for row, o in enumerate(room.occupants):
            for col, text in enumerate((o.name, o.person_no, o.phone,
                                        fmt.day(o.moved_in) if o.moved_in else fmt.NONE)):
                self.people.setItem(row, col, QTableWidgetItem(text))
        self._update()

    def _update(self) -> None:
        can = self.ctx.session.can
        acct = self.room.account if self.room else None
        self.open_form.setVisible(acct is None and can(Permission.MANAGE_ACCOUNTS))
        self.close_form.setVisible(acct is not None and can(Permission.CLOSE_ACCOUNTS))
        for w in (self.move_in_button, self.move_out_button):
            w.setVisible(can(Permission.MANAGE_ACCOUNTS))
        self.move_out_button.setEnabled(bool(self.people.selectionModel().selectedRows()))

    # -- the acts ------------------------------------------------------------------------------
    def open_account(self) -> None:
        operator, node = self.ctx.session.operator, self.node_id
        mode = self.mode.currentData() or None
        group = self.group.text().strip() or None
        self._act(lambda: accounts.open_account(operator, node, mode=mode, tariff_group=group),
                  lambda r: _("Opened account {number}.").format(number=r.account.number))

    def close_account(self) -> None:
        acct = self.room.account if self.room else None
        if acct is None:
            return
        carry = self.carry.isChecked()
        method = str(self.method.currentData())
        balance = self.room.balance_cents or 0
        question = _("Close account {number} of {room}? The room's meter is tripped, the use "
                     "up to now is billed, and the balance (now {balance}) is {what}.").format(
            number=acct.number, room=acct.room, balance=format_cents(balance, symbol=True),
            what=_("carried to the resident's next term") if carry else
            _("refunded by {method}").format(method=method_text(method)))
        if not self.confirm(question):
            return
        operator = self.ctx.session.operator
        self._act(lambda: accounts.close_account(operator, acct.id,
                                                 "carry" if carry else "refund", method),
                  lambda s: _("Closed: {amount} {how}.").format(
                      amount=format_cents(s.balance_cents, symbol=True),
                      how=_("carried over") if carry else _("refunded")))

    def _ask_move_in(self) -> tuple[str, str, str] | None:
        form = MoveInForm(self)
        if form.exec() != QDialog.DialogCode.Accepted:
            return None
        return form.name.text(), form.person_no.text(), form.phone.text()

    def move_in(self) -> None:
        asked = self.ask_move_in()
        if asked is None:
            return
        name, number, phone = asked
        operator, node = self.ctx.session.operator, self.node_id
        self._act(lambda: accounts.move_in(operator, node, name, number, phone),
                  lambda _r: _("{name} moved in.").format(name=name.strip()))

    def move_out(self) -> None:
        rows = self.people.selectionModel().selectedRows()
        if not rows or self.room is None:
            return
        occupant = self.room.occupants[rows[0].row()]
        if not self.confirm(_("{name} moves out of {room}?").format(name=occupant.name,
                                                                    room=self.room.room)):
            return
        operator = self.ctx.session.operator
        self._act(lambda: accounts.move_out(operator, occupant.id),
                  lambda _r: _("{name} moved out.").format(name=occupant.name))

    def _act(self, work, success) -> None:
        def done(result) -> None:
            self.message.setStyleSheet(GOOD_STYLE)
            self.message.setText(success(result))
            self.reload()

        def failed(exc: BaseException) -> None:
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText(str(exc) if isinstance(exc, UserFacingError)
                                 else error_text(exc))
            self.reload()

        self.ctx.runner.run(work, title=self.windowTitle(), parent=self, on_done=done,
                            on_error=failed)

    def _confirm(self, text: str) -> bool:
        answer = QMessageBox.question(self, self.windowTitle(), text,
                                      QMessageBox.StandardButton.Yes
                                      | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

