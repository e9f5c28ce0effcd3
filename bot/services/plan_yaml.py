"""Reading a plan file's YAML: safe, bounded, with lines (bot/services/plans.py reads the rest).

Apart from plans.py so that PyYAML is imported when a YAML file is read, not by every process
that knows a task code's shape (the running bot parses files in a worker process).
"""

from __future__ import annotations

from typing import Any

import yaml

from bot.services.plans import MAX_YAML_ALIASES, MAX_YAML_NODES, PlanFileError


class _PlanLoader(yaml.SafeLoader):
    """Safe YAML that keeps each mapping's line, leaves 1.10 as the string '1.10', leaves dates
    as text so that 2024-02-30 is reported against its line instead of crashing, and counts
    aliases: a few nested anchors would otherwise expand to gigabytes."""

    aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise PlanFileError("plan.yaml_aliases", ("line", self.peek_event().start_mark.line + 1))
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


_AS_TEXT = {"tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}
_PlanLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _AS_TEXT]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_PlanLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes the document holds once every alias is expanded (memoised per node, so
    this costs the size of the file, not of its expansion)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a node reached again while being counted: a cycle, counted once
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = min(total, MAX_YAML_NODES + 1)
    return sizes[id(node)]


def _load_yaml(text: str) -> Any:
    loader = _PlanLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_NODES:
            raise PlanFileError("plan.yaml_aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def yaml_document(data: bytes) -> Any:
    try:
        return _load_yaml(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise PlanFileError("plan.not_utf8") from None
    except RecursionError:
        raise PlanFileError("plan.too_deep") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        raise PlanFileError("plan.bad_yaml", ("line", line), reason=str(exc).splitlines()[0]) from None
