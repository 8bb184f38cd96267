"""Finding an account at the desk: a search box and the accounts it names.

Room number, account number, occupant name or student number (``queries.find_accounts``): the
open accounts, and a room's last closed one (marked closed: the dialog says so rather than
"nothing found"); the list waits 200 ms after the last key, Enter searches at once; one match
is chosen at once. ``chosen`` carries the account (or None when the choice is cleared).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from app.core import queries
from app.core.queries import AccountHit, AccountRecord
from app.i18n import _, ngettext
from app.ui import fmt
from app.ui.context import ActingContext
from app.ui.errors import error_text

ACCOUNT_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_DELAY_MS = 200


class AccountFinder(QWidget):
    chosen = Signal(object)  # AccountRecord | None

    def __init__(self, ctx: ActingContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.account: AccountRecord | None = None
        self.caption = QLabel()
        self.search = QLineEdit()
        self.search.setClearButtonEnabled(True)
        self.found = QLabel()
        self.results = QListWidget()
        self._timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.run_search)
        self.search.textEdited.connect(lambda _t: self._timer.start())
        self.search.returnPressed.connect(self.search_now)
        self.results.currentItemChanged.connect(self._on_current)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.search)
        layout.addWidget(self.found)
        layout.addWidget(self.results, 1)
        self.retranslate()

    def retranslate(self) -> None:
        self.caption.setText(_("Room, name, student or account number:"))
        self.search.setPlaceholderText(_("e.g. 3-204 or 20240001"))

    def search_now(self) -> None:
        self._timer.stop()
        self.run_search()
        if self.results.count() and self.results.currentRow() < 0:
            self.results.setCurrentRow(0)

    def run_search(self) -> None:
        """List the open accounts the search text names; one match is chosen at once."""
        self._timer.stop()
        text = self.search.text().strip()
        try:
            found = queries.find_accounts(self.ctx.session.operator, text) if text else []
        except Exception as exc:  # a database trouble must not close the desk's dialog
            self.found.setText(error_text(exc, "account search"))
            return
        keep = self.account.id if self.account else None
        self.results.blockSignals(True)
        self.results.clear()
        selected = None
        for hit in found:
            label = f"{hit.account.room}   {fmt.name_list(hit.occupants)}".rstrip()
            if not hit.account.is_open:
                label = _("{room} (closed)").format(room=hit.account.room)
            item = QListWidgetItem(label)
            if not hit.account.is_open:
                item.setForeground(QBrush(QColor("#9e9e9e")))
            item.setData(ACCOUNT_ROLE, hit)
            item.setToolTip(hit.account.number)
            self.results.addItem(item)
            if hit.account.id == keep:
                selected = item
        self.results.blockSignals(False)
        n = len(found)
        self.found.setText((ngettext("{n} found", "{n} found", n).format(n=n) if n
                            else _("Nothing found")) if text else "")
        if selected is None and len(found) == 1:
            selected = self.results.item(0)
        self.results.setCurrentItem(selected)
        if selected is None:
            self._choose(None)

    def _on_current(self, item: QListWidgetItem | None, _previous=None) -> None:
        hit: AccountHit | None = item.data(ACCOUNT_ROLE) if item is not None else None
        self._choose(hit.account if hit is not None else None)

    def _choose(self, account: AccountRecord | None) -> None:
        self.account = account
        self.chosen.emit(account)

    def clear(self) -> None:
        self._timer.stop()
        self.search.clear()
        self.results.clear()
        self.found.setText("")
        self.account = None

    def stop(self) -> None:
        self._timer.stop()
