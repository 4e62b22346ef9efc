"""A small JSON Schema (draft 2020-12) validator for the keywords the cassette schema uses.

``compile_schema(schema)`` turns a schema into one checking function, once; calling it on a
document raises :class:`SchemaViolation` with the location (a list of keys and indexes) of the
first problem and what was expected. Semantics follow the specification (an ``integer`` is any
number with no fractional part, ``true`` is not a number, ``pattern`` searches), so a document
passes exactly when a full validator such as ``jsonschema`` accepts it; the test suite checks
that on mutated cassettes. A keyword it does not know makes compiling fail, so the shipped schema
can never silently outgrow it.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Dict, List, Optional

Checker = Callable[[Any], None]

# Keywords that only annotate: they never make a document invalid.
# ("format" only annotates in draft 2020-12 unless a validator opts in; jsonschema does not.)
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$defs",
        "$comment",
        "$anchor",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",
        "contentEncoding",
        "contentMediaType",
    }
)
# Compiled together with their siblings (see _object_members, _array_items, _conditional).
_GROUPED = frozenset(
    {"properties", "patternProperties", "additionalProperties", "items", "prefixItems", "if", "then", "else"}
)

_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    type(None): "null",
    int: "integer",
    float: "number",
}


class SchemaViolation(ValueError):
    """A document does not match the schema: ``location`` (keys and indexes) and ``problem``."""

    def __init__(self, location: List[Any], problem: str) -> None:
        super().__init__(f"{location}: {problem}")
        self.location = location
        self.problem = problem


def _violation(problem: str) -> SchemaViolation:
    return SchemaViolation([], problem)


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if name == "number":
        return True
    if name == "integer":
        return isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())
    raise ValueError(f"unknown JSON Schema type {name!r}")


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1; objects and arrays compared member by member."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _at(key: Any, check: Checker, value: Any) -> None:
    try:
        check(value)
    except SchemaViolation as exc:
        exc.location.insert(0, key)
        raise


def compile_schema(schema: Dict[str, Any]) -> Checker:
    """Compile ``schema`` (with its local ``$ref``s into ``$defs``) into one checking function."""
    compiled: Dict[str, Checker] = {}

    def ref(target: str) -> Checker:
        if not target.startswith("#/"):
            raise ValueError(f"only local $ref are supported, not {target!r}")

        def check(value: Any) -> None:
            compiled[target](value)

        if target not in compiled:
            node: Any = schema
            for part in target[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            compiled[target] = check  # a placeholder while compiling a recursive definition
            compiled[target] = build(node)
        return check

    def build(node: Any) -> Checker:
        if node is True or node == {}:
            return lambda value: None
        if node is False:

            def never(value: Any) -> None:
                raise _violation("is not allowed here")

            return never
        checks: List[Checker] = []
        for keyword, argument in node.items():
            if keyword in _ANNOTATIONS:
                continue
            if keyword in _GROUPED:
                continue
            maker = _KEYWORDS.get(keyword)
            if maker is None:
                raise ValueError(f"JSON Schema keyword {keyword!r} is not supported by this checker")
            checks.append(maker(argument, build, ref))
        if any(k in node for k in ("properties", "patternProperties", "additionalProperties")):
            checks.append(_object_members(node, build))
        if any(k in node for k in ("items", "prefixItems")):
            checks.append(_array_items(node, build))
        if "if" in node:
            checks.append(_conditional(node, build))
        if not checks:
            return lambda value: None
        if len(checks) == 1:
            return checks[0]

        def all_of(value: Any) -> None:
            for check in checks:
                check(value)

        return all_of

    return build(schema)


Builder = Callable[[Any], Checker]
Ref = Callable[[str], Checker]


def _type(argument: Any, build: Builder, ref: Ref) -> Checker:
    names = [argument] if isinstance(argument, str) else list(argument)
    for name in names:
        _is_type(None, name)  # unknown names fail at compile time
    wanted = " or ".join(names)

    def check(value: Any) -> None:
        if not any(_is_type(value, name) for name in names):
            raise _violation(f"must be {wanted}, not {_type_name(value)} {_shown(value)}")

    return check


def _required(argument: Any, build: Builder, ref: Ref) -> Checker:
    names = list(argument)

    def check(value: Any) -> None:
        if isinstance(value, dict):
            for name in names:
                if name not in value:
                    raise _violation(f"has no {name!r}")

    return check


def _object_members(node: Dict[str, Any], build: Builder) -> Checker:
    properties = {name: build(sub) for name, sub in (node.get("properties") or {}).items()}
    patterns = [(re.compile(p), build(sub)) for p, sub in (node.get("patternProperties") or {}).items()]
    extra_schema = node.get("additionalProperties", True)
    extra: Optional[Checker] = None if extra_schema is True else build(extra_schema)

    def check(value: Any) -> None:
        if not isinstance(value, dict):
            return
        for key, member in value.items():
            sub = properties.get(key)
            if sub is not None:
                _at(key, sub, member)
            matched = False
            for regex, pattern_check in patterns:
                if regex.search(key) is not None:
                    matched = True
                    _at(key, pattern_check, member)
            if sub is None and not matched and extra is not None:
                _at(key, extra, member)

    return check


def _conditional(node: Dict[str, Any], build: Builder) -> Checker:
    condition = build(node["if"])
    then = build(node.get("then", True))
    otherwise = build(node.get("else", True))

    def check(value: Any) -> None:
        try:
            condition(value)
        except SchemaViolation:
            otherwise(value)
            return
        then(value)

    return check


def _array_items(node: Dict[str, Any], build: Builder) -> Checker:
    prefix = [build(sub) for sub in node.get("prefixItems") or []]
    rest_schema = node.get("items", True)
    rest: Optional[Checker] = None if rest_schema is True else build(rest_schema)

    def check(value: Any) -> None:
        if not isinstance(value, list):
            return
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else rest
            if sub is not None:
                _at(index, sub, item)

    return check


def _bound(kind: str) -> Callable[[Any, Builder, Ref], Checker]:
    def make(argument: Any, build: Builder, ref: Ref) -> Checker:
        def check(value: Any) -> None:
            if isinstance(value, bool):
                return
            if kind in ("minItems", "maxItems"):
                if not isinstance(value, list):
                    return
                size = len(value)
                if (size < argument) if kind == "minItems" else (size > argument):
                    raise _violation(
                        f"must have {'at least' if kind == 'minItems' else 'at most'} {argument} items"
                    )
                return
            if kind in ("minLength", "maxLength"):
                if not isinstance(value, str):
                    return
                size = len(value)
                if (size < argument) if kind == "minLength" else (size > argument):
                    raise _violation(
                        f"must be {'at least' if kind == 'minLength' else 'at most'} {argument} characters"
                    )
                return
            if not isinstance(value, (int, float)):
                return
            bad = {
                "minimum": value < argument,
                "maximum": value > argument,
                "exclusiveMinimum": value <= argument,
                "exclusiveMaximum": value >= argument,
            }[kind]
            if bad:
                raise _violation(f"{_shown(value)} violates {kind} {argument}")

        return check

    return make


def _enum(argument: Any, build: Builder, ref: Ref) -> Checker:
    options = list(argument)

    def check(value: Any) -> None:
        if not any(_json_equal(value, option) for option in options):
            raise _violation(f"must be one of {_shown(options)}, not {_shown(value)}")

    return check


def _const(argument: Any, build: Builder, ref: Ref) -> Checker:
    def check(value: Any) -> None:
        if not _json_equal(value, argument):
            raise _violation(f"must be {argument!r}, not {_shown(value)}")

    return check


def _pattern(argument: Any, build: Builder, ref: Ref) -> Checker:
    regex = re.compile(argument)

    def check(value: Any) -> None:
        if isinstance(value, str) and regex.search(value) is None:
            raise _violation(f"{_shown(value)} does not match {argument!r}")

    return check


def _ref(argument: Any, build: Builder, ref: Ref) -> Checker:
    return ref(argument)


def _any_of(argument: Any, build: Builder, ref: Ref) -> Checker:
    options = [build(sub) for sub in argument]

    def check(value: Any) -> None:
        problems = []
        for option in options:
            try:
                option(value)
                return
            except SchemaViolation as exc:
                problems.append(exc.problem)
        raise _violation("matches none of the allowed forms (" + "; ".join(problems) + ")")

    return check


def _one_of(argument: Any, build: Builder, ref: Ref) -> Checker:
    options = [build(sub) for sub in argument]

    def check(value: Any) -> None:
        matched = 0
        for option in options:
            try:
                option(value)
                matched += 1
            except SchemaViolation:
                pass
        if matched != 1:
            raise _violation(f"must match exactly one allowed form, matches {matched}")

    return check


def _all_of(argument: Any, build: Builder, ref: Ref) -> Checker:
    parts = [build(sub) for sub in argument]

    def check(value: Any) -> None:
        for part in parts:
            part(value)

    return check


def _not(argument: Any, build: Builder, ref: Ref) -> Checker:
    inner = build(argument)

    def check(value: Any) -> None:
        try:
            inner(value)
        except SchemaViolation:
            return
        raise _violation("has a form that is not allowed")

    return check


def _property_names(argument: Any, build: Builder, ref: Ref) -> Checker:
    inner = build(argument)

    def check(value: Any) -> None:
        if isinstance(value, dict):
            for key in value:
                _at(key, inner, key)

    return check


def _property_count(kind: str) -> Callable[[Any, Builder, Ref], Checker]:
    def make(argument: Any, build: Builder, ref: Ref) -> Checker:
        def check(value: Any) -> None:
            if isinstance(value, dict):
                size = len(value)
                if (size < argument) if kind == "minProperties" else (size > argument):
                    raise _violation(
                        f"must have {'at least' if kind == 'minProperties' else 'at most'} {argument} members"
                    )

        return check

    return make


def _unique_items(argument: Any, build: Builder, ref: Ref) -> Checker:
    def check(value: Any) -> None:
        if argument and isinstance(value, list):
            for index, item in enumerate(value):
                if any(_json_equal(item, other) for other in value[:index]):
                    raise _violation(f"has a repeated item {_shown(item)}")

    return check


def _dependent_required(argument: Any, build: Builder, ref: Ref) -> Checker:
    def check(value: Any) -> None:
        if isinstance(value, dict):
            for name, needed in argument.items():
                if name in value:
                    for other in needed:
                        if other not in value:
                            raise _violation(f"has {name!r} but no {other!r}")

    return check


def _multiple_of(argument: Any, build: Builder, ref: Ref) -> Checker:
    def check(value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            quotient = value / argument
            if not (math.isfinite(quotient) and float(quotient).is_integer()):
                raise _violation(f"{_shown(value)} is not a multiple of {argument}")

    return check


_KEYWORDS: Dict[str, Callable[[Any, Builder, Ref], Checker]] = {
    "type": _type,
    "required": _required,
    "enum": _enum,
    "const": _const,
    "pattern": _pattern,
    "$ref": _ref,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "allOf": _all_of,
    "not": _not,
    "propertyNames": _property_names,
    "minProperties": _property_count("minProperties"),
    "maxProperties": _property_count("maxProperties"),
    "uniqueItems": _unique_items,
    "dependentRequired": _dependent_required,
    "multipleOf": _multiple_of,
    **{
        kind: _bound(kind)
        for kind in (
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "minItems",
            "maxItems",
            "minLength",
            "maxLength",
        )
    },
}
