"""Message catalogs: every text a user reads, in Vietnamese (first) and English.

Catalogs are TOML files in bot/locales/<language>/, one file per flow (core.toml, report.toml,
...) so that flows do not edit one shared file; nested tables are flattened to dotted keys
(`[start] welcome = "..."` is `start.welcome`) and a key defined twice is an error.
Placeholders use str.format: `{name}`.
A key missing from the requested language falls back to Vietnamese, then to the key itself,
and tests fail when the two catalogs disagree.
"""

from __future__ import annotations

import tomllib
import unicodedata
from pathlib import Path
from typing import Any

LOCALES = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "vi"


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = unicodedata.normalize("NFC", str(value))
    return flat


def load_catalog(language: str, folder: Path = LOCALES) -> dict[str, str]:
    catalog: dict[str, str] = {}
    for path in sorted((folder / language).glob("*.toml")):
        with path.open("rb") as handle:
            entries = _flatten(tomllib.load(handle))
        clash = catalog.keys() & entries.keys()
        if clash:
            raise ValueError(f"{path}: keys defined twice: {sorted(clash)}")
        catalog.update(entries)
    return catalog


class I18n:
    def __init__(self, default: str = DEFAULT_LANGUAGE, folder: Path = LOCALES) -> None:
        self.default = default
        self.catalogs = {
            path.name: load_catalog(path.name, folder) for path in sorted(folder.iterdir()) if path.is_dir()
        }

    @property
    def languages(self) -> list[str]:
        return list(self.catalogs)

    def t(self, language: str | None, key: str, /, **params: Any) -> str:
        """The text for key in language, with params filled in."""
        catalog = self.catalogs.get(language or self.default) or self.catalogs[self.default]
        text = catalog.get(key) or self.catalogs[DEFAULT_LANGUAGE].get(key)
        if text is None:
            return key
        return text.format(**params) if params else text
