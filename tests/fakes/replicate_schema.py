"""The models' input schemas as snapshotted in tests/fixtures/replicate_schemas/, and a checker.

The checker refuses what Replicate refuses before a prediction exists (an
unknown field, a wrong type, a value outside the enum or the range, a
missing required field) and words each problem as the provider's 422 body
does: one ``- input.<field>: <why>`` line per problem in ``detail``, and an
``invalid_fields`` list.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).parents[1] / "fixtures" / "replicate_schemas"
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@cache
def schema(model: str) -> dict[str, Any] | None:
    path = SCHEMAS / f"{model.replace('/', '__')}.json"
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def models() -> list[str]:
    return sorted(json.loads(p.read_text())["model"] for p in SCHEMAS.glob("*.json"))


def problems(model: str, given: dict[str, Any]) -> list[dict[str, str]]:
    """What the provider would refuse in ``given``; empty when it is valid."""
    found = schema(model)
    if found is None:
        return []
    spec = found["input"]
    properties: dict[str, Any] = spec["properties"]
    out: list[dict[str, str]] = []
    for name in spec.get("required", []):
        if name not in given:
            out.append(_problem("required", "input", f"{name} is required"))
    for name, value in given.items():
        field = properties.get(name)
        if field is None:
            out.append(
                _problem(
                    "additional_property_not_allowed",
                    "input",
                    f"Additional property {name} is not allowed",
                )
            )
            continue
        out += _check(f"input.{name}", field, value)
    return out


def _check(where: str, field: dict[str, Any], value: Any) -> list[dict[str, str]]:
    kind = field.get("type")
    allowed = _TYPES.get(kind or "", (object,))
    # JSON has no separate booleans among integers: True is not a seed.
    if not isinstance(value, allowed) or (
        kind in ("integer", "number") and isinstance(value, bool)
    ):
        return [
            _problem(
                "invalid_type", where, f"Invalid type. Expected: {kind}, given: {_json_type(value)}"
            )
        ]
    if "enum" in field and value not in field["enum"]:
        choices = ", ".join(json.dumps(v) for v in field["enum"])
        name = where.rsplit(".", 1)[-1]
        return [_problem("enum", where, f"{name} must be one of the following: {choices}")]
    if "minimum" in field and value < field["minimum"]:
        return [
            _problem("number_gte", where, f"Must be greater than or equal to {field['minimum']}")
        ]
    if "maximum" in field and value > field["maximum"]:
        return [_problem("number_lte", where, f"Must be less than or equal to {field['maximum']}")]
    if "maxLength" in field and len(value) > field["maxLength"]:
        return [
            _problem(
                "string_lte",
                where,
                f"String length must be less than or equal to {field['maxLength']}",
            )
        ]
    if kind == "array":
        if "maxItems" in field and len(value) > field["maxItems"]:
            return [
                _problem(
                    "array_max_items", where, f"Array must have at most {field['maxItems']} items"
                )
            ]
        items = field.get("items", {})
        return [p for i, item in enumerate(value) for p in _check(f"{where}.{i}", items, item)]
    return []


def _problem(kind: str, where: str, description: str) -> dict[str, str]:
    return {"type": kind, "field": where, "description": description}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"
