"""The catalogs: gettext .po files, Vietnamese and English with the same keys and placeholders."""

from __future__ import annotations

import os
import shutil
import string
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.i18n import LOCALES, I18n
from tools.i18n import import_toml


def placeholders(text: str | tuple[str, ...]) -> set[str]:
    texts = text if isinstance(text, tuple) else (text,)
    return {name for t in texts for _, name, _, _ in string.Formatter().parse(t) if name}


def test_every_key_exists_in_both_languages() -> None:
    i18n = I18n()
    vi, en = i18n.catalogs["vi"], i18n.catalogs["en"]
    assert sorted(set(vi) - set(en)) == [], "keys missing in English"
    assert sorted(set(en) - set(vi)) == [], "keys missing in Vietnamese"


def test_placeholders_agree_between_languages() -> None:
    i18n = I18n()
    vi, en = i18n.catalogs["vi"], i18n.catalogs["en"]
    differing = [key for key in vi if placeholders(vi[key]) != placeholders(en[key])]
    assert differing == []


def test_texts_are_nfc_and_plural_messages_have_the_languages_forms() -> None:
    i18n = I18n()
    for language, forms in (("vi", 1), ("en", 2)):
        for key, text in i18n.catalogs[language].items():
            texts = text if isinstance(text, tuple) else (text,)
            assert all(t and unicodedata.is_normalized("NFC", t) for t in texts), (language, key)
            if isinstance(text, tuple):
                assert len(text) == forms, (language, key)


def test_lookup_falls_back_to_the_default_language() -> None:
    i18n = I18n("vi")
    assert i18n.t(None, "invite.used").startswith("Mã mời")
    assert i18n.t("en", "invite.used").startswith("This invite")
    assert i18n.t("fr", "invite.used").startswith("Mã mời")
    assert i18n.t("en", "where.row", n=12) == "Row 12"
    assert i18n.t("en", "no.such.key") == "no.such.key"


def test_plural_forms_follow_the_count() -> None:
    i18n = I18n()
    assert i18n.tn("en", "admin.import.errors", 1) == "❌ The file has 1 error:"
    assert i18n.tn("en", "admin.import.errors", 3) == "❌ The file has 3 errors:"
    assert i18n.tn("vi", "admin.import.errors", 1) == "❌ Tệp có 1 lỗi:"
    assert i18n.tn("vi", "admin.import.errors", 3) == "❌ Tệp có 3 lỗi:"
    # t() picks the form from `count`, so call sites that pass count= get plurals too.
    assert i18n.t("en", "nudges.period_more", count=1) == "… and 1 more task."
    assert i18n.t("en", "nudges.period_more", count=2) == "… and 2 more tasks."


def test_dates_times_and_numbers_in_the_readers_language() -> None:
    i18n = I18n()
    day = date(2024, 1, 5)
    moment = datetime(2024, 1, 31, 2, 5, tzinfo=UTC)
    hanoi = ZoneInfo("Asia/Ho_Chi_Minh")
    assert i18n.date("vi", day) == "05/01/2024"
    assert i18n.date("en", day) == "Jan 5, 2024"
    assert i18n.datetime("vi", moment, hanoi) == "09:05 31/01/2024"
    assert i18n.datetime("en", moment, hanoi) == "Jan 31, 2024, 9:05 AM"
    assert i18n.percent("vi", 0.915) == "91,5%"
    assert i18n.percent("en", 0.915) == "91.5%"
    assert i18n.number("vi", 12345.5) == "12.345,5"
    assert i18n.number("en", 12345.5) == "12,345.5"


def _copy_locales(tmp_path: Path) -> Path:
    folder = tmp_path / "locales"
    shutil.copytree(LOCALES, folder, ignore=shutil.ignore_patterns("*.mo"))
    return folder


def test_a_missing_or_stale_mo_is_compiled_from_the_po(tmp_path: Path) -> None:
    folder = _copy_locales(tmp_path)
    assert I18n(folder=folder).t("en", "invite.used").startswith("This invite")
    mo = folder / "en" / "LC_MESSAGES" / "core.mo"
    assert mo.exists()
    po = mo.with_suffix(".po")
    po.write_text(po.read_text(encoding="utf-8").replace("This invite", "That invite"), encoding="utf-8")
    os.utime(mo, (0, 0))
    assert I18n(folder=folder).t("en", "invite.used").startswith("That invite")


def test_a_read_only_folder_still_loads_from_the_po(tmp_path: Path) -> None:
    folder = _copy_locales(tmp_path)
    for sub in folder.glob("*/LC_MESSAGES"):
        sub.chmod(0o555)
    try:
        assert I18n(folder=folder).t("en", "invite.used").startswith("This invite")
    finally:
        for sub in folder.glob("*/LC_MESSAGES"):
            sub.chmod(0o755)


def test_import_toml_moves_leftover_keys_into_the_po_and_deletes_the_toml(tmp_path: Path) -> None:
    folder = _copy_locales(tmp_path)
    (folder / "vi" / "report.toml").write_text(
        '[report.new]\nthing = "Việc mới {code}"\n[invite]\nused = "Mã mời này đã dùng."\n', encoding="utf-8"
    )
    (folder / "en" / "fresh.toml").write_text('[fresh]\nkey = "Fresh"\n', encoding="utf-8")
    assert import_toml(folder) == 0
    assert not list(folder.glob("*/*.toml"))
    i18n = I18n(folder=folder)
    assert i18n.t("vi", "report.new.thing", code="A1") == "Việc mới A1"
    assert i18n.t("en", "fresh.key") == "Fresh"
    # A key that already lives in another flow (core) is changed there, not defined twice.
    assert i18n.t("vi", "invite.used") == "Mã mời này đã dùng."
    assert i18n.catalogs["vi"]["invite.used"] == "Mã mời này đã dùng."
    report_po = (folder / "vi" / "LC_MESSAGES" / "report.po").read_text(encoding="utf-8")
    assert "python-brace-format" in report_po and "invite.used" not in report_po
