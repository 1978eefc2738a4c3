"""Load a catalog YAML file, keeping the line of every key and list entry for error messages."""

from __future__ import annotations

from pathlib import Path

import yaml

from provtrack.adapters.located_yaml import LineLoader
from provtrack.domain.catalog import Catalog, InvalidCatalog, Problem, read_catalog

DEMO_CATALOG = Path(__file__).resolve().parent.parent / "catalog" / "demo.yaml"


def parse_catalog_text(text: str, *, source: str) -> Catalog:
    try:
        document = yaml.load(text, Loader=LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise InvalidCatalog(source, [Problem(line, f"not valid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidCatalog(source, [Problem(None, f"not valid YAML: {exc}")]) from None
    return read_catalog(document, source=source)


def load_catalog(
    path: str | Path,
    *,
    overrides: dict[str, str] | None = None,
    partner_overrides: dict[str, str] | None = None,
) -> Catalog:
    """Read and validate a catalog file; `demo` names the catalog shipped with provtrack.

    `overrides` replaces system URLs by name, and the TMF638 URL under `@inventory`;
    `partner_overrides` replaces partner URLs by name (the demo points them at `provtrack simulate`).
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
    if partner_overrides:
        from dataclasses import replace

        partners = {
            name: replace(partner, url=partner_overrides.get(name, partner.url).rstrip("/"))
            for name, partner in catalog.partners.items()
        }
        catalog = replace(catalog, partners=partners)
    return catalog
