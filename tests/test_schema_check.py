"""The built-in schema checker run on every load agrees with a full JSON Schema validator.

``jsonschema`` (a test dependency only) is the reference: on the spec's example cassette and on a
recorded one, mutated by Hypothesis (derandomized, :data:`EXAMPLES` cases), a document passes our
checker exactly when ``jsonschema`` accepts it; and every rejection made while loading names the
file, the event ``eid`` and the field.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timetracer.cassette import load_schema, read_cassette
from timetracer.cassette._schema_check import SchemaViolation, compile_schema
from timetracer.cassette.format import schema_checker
from timetracer.errors import CassetteError

jsonschema = pytest.importorskip("jsonschema")

EXAMPLES = 1500
DATA = Path(__file__).parent / "data"


def spec_example() -> Dict[str, Any]:
    return json.loads((DATA / "spec_example.json").read_text(encoding="utf-8"))


def _paths(node: Any, prefix: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


VALUES: List[Any] = [
    None, "x", "", "GET", "1.0", "2026-01-01T00:00:00Z", "2026-01-01", 0, -1, 1, 1.0, 1.5, 100, 1000,
    2**70, float("nan"), float("inf"), True, False, [], {}, ["a", "b"], [["a", "b"]], [["a"]], [1, 2],
    {"a": 1}, {"captured": True, "data": None}, {"type": "x", "message": "y"}, "db.query", "FIND_ONE",
    "find_one", "utf-8", "base64", "\ud800",
]


def _ours(document: Any) -> bool:
    try:
        schema_checker()(document)
    except SchemaViolation:
        return False
    return True


def test_the_shipped_schema_compiles_and_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema())
    compile_schema(load_schema())


def test_an_unknown_keyword_is_refused_when_compiling() -> None:
    with pytest.raises(ValueError, match="'dependentSchemas' is not supported"):
        compile_schema({"type": "object", "dependentSchemas": {}})


def test_the_spec_example_passes_both() -> None:
    assert _ours(spec_example())
    assert not list(jsonschema.Draft202012Validator(load_schema()).iter_errors(spec_example()))


def test_agrees_with_jsonschema_on_mutated_cassettes() -> None:
    reference = jsonschema.Draft202012Validator(load_schema())
    original = spec_example()
    paths = _paths(original)
    tally = {"valid": 0, "invalid": 0}

    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        st.lists(
            st.tuples(st.sampled_from(paths), st.sampled_from(["set", "delete", "add"]), st.sampled_from(VALUES)),
            min_size=1,
            max_size=3,
        )
    )
    def agree(changes: List[Tuple[Tuple[Any, ...], str, Any]]) -> None:
        document: Any = copy.deepcopy(original)
        for path, action, value in changes:
            document = _apply(document, path, action, value)
        expected = not list(reference.iter_errors(document))
        assert _ours(document) == expected, f"jsonschema says valid={expected} for {changes}"
        tally["valid" if expected else "invalid"] += 1

    agree()
    assert tally["valid"] > 50 and tally["invalid"] > 50, tally


def _apply(document: Any, path: Tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value if action == "set" else document
    parent = document
    for part in path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return document  # an earlier change removed this path
    last = path[-1]
    try:
        if action == "delete":
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[f"extra_{last}"] = value
        else:
            parent[last] = value
    except (KeyError, IndexError, TypeError):
        pass
    return document


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["events"][1]["result"]["body"].__setitem__("captured", "yes"), "'result.body.captured'"),
        (lambda d: d["events"][1]["signature"].__setitem__("method", "find"), "'signature.method'"),
        (lambda d: d["events"][1].__setitem__("duration_ms", -3), "'duration_ms'"),
        (lambda d: d["events"][1]["result"].__setitem__("error", ["boom"]), "'result.error'"),
        (lambda d: d["events"][1]["result"].pop("status"), "'result'"),
        (lambda d: d["response"]["headers"].__setitem__(0, ["only-name"]), "'response.headers[0]'"),
        (lambda d: d["session"].__setitem__("recorded_at", "yesterday"), "'session.recorded_at'"),
    ],
    ids=["captured-not-bool", "method-lowercase", "negative-duration", "error-list", "no-status", "header-pair", "date"],
)
def test_load_errors_name_the_file_the_event_and_the_field(tmp_path: Path, change: Any, field: str) -> None:
    document = spec_example()
    if len(document["events"]) < 2:
        document["events"].append(copy.deepcopy(document["events"][0]))
        document["events"][1]["eid"] = 2
    document.setdefault(
        "response",
        {"status": 200, "headers": [["a", "b"]], "body": {"encoding": "utf-8", "data": "", "size": 0, "truncated": False}},
    )
    change(document)
    target = tmp_path / "GET__users_123.json"
    target.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CassetteError) as info:
        read_cassette(target)
    message = str(info.value)
    assert str(target) in message and field in message, message
    if "event" in field or field.startswith("'result") or field.startswith("'signature") or "duration" in field:
        assert f"eid={document['events'][1]['eid']}" in message, message


# Keywords the cassette schema does not use today, ready for later schema versions.
_WIDE_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "properties": {"a": {"type": "integer", "multipleOf": 2}, "l": {"type": "array", "uniqueItems": True}},
    "patternProperties": {"^x_": {"type": "string"}},
    "additionalProperties": {"type": ["boolean", "array"]},
    "propertyNames": {"maxLength": 5},
    "minProperties": 1,
    "maxProperties": 3,
    "dependentRequired": {"a": ["b"]},
    "if": {"required": ["c"]},
    "then": {"properties": {"c": {"const": 1}}},
    "else": {"properties": {"b": {"type": "boolean"}}},
}


@pytest.mark.parametrize(
    "document",
    [
        {}, {"a": 2, "b": True}, {"a": 3, "b": True}, {"a": 2}, {"x_1": "s", "b": False}, {"x_1": 1},
        {"zzzzzz": True}, {"c": 1, "b": 5}, {"c": 2}, {"b": 1}, {"q": True}, {"q": "no"}, {"a": 2.0, "b": True},
        {"l": [1, 1.0]}, {"l": [1, True]}, {"l": [[1], [1]]}, {"b": True, "c": 1, "q": False, "r": True},
    ],
)
def test_other_keywords_agree_with_jsonschema(document: Dict[str, Any]) -> None:
    check = compile_schema(_WIDE_SCHEMA)
    try:
        check(document)
        ours = True
    except SchemaViolation:
        ours = False
    assert ours == jsonschema.Draft202012Validator(_WIDE_SCHEMA).is_valid(document)
