"""Tariff versions (finance, administrators): what each group pays, from which day.

The list shows every version of every group (the one in force today marked); the form below
adds a version from tomorrow or later, after a question that says in words what will apply. The
core checks and records it (``billing.set_tariff``: never back in time, audited); a wrong
version is never edited, a newer one corrects it. Prices are Decimal text throughout.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from PySide6.QtCore import QDate
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import billing, queries, tariffs
from app.core.billing import TariffChange
from app.core.changes import Changes
from app.core.operators import Permission
from app.core.tariffs import TariffVersion, tiers_from_json, version_in_force
from app.errors import UserFacingError
from app.i18n import N_, _
from app.ui.context import ActingContext
from app.ui.errors import error_text
from app.ui.widgets import GOOD_STYLE, message_label

COLUMNS = (N_("Group"), N_("From"), N_("Price (yuan/kWh)"), N_("Tiers by the month's use"),
           N_("Free kWh a month"), N_("Added by"))
DEFAULT_GROUP = "dorm"
Tiers = tuple[tuple[Decimal | None, Decimal], ...]


def tiers_text(tiers: Tiers) -> str:
    """``up to 50 kWh 0.588; above 0.888``; a dash for one price."""
    if not tiers:
        return "–"
    if len(tiers) == 1:
        return _("all kWh {price}").format(price=tiers[0][1])
    return "; ".join(_("above {price}").format(price=price) if bound is None else
                     _("up to {kwh} kWh {price}").format(kwh=bound, price=price)
                     for bound, price in tiers)


def describe(version: TariffVersion) -> str:
    """The version in words: from when, who pays what, the free allowance."""
    if version.tiers:
        text = _("From {day}, group {group} pays by the month's use: {tiers} yuan/kWh.").format(
            day=version.starts_on, group=version.group, tiers=tiers_text(version.tiers))
    else:
        text = _("From {day}, group {group} pays {price} yuan/kWh.").format(
            day=version.starts_on, group=version.group, price=version.price)
    if version.allowance_kwh:
        text += " " + _("The first {kwh} kWh of each month are free.").format(
            kwh=version.allowance_kwh)
    return text


def _version(row: dict) -> TariffVersion:
    return TariffVersion(row["group"], row["starts_on"], Decimal(row["price"]),
                         tiers_from_json(row["tiers"]), Decimal(row["allowance_kwh"]))


def _allowance(text: str) -> Decimal:
    try:
        value = Decimal(text.strip() or "0")
    except InvalidOperation:
        raise UserFacingError(_("{text!r} is not a number of kWh").format(text=text)) from None
    if not value.is_finite():
        raise UserFacingError(_("{text!r} is not a number of kWh").format(text=text))
    return value


class TariffDialog(QDialog):
    def __init__(self, ctx: ActingContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TariffDialog")
        self.ctx = ctx
        self.rows: list[dict] = []
        self.versions: list[TariffVersion] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("tariffs")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.heading = QLabel()
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.group = QComboBox()
        self.group.setObjectName("group")
        self.group.setEditable(True)
        self.first_day = QDateEdit()
        self.first_day.setObjectName("first_day")
        self.first_day.setCalendarPopup(True)
        self.first_day.setDisplayFormat("yyyy-MM-dd")
        self.first_day.setMinimumDate(QDate.currentDate().addDays(1))
        self.first_day.setDate(QDate.currentDate().addDays(1))
        self.price, self.tiers, self.allowance = QLineEdit(), QLineEdit(), QLineEdit("0")
        for name, field in (("price", self.price), ("tiers", self.tiers),
                            ("allowance", self.allowance)):
            field.setObjectName(name)
        self.captions = [QLabel() for _row in range(5)]
        form = QFormLayout()
        for caption, field in zip(self.captions, (self.group, self.first_day, self.price,
                                                  self.tiers, self.allowance), strict=True):
            form.addRow(caption, field)
        self.preview = QLabel()
        self.preview.setObjectName("preview")
        self.preview.setWordWrap(True)
        self.message = message_label("message")
        self.info = message_label("info", GOOD_STYLE)
        self.add_button, self.close_button = QPushButton(), QPushButton()
        self.add_button.clicked.connect(self.submit)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.heading)
        layout.addLayout(form)
        layout.addWidget(self.preview)
        layout.addWidget(self.message)
        layout.addWidget(self.info)
        layout.addLayout(buttons)
        self.group.currentTextChanged.connect(self._update_preview)
        self.first_day.dateChanged.connect(self._update_preview)
        for field in (self.price, self.tiers, self.allowance):
            field.textChanged.connect(self._update_preview)
        ctx.runner.changed.connect(self._changed)
        self.refresh()
        self.group.setCurrentText(DEFAULT_GROUP)
        self.retranslate()
        self.resize(780, 560)

    def retranslate(self) -> None:
        self.setWindowTitle(_("Tariffs"))
        self.table.setHorizontalHeaderLabels([_(c) for c in COLUMNS])
        self.heading.setText(_("A new version"))
        for caption, text in zip(self.captions, (_("Group:"), _("First day:"),
                                                 _("Price (yuan/kWh):"), _("Tiers:"),
                                                 _("Free kWh a month:")), strict=True):
            caption.setText(text)
        self.tiers.setPlaceholderText(_("e.g. 50:0.588,*:0.888 (empty: one price)"))
        self.tiers.setToolTip(_("Up to LIMIT kWh of the month's use at PRICE, then the next; "
                                "* is the rest. With tiers, the first tier's price is the "
                                "price."))
        self.add_button.setText(_("Add version…"))
        self.close_button.setText(_("Close"))
        self._fill()
        self._update_preview()

    # -- the list ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the versions again (a short list: read here, on the UI thread)."""
        try:
            self.rows = queries.tariffs(self.ctx.session.operator)
        except Exception as exc:  # shown, like any refusal
            self.rows = []
            self.message.setText(error_text(exc, "tariffs"))
        self.versions = [_version(row) for row in self.rows]
        groups = sorted({v.group for v in self.versions} | {DEFAULT_GROUP})
        current = self.group.currentText()
        self.group.blockSignals(True)
        self.group.clear()
        self.group.addItems(groups)
        self.group.setCurrentText(current)
        self.group.blockSignals(False)
        self._fill()

    def _fill(self) -> None:
        today = date.today().isoformat()
        self.table.setRowCount(len(self.rows))
        for r, (row, version) in enumerate(zip(self.rows, self.versions, strict=True)):
            same_group = [v for v in self.versions if v.group == version.group]
            in_force = version_in_force(same_group, today) == version
            starts = (_("{day} (in force)").format(day=version.starts_on) if in_force
                      else version.starts_on)
            texts = (version.group, starts, str(version.price), tiers_text(version.tiers),
                     str(version.allowance_kwh), row.get("created_by") or "–")
            for c, text in enumerate(texts):
                item = QTableWidgetItem(text)
                font = item.font()
                font.setBold(in_force)
                item.setFont(font)
                self.table.setItem(r, c, item)
        self.table.scrollToBottom()

    def _changed(self, changes: Changes) -> None:
        if changes.tariffs:
            self.refresh()

    # -- the form ----------------------------------------------------------------------------
    def version(self) -> TariffVersion:
        """The version the form describes; a UserFacingError says what is wrong with it."""
        group = self.group.currentText().strip()
        if not group:
            raise UserFacingError(_("name the tariff group"))
        tiers = tariffs.parse_tiers(self.tiers.text())
        if not tiers and not self.price.text().strip():
            raise UserFacingError(_("enter the price, or tiers"))
        price = tiers[0][1] if tiers else tariffs.parse_price(self.price.text())
        return TariffVersion(group, self.first_day.date().toPython().isoformat(), price, tiers,
                             _allowance(self.allowance.text()))

    def _update_preview(self) -> None:
        tiered = bool(self.tiers.text().strip())
        self.price.setEnabled(not tiered)
        self.price.setPlaceholderText(_("the first tier's price") if tiered else _("e.g. 0.588"))
        may = self.ctx.session.can(Permission.SET_TARIFFS)
        try:
            text, ok = describe(self.version()), True
        except UserFacingError as exc:
            text, ok = str(exc), False
        self.preview.setText(text)
        self.preview.setStyleSheet("" if ok else "color: #666666;")
        self.add_button.setEnabled(ok and may)

    def submit(self) -> None:
        if self.ctx.runner.busy:
            return
        self.message.clear()
        self.info.clear()
        try:
            version = self.version()
        except UserFacingError as exc:
            self.message.setText(str(exc))
            return
        known = {self.group.itemText(i) for i in range(self.group.count())}
        new_group = version.group not in known
        question = describe(version) + "\n\n" + (_(
            "{group} is a new tariff group: no room pays by it until it is given to them.")
            .format(group=version.group) + "\n\n" if new_group else "") + _(
            "This cannot be undone; a wrong version is corrected by a newer one.")
        answer = QMessageBox.question(
            self, _("Add tariff version"), question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return
        acting = self.ctx.session.operator
        self.add_button.setEnabled(False)
        self.ctx.runner.run(lambda: billing.set_tariff(acting, version, new_group=new_group),
                            title=_("Add tariff version"), parent=self, on_done=self._done,
                            on_error=self._error)

    def _done(self, result: TariffChange) -> None:
        self.info.setText(_("Added: {what}").format(what=describe(result.version)))
        self._update_preview()

    def _error(self, exc: BaseException) -> None:
        self.message.setText(error_text(exc, "set tariff"))
        self._update_preview()
