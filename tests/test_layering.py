"""Dependencies point one way (issue 12, item 3), checked from the imports of every module.

bot (wiring, CLI) → handlers and jobs → the typed context → services → repositories → storage,
with config, clock and i18n beneath them all. A module imports its own layer or those below;
jobs and handlers do not import each other; below the context nothing imports telegram; only
storage/db.py runs SQLite's straight-to-driver statements; services hand out plain dataclasses,
not ORM rows; HTML escaping belongs to the Telegram surface; one module owns callback data.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Top to bottom. A module belongs to the first layer with a matching prefix.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wiring", ("bot.app", "bot.cli", "bot.demo", "bot.persistence", "bot.logs", "bot.__main__")),
    ("surface", ("handlers", "bot.jobs", "bot.updates", "bot.health", "bot.bot_api_http")),
    ("context", ("bot.context", "bot.cluster")),
    ("services", ("bot.services",)),
    ("repositories", ("storage.repositories",)),
    ("storage", ("storage",)),
    ("foundation", ("bot",)),  # bot.config, bot.clock, bot.i18n, bot.errors...
)
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}
# Below the typed context nothing knows of Telegram.
NO_TELEGRAM = ("services", "repositories", "storage", "foundation")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the module imported (or the module a name is imported from)
    names: tuple[str, ...]  # names imported from it (from X import a, b)
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> list[Path]:
    return [
        path
        for folder in ("bot", "handlers", "storage")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
    ]


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.found: list[Import] = []
        self.depth = 0

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append(Import(self.module, alias.name, (), node.lineno, self.depth > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        target = node.module or ""
        if node.level:  # relative: resolve against this module's package
            package = self.module.split(".")[: -node.level] if node.level else []
            target = ".".join([*package, *([target] if target else [])])
        names = tuple(alias.name for alias in node.names)
        self.found.append(Import(self.module, target, names, node.lineno, self.depth > 0))


@functools.cache
def _trees() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in _sources()}


@functools.cache
def _imports() -> list[Import]:
    found: list[Import] = []
    for module, tree in _trees().items():
        visitor = _Imports(module)
        visitor.visit(tree)
        found.extend(visitor.found)
    return found


def layer_of(module: str) -> str | None:
    for name, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return name
    return None


def _is(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _ours(imp: Import) -> list[str]:
    """The project modules an import reaches (a `from package import module` reaches both)."""
    if layer_of(imp.target) is None:
        return []
    return [imp.target, *(f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in _trees())]


def _where(imp: Import) -> str:
    return f"{imp.module}:{imp.line} imports {imp.target}"


def test_every_module_has_a_layer() -> None:
    assert [m for m in _trees() if layer_of(m) is None] == []


def test_imports_point_down() -> None:
    upward = []
    for imp in _imports():
        here = layer_of(imp.module)
        assert here is not None
        for target in _ours(imp):
            there = layer_of(target)
            assert there is not None
            if RANK[there] < RANK[here]:
                upward.append(f"{_where(imp)} ({here} → {there})")
    assert upward == []


def test_jobs_and_handlers_do_not_import_each_other() -> None:
    crossing = [
        _where(imp)
        for imp in _imports()
        if (_is(imp.module, "bot.jobs") and _is(imp.target, "handlers"))
        or (_is(imp.module, "handlers") and _is(imp.target, "bot.jobs"))
    ]
    assert crossing == []


def test_nothing_below_the_context_imports_telegram() -> None:
    found = [
        _where(imp)
        for imp in _imports()
        if layer_of(imp.module) in NO_TELEGRAM and _is(imp.target, "telegram")
    ]
    assert found == []


def test_the_wiring_is_imported_by_the_wiring_only_and_never_inside_a_function() -> None:
    found = [
        _where(imp) + (" inside a function" if imp.in_function else "")
        for imp in _imports()
        if _is(imp.target, "bot.app", "bot.cli")
        and (layer_of(imp.module) != "wiring" or (imp.in_function and not _is(imp.module, "bot.cli")))
    ]
    assert found == []


def test_only_the_database_class_runs_sqlite_straight_on_the_driver() -> None:
    found = [
        _where(imp)
        for imp in _imports()
        if any(_is(t, "storage.direct") for t in _ours(imp)) and imp.module != "storage.db"
    ]
    assert found == []


# PTB has no public way to serve a webhook to an updater of one's own (the inbox's): its
# WebhookServer is reused as it is, not overridden. Pinned: a new private import fails here.
PRIVATE_STILL = {("bot.updates", "telegram.ext._utils.webhookhandler")}


def test_no_library_private_module_is_imported() -> None:
    """A private module of a library (telegram.ext._utils, aiosqlite.core...) may change in
    any release; and nothing overrides a library's private members."""
    found = {
        (imp.module, imp.target)
        for imp in _imports()
        if layer_of(imp.target) is None and any(part.startswith("_") for part in imp.target.split(".")[1:])
    }
    assert found - PRIVATE_STILL == set()


def _orm_classes() -> set[str]:
    tree = _trees()["storage.models"]
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


def test_services_return_plain_data_not_orm_rows() -> None:
    models = _orm_classes()
    found = []
    for module, tree in _trees().items():
        if layer_of(module) != "services":
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name.startswith("_"):
                continue
            if node.returns is None:
                continue
            named = {n.id for n in ast.walk(node.returns) if isinstance(n, ast.Name)}
            named |= {
                word
                for n in ast.walk(node.returns)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
                for word in re.findall(r"\w+", n.value)
            }
            if named & models:
                found.append(f"{module}.{node.name} -> {ast.unparse(node.returns)}")
    assert found == []


def _escapes(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "html"
            and "escape" in {a.name for a in node.names}
        ):
            return True
        attribute = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        if attribute and (node.value.id, node.attr) == ("html", "escape"):  # type: ignore[attr-defined]
            return True
    return False


def test_html_escaping_belongs_to_the_telegram_surface() -> None:
    """Services word queued messages through the surface's Wording (handlers/wording.py)."""
    escaping = {
        m for m, tree in _trees().items() if _escapes(tree) and layer_of(m) not in ("surface", "wiring")
    }
    assert escaping == set(), "escape what people typed where the message is worded (handlers/wording.py)"


CALLBACK_DATA = re.compile(r"^\^?(rp|ng|ad|ex|lg|tk):")


def _callback_strings(tree: ast.Module) -> list[int]:
    """Lines of string literals (or f-strings) that spell callback data, docstrings aside."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:
            node_text = node.values[0]
            if isinstance(node_text, ast.Constant) and CALLBACK_DATA.match(str(node_text.value)):
                lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            lines.extend([node.lineno] if CALLBACK_DATA.match(node.value) else [])
    return lines


def test_one_module_spells_every_callback_data_string() -> None:
    found = {
        f"{module}:{line}"
        for module, tree in _trees().items()
        if module != "handlers.callbacks"
        for line in _callback_strings(tree)
    }
    assert found == set(), "build and parse callback data in handlers/callbacks.py"


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("bot.app", "wiring"),
        ("handlers.report", "surface"),
        ("bot.jobs.dispatch", "surface"),
        ("bot.context", "context"),
        ("bot.services.container", "services"),
        ("storage.repositories.drafts", "repositories"),
        ("storage.db", "storage"),
        ("bot.config", "foundation"),
    ],
)
def test_the_map(module: str, layer: str) -> None:
    assert layer_of(module) == layer
