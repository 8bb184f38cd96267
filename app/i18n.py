"""One translation system for core, drivers and UI: gettext catalogues read with Babel.

Texts are written in English in the code and wrapped in ``_()`` (or ``N_()`` where the text is
only marked, to be translated later). Catalogues live in ``resources/translations/<lang>.po``;
they are compiled in memory when a language is chosen, so there is no build step and no
generated file in the tree. Qt's own dialogs use Qt's qtbase catalogue, loaded by app.ui.

Run ``python -m app.i18n extract`` to refresh the template from the sources and
``python -m app.i18n check`` to list untranslated strings.
"""

from __future__ import annotations

import gettext
import io
import locale
import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "resources" / "translations"
DOMAIN = "voltkeeper"
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
DEFAULT_LANGUAGE = "en"

_lock = threading.Lock()
_current: gettext.NullTranslations = gettext.NullTranslations()
_current_language = DEFAULT_LANGUAGE


def _(message: str) -> str:
    """Translate ``message`` into the current language."""
    return _current.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it now."""
    return message


def system_language() -> str:
    """The supported language closest to the system's locale (LANGUAGE, LC_ALL, LANG...)."""
    candidates: list[str] = []
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            candidates.extend(value.split(":"))
    try:
        loc = locale.getlocale()[0]
    except ValueError:
        loc = None
    if loc:
        candidates.append(loc)
    for cand in candidates:
        code = cand.split(".")[0].replace("-", "_")
        if code in LANGUAGES:
            return code
        if code.lower().startswith("zh"):
            return "zh_CN"
        if code.lower().startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


def load_catalogue(language: str) -> gettext.NullTranslations:
    """Compile ``resources/translations/<language>.po`` in memory; identity if there is none."""
    po_path = TRANSLATIONS / f"{language}.po"
    if not po_path.exists():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def set_language(language: str | None) -> str:
    """Switch every later ``_()`` to ``language`` (None or "system": the system's). Returns it."""
    global _current, _current_language
    if not language or language == "system":
        language = system_language()
    if language not in LANGUAGES:
        language = DEFAULT_LANGUAGE
    catalogue = load_catalogue(language)
    with _lock:
        _current = catalogue
        _current_language = language
    return language


def current_language() -> str:
    return _current_language


def _extract() -> int:
    """Refresh resources/translations/voltkeeper.pot and merge it into every .po file."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po, write_po

    template = Catalog(domain=DOMAIN, project="VoltKeeper")
    method_map = [("app/**.py", "python"),
                  ("app/portal/templates/**.html", "jinja2.ext:babel_extract")]
    keywords = {"_": None, "N_": None, "ngettext": (1, 2), "tr": None}
    for filename, lineno, message, comments, _ctx in extract_from_dir(
        str(ROOT), method_map, keywords=keywords
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments)
    TRANSLATIONS.mkdir(parents=True, exist_ok=True)
    with (TRANSLATIONS / f"{DOMAIN}.pot").open("wb") as fh:
        write_po(fh, template, omit_header=False, sort_output=True)
    for language in LANGUAGES:
        po_path = TRANSLATIONS / f"{language}.po"
        if po_path.exists():
            with po_path.open("rb") as fh:
                catalog = read_po(fh, locale=language)
        else:
            catalog = Catalog(locale=language, domain=DOMAIN, project="VoltKeeper")
        catalog.update(template, no_fuzzy_matching=True)
        with po_path.open("wb") as fh:
            write_po(fh, catalog, sort_output=True, ignore_obsolete=True)
    return 0


def untranslated(language: str = "zh_CN") -> list[str]:
    from babel.messages.pofile import read_po

    with (TRANSLATIONS / f"{language}.po").open("rb") as fh:
        catalog = read_po(fh, locale=language)
    return [m.id for m in catalog if m.id and not m.string]


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "check"
    if cmd == "extract":
        return _extract()
    if cmd == "compile":  # catalogues compile in memory; this only checks they parse
        for language in LANGUAGES:
            load_catalogue(language)
        return 0
    if cmd == "check":
        missing = untranslated()
        for m in missing:
            print(m)
        return 1 if missing else 0
    print("usage: python -m app.i18n extract|compile|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
