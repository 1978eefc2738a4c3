"""Load a catalog YAML file, keeping the line of every key and list entry for error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from provtrack.domain.catalog import Catalog, InvalidCatalog, Problem, read_catalog

DEMO_CATALOG = Path(__file__).resolve().parent.parent / "catalog" / "demo.yaml"


class LocatedDict(dict[Any, Any]):
    line: int
    key_lines: dict[str, int]


class LocatedList(list[Any]):
    line: int
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
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


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _LineLoader.construct_sequence)


def parse_catalog_text(text: str, *, source: str) -> Catalog:
    try:
        document = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise InvalidCatalog(source, [Problem(line, f"not valid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidCatalog(source, [Problem(None, f"not valid YAML: {exc}")]) from None
    return read_catalog(document, source=source)


def load_catalog(path: str | Path, *, overrides: dict[str, str] | None = None) -> Catalog:
    """Read and validate a catalog file; `demo` names the catalog shipped with provtrack.

    `overrides` replaces system URLs by name, and the TMF638 URL under `@inventory` (the demo points
    them at `provtrack simulate`).
    """
    file = DEMO_CATALOG if str(path) == "demo" else Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidCatalog(str(file), [Problem(None, f"cannot read the catalog: {exc.strerror}")]) from None
    catalog = parse_catalog_text(text, source=str(file))
    if overrides:
        from dataclasses import replace

        systems = {
            name: replace(system, url=overrides.get(name, system.url).rstrip("/"))
            for name, system in catalog.systems.items()
        }
        inventory = overrides.get("@inventory", catalog.inventory_url)
        catalog = replace(
            catalog, systems=systems, inventory_url=inventory.rstrip("/") if inventory else None
        )
    return catalog
