"""Every user-visible string has its Chinese translation, with the same placeholders, and the
core's texts translate without Qt."""

from __future__ import annotations

import string

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app import i18n


def _source_messages() -> set[str]:
    keywords = {"_": None, "N_": None, "ngettext": (1, 2)}
    out = set()
    methods = [("**.py", "python"), ("portal/templates/**.html", "jinja2.ext:babel_extract")]
    for _f, _l, message, _c, _ctx in extract_from_dir(str(i18n.ROOT / "app"), methods,
                                                      keywords=keywords):
        out.update(message if isinstance(message, tuple) else (message,))
    return {m for m in out if m}


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def test_every_string_is_translated_with_the_same_placeholders():
    with (i18n.TRANSLATIONS / "zh_CN.po").open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    translated: dict[str, str] = {}
    for m in catalog:
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if m.id and all(strings):
            for msgid in ids:
                translated[msgid] = strings[0]
    missing = sorted(_source_messages() - set(translated))
    assert not missing, f"untranslated (run python -m app.i18n extract, fill zh_CN.po): {missing}"
    for msgid, msgstr in translated.items():
        assert _fields(msgid) == _fields(msgstr), (msgid, msgstr)


def test_core_texts_switch_language_without_qt():
    from app.core.money import parse_amount
    from app.errors import UserFacingError

    try:
        i18n.set_language("zh_CN")
        try:
            parse_amount("")
        except UserFacingError as exc:
            assert str(exc) == i18n._("enter an amount") and str(exc) != "enter an amount"
        i18n.set_language("en")
        assert i18n._("enter an amount") == "enter an amount"
    finally:
        i18n.set_language("en")
