"""Check a document against the cassette JSON Schema with no third-party package.

Supports the JSON Schema (draft 2020-12) keywords the shipped ``schema.json`` uses and the usual
companions: ``type``, ``enum``, ``const``, ``required``, ``properties``, ``additionalProperties``,
``items``, ``prefixItems``, ``minItems``, ``maxItems``, ``minimum``, ``maximum``,
``exclusiveMinimum``, ``exclusiveMaximum``, ``minLength``, ``maxLength``, ``pattern``, local
``$ref``, ``allOf``, ``anyOf``, ``oneOf`` and ``not``. Annotations (``title``, ``$id``…) are
ignored. A schema using any other keyword is refused (:class:`ValueError`), so a check is never
silently weaker than the schema says.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Dict, List, Pattern

SUPPORTED = frozenset(
    {
        "type",
        "enum",
        "const",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "$ref",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
    }
)
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples", "format"}
)

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


@lru_cache(maxsize=64)
def _regex(pattern: str) -> Pattern[str]:
    return re.compile(pattern)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _where(path: str) -> str:
    return path or "(top level)"


class SchemaChecker:
    """Validate documents against one schema; :meth:`errors` lists every violation found."""

    def __init__(self, schema: Dict[str, Any]) -> None:
        self.root = schema
        unknown = sorted(self._keywords(schema) - SUPPORTED - ANNOTATIONS)
        if unknown:
            raise ValueError(f"the schema uses JSON Schema keywords this checker does not support: {unknown}")

    def _keywords(self, schema: Any) -> set:
        found: set = set()
        if isinstance(schema, dict):
            for key, value in schema.items():
                found.add(key)
                if key in ("properties", "$defs"):
                    for sub in value.values():
                        found |= self._keywords(sub)
                elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
                    found |= self._keywords(value)
                elif key in ("prefixItems", "allOf", "anyOf", "oneOf"):
                    for sub in value:
                        found |= self._keywords(sub)
        return found

    def errors(self, document: Any, limit: int = 20) -> List[str]:
        out: List[str] = []
        self._check(self.root, document, "", out, limit)
        return out[:limit]

    def _resolve(self, ref: str) -> Dict[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref are supported, not {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _check(self, schema: Any, value: Any, path: str, out: List[str], limit: int) -> None:
        if len(out) >= limit or schema is True:
            return
        if schema is False:
            out.append(f"{_where(path)}: not allowed here")
            return
        if "$ref" in schema:
            self._check(self._resolve(schema["$ref"]), value, path, out, limit)
        kinds = schema.get("type")
        if kinds is not None:
            names = [kinds] if isinstance(kinds, str) else list(kinds)
            if not any(_TYPES[name](value) for name in names):
                out.append(f"{_where(path)}: {_brief(value)} is not of type {' or '.join(names)}")
                return
        if "const" in schema and not _same(value, schema["const"]):
            out.append(f"{_where(path)}: {_brief(value)} is not {_brief(schema['const'])}")
        if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
            out.append(f"{_where(path)}: {_brief(value)} is not one of {_brief(schema['enum'])}")
        if isinstance(value, dict):
            self._object(schema, value, path, out, limit)
        elif isinstance(value, list):
            self._array(schema, value, path, out, limit)
        elif isinstance(value, str):
            self._string(schema, value, path, out)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self._number(schema, value, path, out)
        for sub in schema.get("allOf", ()):
            self._check(sub, value, path, out, limit)
        if "anyOf" in schema and not any(not self._sub_errors(s, value, path) for s in schema["anyOf"]):
            out.append(f"{_where(path)}: matches none of the allowed forms (anyOf)")
        if "oneOf" in schema:
            passing = sum(1 for s in schema["oneOf"] if not self._sub_errors(s, value, path))
            if passing != 1:
                out.append(f"{_where(path)}: matches {passing} of the oneOf forms, not exactly 1")
        if "not" in schema and not self._sub_errors(schema["not"], value, path):
            out.append(f"{_where(path)}: matches a form that is not allowed (not)")

    def _sub_errors(self, schema: Any, value: Any, path: str) -> List[str]:
        found: List[str] = []
        self._check(schema, value, path, found, 1)
        return found

    def _object(
        self, schema: Dict[str, Any], value: Dict[str, Any], path: str, out: List[str], limit: int
    ) -> None:
        for name in schema.get("required", ()):
            if name not in value:
                out.append(f"{_where(path)}: required field {name!r} is missing")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key in properties:
                self._check(properties[key], item, sub, out, limit)
            elif extra is False:
                out.append(f"{_where(path)}: field {key!r} is not allowed")
            elif isinstance(extra, dict):
                self._check(extra, item, sub, out, limit)

    def _array(self, schema: Dict[str, Any], value: List[Any], path: str, out: List[str], limit: int) -> None:
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(f"{_where(path)}: {len(value)} items, fewer than {schema['minItems']}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{_where(path)}: {len(value)} items, more than {schema['maxItems']}")
        prefix = schema.get("prefixItems", [])
        for index, (sub_schema, item) in enumerate(zip(prefix, value)):
            self._check(sub_schema, item, f"{path}[{index}]", out, limit)
        items = schema.get("items")
        if items is not None:
            for index in range(len(prefix), len(value)):
                self._check(items, value[index], f"{path}[{index}]", out, limit)

    def _string(self, schema: Dict[str, Any], value: str, path: str, out: List[str]) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(f"{_where(path)}: {_brief(value)} is shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{_where(path)}: {_brief(value)} is longer than {schema['maxLength']}")
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            out.append(f"{_where(path)}: {_brief(value)} does not match {schema['pattern']}")

    def _number(self, schema: Dict[str, Any], value: float, path: str, out: List[str]) -> None:
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{_where(path)}: {value} is less than the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{_where(path)}: {value} is more than the maximum {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            out.append(f"{_where(path)}: {value} is not more than {schema['exclusiveMinimum']}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            out.append(f"{_where(path)}: {value} is not less than {schema['exclusiveMaximum']}")


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 50 else text[:49] + "…"


def schema_errors(document: Any, limit: int = 20) -> List[str]:
    """Violations of the shipped cassette schema (``timetracer/cassette/schema.json``) by ``document``."""
    from timetracer.cassette.format import load_schema

    return SchemaChecker(load_schema()).errors(document, limit)
