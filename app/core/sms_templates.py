"""The texts of the messages residents get: one template per kind and language (zh_CN, en).

Each kind has a default here; an administrator may edit it (``set_template``, audited, the
``settings`` permission), and an edit is kept in the database until it is set back (an empty
text, or the default's own). A template has three placeholders: ``{room}``, ``{balance}`` (the
station's balance in yuan, ``12.50``) and ``{days}`` (how many days the balance lasts at the
room's recent use, ``-`` when that is not known). An edit that is not a good template (a stray
brace, another placeholder, a format) is refused; one that went bad in the database anyway is
never sent: rendering falls back to the default and logs why.

The defaults are data in their own language, not gettext messages: a message goes out in the
station's SMS language (``sms.lang``), whatever language the window speaks.
"""

from __future__ import annotations

import logging
import string
import time
from dataclasses import dataclass

from app.core.audit import act
from app.core.changes import Changes
from app.core.operators import Operator, Permission, require
from app.errors import UserFacingError
from app.i18n import _
from app.storage import sms as store

log = logging.getLogger("voltkeeper.sms")

KINDS = ("low_balance_1", "low_balance_2", "low_balance_3", "trip_arrears", "trip_power_limit",
         "trip_malicious_load", "trip_schedule", "trip_plan", "trip_operator")
LANGS = ("zh_CN", "en")
PLACEHOLDERS = ("room", "balance", "days")
#: Longer than this is no notice (about 9 parts in Chinese).
MAX_CHARS = 600

DEFAULTS: dict[str, dict[str, str]] = {
    "zh_CN": {
        "low_balance_1": "【电费提醒】{room}室电费余额{balance}元，按近期用电约可用{days}天，"
                         "请及时充值。",
        "low_balance_2": "【电费提醒】{room}室电费余额仅剩{balance}元，约可用{days}天，"
                         "余额用完将自动断电，请尽快充值。",
        "low_balance_3": "【欠费提醒】{room}室电费已用完（余额{balance}元），即将断电，"
                         "请立即充值，充值后自动恢复供电。",
        "trip_arrears": "【断电通知】{room}室因欠费已断电（余额{balance}元），充值后自动恢复供电。",
        "trip_power_limit": "【断电通知】{room}室用电功率超过限额，已断电，请减少同时使用的电器，"
                            "稍后自动恢复供电。",
        "trip_malicious_load": "【断电通知】{room}室检测到违规电器（如热得快、电炉），已断电，"
                               "请移除后联系宿舍管理员。",
        "trip_schedule": "【断电通知】{room}室已按作息时间断电，将按时恢复供电。",
        "trip_plan": "【限电通知】因供电紧张，{room}已限电，供电恢复后自动恢复。",
        "trip_operator": "【断电通知】{room}室已由管理员断电，如有疑问请联系宿舍管理员。",
    },
    "en": {
        "low_balance_1": "Electricity: room {room} has {balance} yuan left, about {days} days "
                         "at your recent use. Please recharge soon.",
        "low_balance_2": "Electricity: room {room} has only {balance} yuan left, about {days} "
                         "days. Power is cut when it runs out: please recharge now.",
        "low_balance_3": "Electricity: room {room} is out of credit ({balance} yuan). Power will "
                         "be cut: recharge and it comes back by itself.",
        "trip_arrears": "Power cut: room {room} is out of credit ({balance} yuan). Recharge and "
                        "power comes back by itself.",
        "trip_power_limit": "Power cut: room {room} drew more than its power limit. Use fewer "
                            "appliances at once; power comes back shortly.",
        "trip_malicious_load": "Power cut: a forbidden appliance (immersion heater, hot plate) "
                               "was found in room {room}. Remove it and see the dorm office.",
        "trip_schedule": "Power cut: room {room} is off for the night by the schedule; power "
                         "comes back on time.",
        "trip_plan": "Power limited: supply is short, {room} is limited for now; it is undone "
                     "when supply is back.",
        "trip_operator": "Power cut: room {room} was switched off by the station's staff. "
                         "Please ask the dorm office.",
    },
}


def problem(text: str) -> str | None:
    """Why ``text`` is no good template (in the reader's language), or None when it is."""
    if not text.strip():
        return _("the text is empty")
    if len(text) > MAX_CHARS:
        return _("the text is longer than {n} characters").format(n=MAX_CHARS)
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return _("a brace is not closed or not doubled (write {{ and }} for a brace)").format()
    allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            return _("unknown placeholder {name}: the placeholders are {allowed}").format(
                name="{" + name + "}", allowed=allowed)
        if spec or conversion:
            return _("the placeholder {name} takes no format").format(name="{" + name + "}")
    return None


def default_text(kind: str, lang: str) -> str:
    return DEFAULTS[lang][kind]


def render(kind: str, lang: str, values: dict[str, str]) -> str:
    """The message: the edited template of ``kind`` in ``lang`` (or its default) filled in.
    Never fails on a bad edited template: the default is used and the reason logged."""
    if lang not in LANGS:
        lang = LANGS[0]
    values = {p: str(values.get(p, "-")) for p in PLACEHOLDERS}
    edited = store.edited_template(kind, lang)
    if edited is not None:
        why = problem(edited)
        if why is None:
            return edited.format(**values).strip()
        log.error("the edited SMS template %s (%s) is refused, the default is sent: %s",
                  kind, lang, why)
    return default_text(kind, lang).format(**values).strip()


@dataclass(frozen=True)
class TemplateView:
    kind: str
    lang: str
    text: str
    edited: bool
    updated_at: float | None
    updated_by: str


def templates(operator: Operator) -> list[TemplateView]:
    """Every kind in every language: the text in force, and whether and by whom it was
    edited."""
    require(operator, Permission.VIEW)
    edits = {(t.kind, t.lang): t for t in store.edited_templates()}
    out = []
    for kind in KINDS:
        for lang in LANGS:
            e = edits.get((kind, lang))
            out.append(TemplateView(kind, lang, e.text if e else default_text(kind, lang),
                                    e is not None, e.updated_at if e else None,
                                    e.updated_by if e else ""))
    return out


@dataclass(frozen=True)
class TemplateChange:
    kind: str
    lang: str
    before: str
    after: str
    edited: bool  # False: back to the default
    changes: Changes


def set_template(operator: Operator, kind: str, lang: str, text: str) -> TemplateChange:
    """Edit the template of ``kind`` in ``lang`` (administrators), audited with before and
    after; an empty text (or the default's) sets it back to the default."""
    if kind not in KINDS:
        raise UserFacingError(_("no SMS template {kind} (there are {kinds})").format(
            kind=kind, kinds=", ".join(KINDS)))
    if lang not in LANGS:
        raise UserFacingError(_("no SMS language {lang} (there are {langs})").format(
            lang=lang, langs=", ".join(LANGS)))
    text = text.strip()
    default = default_text(kind, lang)
    with act(operator, Permission.SETTINGS, "sms_template", target=f"{kind} ({lang})") as a:
        before = store.edited_template(kind, lang) or default
        if not text or text == default:
            store.drop_template(kind, lang)
            after, edited = default, False
        else:
            why = problem(text)
            if why is not None:
                raise UserFacingError(_("the SMS template {kind} ({lang}) is refused: "
                                        "{why}").format(kind=kind, lang=lang, why=why))
            store.put_template(kind, lang, text, operator.name, time.time())
            after, edited = text, True
        a.before, a.after = {"text": before}, {"text": after}
    return TemplateChange(kind, lang, before, after, edited, Changes(settings=True))
