"""Message catalog tooling: gettext .po files under bot/locales/<language>/LC_MESSAGES/<flow>.po.

    python tools/i18n.py import-toml   move bot/locales/<language>/*.toml keys into the .po files
                                      (then delete the TOML): for branches that still add TOML keys
    python tools/i18n.py extract       write bot/locales/<flow>.pot: every key of the Vietnamese
                                      catalog (the source language), its text as a comment, plus
                                      keys found in the code (t/say/tn calls) that no catalog has
    python tools/i18n.py update        bring each language's .po up to date with the .pot files
    python tools/i18n.py compile       compile every .po to .mo (checks placeholders and plurals)
    python tools/i18n.py check         fail when a .po has a syntax error or the languages disagree

`./dev.sh i18n <command>` runs these inside the venv. A message's msgid is its key
(`report.ask.status`); msgstr is the text; placeholders are str.format fields (`{code}`), flagged
python-brace-format so Poedit and Weblate check them. A plural message has msgid_plural (the same
key) and one msgstr per plural form of the language (Vietnamese 1, English 2).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "bot" / "locales"
SOURCE_LANGUAGE = "vi"
PLACEHOLDER = re.compile(r"(?<!\{)\{([a-z_][a-z0-9_]*)(?:[!:][^{}]*)?\}(?!\})")
HEADER = "# tiendo messages: {flow}. The msgid is the key the code uses; translate the msgstr."


def languages(locales: Path = LOCALES) -> list[str]:
    return sorted(p.name for p in locales.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def po_path(language: str, flow: str, locales: Path = LOCALES) -> Path:
    return locales / language / "LC_MESSAGES" / f"{flow}.po"


def flows(language: str) -> list[str]:
    return sorted(p.stem for p in (LOCALES / language / "LC_MESSAGES").glob("*.po"))


def new_catalog(flow: str, language: str | None = None) -> Catalog:
    return Catalog(
        locale=language,
        domain=flow,
        project="tiendo",
        header_comment=HEADER.format(flow=flow),
        fuzzy=False,
    )


def load(path: Path, language: str, flow: str) -> Catalog:
    if not path.exists():
        return new_catalog(flow, language)
    with path.open("rb") as handle:
        return read_po(handle, locale=language, domain=flow)


def flag_placeholders(catalog: Catalog) -> None:
    """Flag python-brace-format where the text has {fields}; Babel looks only at the msgid (a key)."""
    for message in catalog:
        text = message.string or ""
        if message.id and brace_flags(text if isinstance(text, str) else tuple(text)):
            message.flags.add("python-brace-format")


def save(catalog: Catalog, path: Path) -> None:
    flag_placeholders(catalog)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, sort_output=False)


def brace_flags(text: str | tuple[str, ...]) -> set[str]:
    texts = text if isinstance(text, tuple) else (text,)
    return {"python-brace-format"} if any(PLACEHOLDER.search(t) for t in texts) else set()


def _flatten(table: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", unicodedata.normalize("NFC", str(value))


def import_toml(locales: Path = LOCALES) -> int:
    """Move every key of bot/locales/<language>/<flow>.toml into the .po files, delete the TOML.

    A key some flow's .po already holds is updated there (a changed text is printed); a new key
    goes to <flow>.po, created if need be. Plural messages are left as they are.
    """
    moved = 0
    for language in languages(locales):
        catalogs: dict[str, Catalog] = {}
        owner: dict[str, str] = {}
        for path in sorted((locales / language / "LC_MESSAGES").glob("*.po")):
            catalogs[path.stem] = load(path, language, path.stem)
            owner.update((_key(m), path.stem) for m in catalogs[path.stem] if m.id)
        tomls = sorted((locales / language).glob("*.toml"))
        for toml_path in tomls:
            with toml_path.open("rb") as handle:
                entries = list(_flatten(tomllib.load(handle)))
            for key, text in entries:
                flow = owner.setdefault(key, toml_path.stem)
                catalog = catalogs.setdefault(flow, new_catalog(flow, language))
                moved += _merge(catalog, key, text, language)
            print(f"{toml_path}: {len(entries)} keys")
        for flow, catalog in catalogs.items():
            save(catalog, po_path(language, flow, locales))
        for toml_path in tomls:
            toml_path.unlink()
    print(f"{moved} messages added or changed")
    return 0


def _key(message: Message) -> str:
    return str(message.id if isinstance(message.id, str) else message.id[0])


def _merge(catalog: Catalog, key: str, text: str, language: str) -> int:
    old = catalog.get(key)
    if old is not None and (old.string == text or old.pluralizable):
        if old.string != text:
            print(f"kept plural {language}:{key}; the TOML had {text!r}", file=sys.stderr)
        return 0
    if old is not None:
        print(f"changed {language}:{key}: {old.string!r} -> {text!r}", file=sys.stderr)
        old.string = text
    else:
        catalog[key] = Message(key, text)
    return 1


def _code_keys() -> set[str]:
    """Literal keys passed to the catalog in code: t(lang, "k"), call.t("k"), say("k"), tn(...)."""
    pattern = re.compile(r"""\b(?:t|tn|say|_t|reply)\(\s*(?:[\w.]+,\s*)?["']([a-z_]+(?:\.[a-z0-9_]+)+)["']""")
    keys: set[str] = set()
    for folder in ("bot", "handlers"):
        for path in (ROOT / folder).rglob("*.py"):
            keys.update(pattern.findall(path.read_text(encoding="utf-8")))
    return keys


def extract() -> int:
    """Write one .pot per flow from the Vietnamese catalog; report code keys no catalog holds."""
    known: set[str] = set()
    for flow in flows(SOURCE_LANGUAGE):
        source = load(po_path(SOURCE_LANGUAGE, flow), SOURCE_LANGUAGE, flow)
        template = new_catalog(flow)
        for message in source:
            if not message.id:
                continue
            known.add(_key(message))
            text = message.string[-1] if isinstance(message.string, tuple) else message.string
            template.add(
                message.id,
                auto_comments=[f"vi: {text}"],
                flags=message.flags,
                locations=message.locations,
            )
        save(template, LOCALES / f"{flow}.pot")
        print(f"bot/locales/{flow}.pot: {len(template)} messages")
    missing = sorted(_code_keys() - known)
    for key in missing:
        print(f"key used in code but in no catalog: {key}", file=sys.stderr)
    return 0


def update() -> int:
    """Add the .pot's new keys to every language (empty), mark keys gone from it obsolete."""
    for template_path in sorted(LOCALES.glob("*.pot")):
        flow = template_path.stem
        with template_path.open("rb") as handle:
            template = read_po(handle)
        for language in languages():
            path = po_path(language, flow)
            catalog = load(path, language, flow)
            catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
            save(catalog, path)
            print(f"{path.relative_to(ROOT)}: {len(catalog)} messages")
    return 0


def compile_all() -> int:
    """Compile every .po to .mo beside it; stop on the first catalog with errors."""
    failed = 0
    for language in languages():
        for flow in flows(language):
            path = po_path(language, flow)
            catalog = load(path, language, flow)
            problems = [(m.id, e) for m, errors in catalog.check() for e in errors]
            for key, error in problems:
                print(f"{path.relative_to(ROOT)}: {key}: {error}", file=sys.stderr)
            failed += len(problems)
            with path.with_suffix(".mo").open("wb") as handle:
                write_mo(handle, catalog)
    return 1 if failed else 0


def check() -> int:
    """The languages hold the same keys with the same placeholders."""
    from bot.i18n import I18n

    i18n = I18n()
    source = i18n.catalogs[SOURCE_LANGUAGE]
    bad = 0
    for language, catalog in i18n.catalogs.items():
        for key in sorted(set(source) ^ set(catalog)):
            print(f"{language}: {key} is in only one of {SOURCE_LANGUAGE}, {language}", file=sys.stderr)
            bad += 1
    return 1 if bad else 0


COMMANDS = {"import-toml": import_toml, "extract": extract, "update": update, "compile": compile_all}
COMMANDS["check"] = check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev.sh i18n", description=(__doc__ or "\n").splitlines()[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    args = parser.parse_args(argv)
    return COMMANDS[args.command]()


if __name__ == "__main__":
    sys.exit(main())
