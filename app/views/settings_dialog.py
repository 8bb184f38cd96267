"""Station settings (administrators): the options every desk and the reading service share.

One row per declared option (``core.settings.OPTIONS``: a spin box within its bounds for a
number, a line for text). Save changes each value that differs from the stored one, one
audited act each (``settings.change``, which checks the value again), one after the other
through the runner, and says what it saved; a refusal stops there and is shown in red.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core import settings
from app.core.changes import Changes
from app.core.operators import Permission
from app.core.settings import SettingChange, StationOption
from app.i18n import _
from app.ui.context import ActingContext
from app.ui.errors import error_text
from app.ui.widgets import GOOD_STYLE, message_label

INT_LIMIT = 2**31 - 1


def value_text(value: object) -> str:
    return _("(empty)") if value == "" else str(value)


class StationSettingsDialog(QDialog):
    def __init__(self, ctx: ActingContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StationSettingsDialog")
        self.ctx = ctx
        self.stored: dict[str, object] = {}
        self.pending: list[tuple[StationOption, object]] = []
        self.saved: list[str] = []
        self.saving = False
        self.fields: dict[str, QSpinBox | QLineEdit] = {}
        self.captions: dict[str, QLabel] = {}
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        for key, option in settings.OPTIONS.items():
            field: QSpinBox | QLineEdit
            if option.type is int:
                field = QSpinBox()
                field.setRange(-INT_LIMIT if option.minimum is None else option.minimum,
                               INT_LIMIT if option.maximum is None else option.maximum)
                field.setMinimumWidth(110)
            else:
                field = QLineEdit()
                field.setMinimumWidth(260)
            field.setObjectName(key)
            caption = QLabel()
            caption.setWordWrap(True)
            caption.setMinimumWidth(320)
            caption.setBuddy(field)
            self.fields[key], self.captions[key] = field, caption
            form.addRow(caption, field)
        self.message = message_label("message")
        self.info = message_label("info", GOOD_STYLE)
        self.save_button, self.close_button = QPushButton(), QPushButton()
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.info)
        layout.addStretch(1)
        layout.addLayout(buttons)
        ctx.runner.changed.connect(self._changed)
        self.refresh()
        self.retranslate()
        self.setMinimumWidth(640)

    def retranslate(self) -> None:
        self.setWindowTitle(_("Station settings"))
        self.intro.setText(_("These settings hold for every desk and for the reading service. "
                             "Each change is recorded in the audit log."))
        for key, option in settings.OPTIONS.items():
            self.captions[key].setText(_(option.label))
            bounds = (_("from {min} to {max}").format(min=option.minimum, max=option.maximum)
                      if option.type is int and option.minimum is not None
                      and option.maximum is not None else "")
            tip = _("Default: {value}").format(value=value_text(option.default))
            self.fields[key].setToolTip(f"{tip}; {bounds}" if bounds else tip)
        self.save_button.setText(_("Save"))
        self.close_button.setText(_("Close"))
        self._update_buttons()

    # -- values ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Show the stored values (read here, on the UI thread: a handful of rows)."""
        self.stored = settings.values()
        for key, value in self.stored.items():
            self._show(key, value)

    def _show(self, key: str, value: object) -> None:
        field = self.fields[key]
        if isinstance(field, QSpinBox):
            field.setValue(int(str(value)))
        else:
            field.setText(str(value))

    def value(self, key: str) -> object:
        field = self.fields[key]
        return field.value() if isinstance(field, QSpinBox) else field.text().strip()

    def changed_values(self) -> list[tuple[StationOption, object]]:
        return [(option, self.value(key)) for key, option in settings.OPTIONS.items()
                if self.value(key) != self.stored.get(key)]

    def _changed(self, changes: Changes) -> None:
        """Another act changed the settings: show the new values where nothing was edited."""
        if not changes.settings or self.saving:
            return
        fresh = settings.values()
        for key, value in fresh.items():
            if self.value(key) == self.stored.get(key):
                self._show(key, value)
        self.stored = fresh

    def _update_buttons(self) -> None:
        self.save_button.setEnabled(not self.saving
                                    and self.ctx.session.can(Permission.SETTINGS))

    # -- saving: one act per changed value, one after the other --------------------------------
    def save(self) -> None:
        if self.saving or self.ctx.runner.busy:
            return
        self.message.clear()
        self.pending = self.changed_values()
        if not self.pending:
            self.info.setText(_("Nothing changed."))
            return
        self.saved = []
        self.saving = True
        self._update_buttons()
        self._save_next()

    def _save_next(self) -> None:
        if not self.pending:
            self._finish()
            return
        option, value = self.pending.pop(0)
        acting = self.ctx.session.operator
        self.ctx.runner.run(lambda: settings.change(acting, option, value),
                            title=_("Station settings"), parent=self, on_done=self._saved,
                            on_error=self._refused)

    def _saved(self, result: SettingChange) -> None:
        self.stored[result.key] = result.after
        self._show(result.key, result.after)
        self.saved.append(_("{label}: {before} → {after}").format(
            label=_(settings.OPTIONS[result.key].label), before=value_text(result.before),
            after=value_text(result.after)))
        self._save_next()

    def _refused(self, exc: BaseException) -> None:
        self.message.setText(error_text(exc, "station settings"))
        self.pending = []
        self._finish()

    def _finish(self) -> None:
        self.saving = False
        self.info.setText("\n".join([_("Saved:"), *self.saved]) if self.saved else "")
        self._update_buttons()
