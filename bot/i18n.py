"""Message catalogs: every text a user reads, in Vietnamese (first) and English, as gettext.

The catalogs are .po files in bot/locales/<language>/LC_MESSAGES/<flow>.po, one per flow
(core, report, admin, ...) so that flows do not edit one shared file. A message's msgid is its key
(`start.welcome`), its msgstr the text; placeholders use str.format: `{name}`. A plural message
has one text per plural form of the language (Vietnamese one, English two), chosen by `count`.
`./dev.sh i18n` extracts, updates and compiles them (README, Translating).

At start-up the compiled .mo files are read with the standard library's gettext. A .mo that is
missing or older than its .po (a fresh checkout, an edited .po) is compiled from the .po with Babel
and written beside it when the folder is writable, otherwise kept in memory only.
A key missing from the requested language falls back to Vietnamese, then to the key itself, and
tests fail when the two catalogs disagree.

Dates, times and numbers are formatted by Babel in the reader's language; the patterns are
catalog entries too (`format.date`, `format.datetime`, `format.percent`), so a translator sets them.
"""

from __future__ import annotations

import gettext
import io
import os
import tempfile
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

LOCALES = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "vi"
DOMAIN_FOLDER = "LC_MESSAGES"


def _compile(po: Path) -> bytes:
    """The .mo bytes of a .po file (Babel); imported only when a .mo is missing or stale."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        catalog = read_po(handle)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def _write_beside(path: Path, data: bytes) -> None:
    """Write the compiled catalog atomically (several instances may start at once); skip if read-only."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".mo.tmp")
    except OSError:
        return
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def _translations(po: Path) -> gettext.GNUTranslations:
    mo = po.with_suffix(".mo")
    try:
        fresh = mo.stat().st_mtime >= po.stat().st_mtime
    except FileNotFoundError:
        fresh = False
    if fresh:
        with mo.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    data = _compile(po)
    _write_beside(mo, data)
    return gettext.GNUTranslations(io.BytesIO(data))


def load_language(language: str, folder: Path = LOCALES) -> gettext.NullTranslations:
    """Every flow's catalog of one language, chained into one lookup."""
    flows = sorted((folder / language / DOMAIN_FOLDER).glob("*.po"))
    if not flows:
        return gettext.NullTranslations()
    first = _translations(flows[0])
    for po in flows[1:]:
        first.add_fallback(_translations(po))
    return first


def load_catalog(language: str, folder: Path = LOCALES) -> dict[str, str | tuple[str, ...]]:
    """Key -> text (a tuple of forms for a plural message), read from the .po files (Babel).

    For tests and tools; the bot looks messages up through gettext. A key in two flows is an error.
    """
    from babel.messages.pofile import read_po

    entries: dict[str, str | tuple[str, ...]] = {}
    for po in sorted((folder / language / DOMAIN_FOLDER).glob("*.po")):
        with po.open("rb") as handle:
            catalog = read_po(handle)
        for message in catalog:
            if not message.id:
                continue
            key = str(message.id if isinstance(message.id, str) else message.id[0])
            if key in entries:
                raise ValueError(f"{po}: key defined twice: {key}")
            text = message.string or ""
            entries[key] = text if isinstance(text, str) else tuple(text)
    return entries


class I18n:
    def __init__(self, default: str = DEFAULT_LANGUAGE, folder: Path = LOCALES) -> None:
        self.default = default
        self.folder = folder
        names = sorted(p.name for p in folder.iterdir() if (p / DOMAIN_FOLDER).is_dir())
        self.translations = {name: load_language(name, folder) for name in names}
        fallback = self.translations.get(DEFAULT_LANGUAGE)
        for name, translation in self.translations.items():
            if fallback is not None and name != DEFAULT_LANGUAGE:
                translation.add_fallback(fallback)
        self._catalogs: dict[str, dict[str, str | tuple[str, ...]]] | None = None

    @property
    def languages(self) -> list[str]:
        return list(self.translations)

    @property
    def catalogs(self) -> Mapping[str, Mapping[str, str | tuple[str, ...]]]:
        """Every language's key -> text, from the .po files (tests and tools)."""
        if self._catalogs is None:
            self._catalogs = {name: load_catalog(name, self.folder) for name in self.translations}
        return self._catalogs

    def _language(self, language: str | None) -> gettext.NullTranslations:
        return self.translations.get(language or self.default) or self.translations[self.default]

    def t(self, language: str | None, key: str, /, **params: Any) -> str:
        """The text for key in language, with params filled in.

        A plural message takes its form from the `count` parameter (as `tn` does).
        """
        translation = self._language(language)
        text = key
        if "count" in params:
            text = translation.ngettext(key, key, _plural_count(params["count"]))
        if text == key:
            text = translation.gettext(key)
        return text.format(**params) if params else text

    def tn(self, language: str | None, key: str, count: int, /, **params: Any) -> str:
        """The plural form of key for count in language (`{count}` is filled in too)."""
        text = self._language(language).ngettext(key, key, count)
        return text.format(count=count, **params)

    # Dates and numbers in the reader's language: Babel (CLDR) with the catalog's patterns.
    # Babel is imported at the first formatted value, not at start-up.

    def _locale(self, language: str | None) -> str:
        return language if language in self.translations else self.default

    def date(self, language: str | None, value: date) -> str:
        """A calendar day, e.g. 31/01/2024 (vi) or Jan 31, 2024 (en)."""
        from babel.dates import format_date

        return format_date(value, self.t(language, "format.date"), locale=self._locale(language))

    def datetime(self, language: str | None, value: datetime, tz: ZoneInfo | None = None) -> str:
        """A moment in local time (tz), e.g. 09:05 31/01/2024 (vi) or Jan 31, 2024, 9:05 AM (en)."""
        from babel.dates import format_datetime

        local = value.astimezone(tz) if tz is not None else value
        pattern = self.t(language, "format.datetime")
        return format_datetime(local.replace(tzinfo=None), pattern, locale=self._locale(language))

    def percent(self, language: str | None, ratio: float) -> str:
        """A share (0.915) as a percentage, e.g. 91,5% (vi) or 91.5% (en)."""
        from babel.numbers import format_percent

        return format_percent(ratio, self.t(language, "format.percent"), locale=self._locale(language))

    def number(self, language: str | None, value: float) -> str:
        """A number with the language's grouping and decimal marks, e.g. 12.345,5 (vi)."""
        from babel.numbers import format_decimal

        return format_decimal(value, locale=self._locale(language))


def _plural_count(count: Any) -> int:
    """The number a plural form is chosen by: templates may pass it already formatted for
    reading, with the language's thousands separator ("1.234" in Vietnamese, "1,234" in English)."""
    if isinstance(count, int):
        return count
    digits = "".join(ch for ch in str(count) if ch.isdigit())
    return int(digits) if digits else 0
