"""YAML that remembers where things are: the line of every mapping, key and list entry.

The catalog and the policy files report each problem with its line; their readers in the domain
look for `line`, `key_lines` and `item_lines` on what this loader builds.
"""

from __future__ import annotations

from typing import Any

import yaml


class LocatedDict(dict[Any, Any]):
    line: int
    key_lines: dict[str, int]


class LocatedList(list[Any]):
    line: int
    item_lines: list[int]


class LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        value = LocatedDict(super().construct_mapping(node, deep=True))
        value.line = node.start_mark.line + 1
        value.key_lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
        return value

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        value = LocatedList(super().construct_sequence(node, deep=True))
        value.line = node.start_mark.line + 1
        value.item_lines = [child.start_mark.line + 1 for child in node.value]
        return value


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, LineLoader.construct_mapping)
LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, LineLoader.construct_sequence)
