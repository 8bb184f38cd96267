"""An amount field: what the operator types, read as integer cents by the core's parser.

The field owns no money rules. It parses with ``money.parse_amount`` and, when given one, runs
a ``check`` from the core (``lambda c: validate_amount(c, maximum)``); whatever either refuses
is the field's verdict, shown as a red frame and a tooltip and announced by ``verdictChanged``
so a dialog can print it beside the field. ``cents()`` is an int only when the verdict is good.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLineEdit, QWidget

from app.core.money import format_cents, parse_amount
from app.errors import UserFacingError

#: The core's rule for an amount: returns the cents or raises UserFacingError.
AmountCheck = Callable[[int], int]

INVALID_STYLE = "QLineEdit { border: 1px solid #c62828; background: #fff4f4; }"


@dataclass(frozen=True)
class AmountVerdict:
    """What the field holds: ``cents`` when the amount is good, else the ``message`` why not
    (empty text is neither good nor an error: ``cents`` None and ``message`` "")."""

    text: str
    cents: int | None
    message: str

    @property
    def ok(self) -> bool:
        return self.cents is not None


class AmountEdit(QLineEdit):
    verdictChanged = Signal(object)  # AmountVerdict

    def __init__(self, parent: QWidget | None = None, *, check: AmountCheck | None = None
                 ) -> None:
        super().__init__(parent)
        self._check = check
        self._verdict = AmountVerdict("", None, "")
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setMaxLength(24)
        self.setClearButtonEnabled(True)
        self.textChanged.connect(self._recheck)

    # -- reading -------------------------------------------------------------------------------
    def cents(self) -> int | None:
        """The amount in cents when it passes the parser and the check; None otherwise."""
        return self._verdict.cents

    def verdict(self) -> AmountVerdict:
        return self._verdict

    def message(self) -> str:
        """Why the amount is refused ("" when it is good or the field is empty)."""
        return self._verdict.message

    # -- writing -------------------------------------------------------------------------------
    def set_cents(self, cents: int | None) -> None:
        self.setText("" if cents is None else format_cents(cents))

    def set_check(self, check: AmountCheck | None) -> None:
        """Use another rule (e.g. a new maximum); the current text is judged again."""
        self._check = check
        self._recheck()

    def _recheck(self, _text: str | None = None) -> None:
        text = self.text()
        verdict = judge(text, self._check)
        if verdict == self._verdict:
            return
        self._verdict = verdict
        self.setStyleSheet(INVALID_STYLE if verdict.message else "")
        self.setToolTip(verdict.message)
        self.verdictChanged.emit(verdict)


def judge(text: str, check: AmountCheck | None = None) -> AmountVerdict:
    """The verdict on ``text``: parsed by the core, then checked by ``check`` if given."""
    if not text.strip():
        return AmountVerdict(text, None, "")
    try:
        cents = int(parse_amount(text))
        if check is not None:
            cents = check(cents)
    except UserFacingError as exc:
        return AmountVerdict(text, None, str(exc))
    return AmountVerdict(text, cents, "")
