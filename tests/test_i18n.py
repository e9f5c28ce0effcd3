"""The catalogs: Vietnamese and English hold the same keys with the same placeholders."""

from __future__ import annotations

import string

from bot.i18n import I18n


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


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


def test_lookup_falls_back_to_the_default_language() -> None:
    i18n = I18n("vi")
    assert i18n.t(None, "invite.used").startswith("Mã mời")
    assert i18n.t("en", "invite.used").startswith("This invite")
    assert i18n.t("fr", "invite.used").startswith("Mã mời")
    assert i18n.t("en", "where.row", n=12) == "Row 12"
