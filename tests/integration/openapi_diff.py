"""Where provtrack's OpenAPI document differs from the TMF641 v4.1 specification (Swagger 2.0), for
every path and component the two share: one line per difference, keyed so that docs/tmf641.md can
list each with the reason it is deliberate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
SPEC = REPOSITORY.parent / "shared" / "specs" / "TMF641-ServiceOrdering-v4.1.0.swagger.json"
BASE = "/tmf-api/serviceOrdering/v4"
# The spec's success and error statuses that every operation lists whatever it can answer.
CLIENT_SIDE = "/listener/"  # the spec's example listeners are the client's, not the server's


def differences(spec: dict[str, Any], ours: dict[str, Any]) -> dict[str, str]:
    """{key: detail}: every way `ours` differs from `spec` on what they share."""
    found: dict[str, str] = {}
    found.update(_path_differences(spec, ours))
    found.update(_component_differences(spec, ours))
    return found


def _path_differences(spec: dict[str, Any], ours: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for path, operations in spec["paths"].items():
        if path.startswith(CLIENT_SIDE):
            continue
        served = ours["paths"].get(BASE + path, {})
        for method in sorted(set(served) - set(operations)):
            found[f"{method.upper()} {path}"] = "served, not in the specification"
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            mine = served.get(method)
            if mine is None:
                found[name] = "not served"
                continue
            found.update(_operation_differences(name, operation, mine, spec, ours))
    return found


def _operation_differences(
    name: str, operation: dict[str, Any], mine: dict[str, Any], spec: dict[str, Any], ours: dict[str, Any]
) -> dict[str, str]:
    found: dict[str, str] = {}
    their_parameters = {(p["name"], p["in"]): p for p in operation.get("parameters", []) if p["in"] != "body"}
    my_parameters = {(p["name"], p["in"]): p for p in mine.get("parameters", [])}
    for key, parameter in their_parameters.items():
        other = my_parameters.get(key)
        if other is None:
            found[f"{name} parameter {key[0]}"] = "not declared"
        elif parameter.get("type") != other["schema"].get("type"):
            found[f"{name} parameter {key[0]}"] = (
                f"{other['schema'].get('type')}, not {parameter.get('type')}"
            )
    extra = sorted(
        n for (n, where) in my_parameters if (n, where) not in their_parameters and where != "path"
    )
    if extra:
        found[f"{name} also takes parameters"] = ", ".join(extra)
    their_body = next((p["schema"] for p in operation.get("parameters", []) if p["in"] == "body"), None)
    content = (mine.get("requestBody") or {}).get("content", {})
    my_body = next((v["schema"] for k, v in content.items() if k.endswith("json")), None)
    if _shape(their_body, spec["definitions"], swagger=True) != _shape(
        my_body, _components(ours), swagger=False
    ):
        found[f"{name} body"] = f"{_shape(my_body, _components(ours), swagger=False)}"
    theirs, mine_statuses = set(operation["responses"]), set(mine["responses"])
    if theirs - mine_statuses:
        found[f"{name} never answers {', '.join(sorted(theirs - mine_statuses))}"] = "listed by the spec"
    if mine_statuses - theirs:
        found[f"{name} also answers {', '.join(sorted(mine_statuses - theirs))}"] = "answered by provtrack"
    for status in sorted(theirs & mine_statuses):
        their_schema = operation["responses"][status].get("schema")
        my_schema = mine["responses"][status].get("content", {}).get("application/json", {}).get("schema")
        a = _shape(their_schema, spec["definitions"], swagger=True)
        b = _shape(my_schema, _components(ours), swagger=False)
        if a != b:
            found[f"{name} {status} body"] = f"{b}, not {a}"
    return found


def _components(ours: dict[str, Any]) -> dict[str, Any]:
    components: dict[str, Any] = ours["components"]["schemas"]
    return components


def _shape(schema: dict[str, Any] | None, definitions: dict[str, Any], *, swagger: bool) -> str:
    """What a schema is, as far as the two documents can be compared: a named component, an enum,
    an array of something, or a JSON type (date-times told apart)."""
    if schema is None:
        return "nothing"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = definitions.get(name, {})
        if "enum" in target:
            return f"enum {'|'.join(sorted(target['enum']))}"
        return name if target.get("type") or target.get("properties") else "any"
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_shape(schema.get('items'), definitions, swagger=swagger)}"
    if "enum" in schema:
        return f"enum {'|'.join(sorted(schema['enum']))}"
    if kind == "string" and schema.get("format") == "date-time":
        return "date-time"
    return str(kind or "any")


def _component_differences(spec: dict[str, Any], ours: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    definitions = spec["definitions"]
    components = _components(ours)
    for name in sorted(set(definitions) & set(components)):
        theirs, mine = definitions[name], components[name]
        if "enum" in theirs or "enum" in mine:
            if set(theirs.get("enum", ())) != set(mine.get("enum", ())):
                found[f"{name} values"] = (
                    f"{sorted(mine.get('enum', ()))}, not {sorted(theirs.get('enum', ()))}"
                )
            continue
        their_properties, my_properties = theirs.get("properties", {}), mine.get("properties", {})
        missing = sorted(set(their_properties) - set(my_properties))
        if missing:
            found[f"{name} lacks {', '.join(missing)}"] = "not modelled by provtrack"
        added = sorted(set(my_properties) - set(their_properties))
        if added:
            found[f"{name} adds {', '.join(added)}"] = "provtrack's attributes"
        for prop in sorted(set(their_properties) & set(my_properties)):
            a = _loose(_shape(their_properties[prop], definitions, swagger=True), definitions)
            b = _loose(_shape(my_properties[prop], components, swagger=False), components)
            if a != b:
                found[f"{name}.{prop}"] = f"{b}, not {a}"
        their_required, my_required = set(theirs.get("required", ())), set(mine.get("required", ()))
        if their_required - my_required:
            found[f"{name} does not require {', '.join(sorted(their_required - my_required))}"] = "optional"
        if my_required - their_required:
            found[f"{name} requires {', '.join(sorted(my_required - their_required))}"] = "stricter"
    return found


def _loose(shape: str, definitions: dict[str, Any]) -> str:
    """A component is compared by name elsewhere; inside a property only its being an object counts."""
    prefix = ""
    while shape.startswith("array of "):
        prefix += "array of "
        shape = shape[len("array of ") :]
    if shape in definitions or shape == "any":
        shape = "object" if shape != "any" else "any"
    return prefix + shape
