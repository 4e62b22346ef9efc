"""The cassette JSON Schema: it ships with the package, and both our cassettes and the spec's validate."""

from __future__ import annotations

import configparser
import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Union

import pytest

from timetracer.cassette import SCHEMA_VERSION, load_schema, read_cassette, write_cassette
from timetracer.cassette.format import SUPPORTED_VERSIONS
from timetracer.config import Compression, Mode, TraceConfig
from timetracer.hashing import body_hash
from timetracer.session import Session

jsonschema = pytest.importorskip("jsonschema")

DATA = Path(__file__).parent / "data"
REPO_ROOT = Path(__file__).resolve().parent.parent

RESPONSE = {
    "status": 200,
    "reason": "OK",
    "headers": [["Content-Type", "application/json"]],
    "body": {"encoding": "utf-8", "data": "{}", "size": 2, "truncated": False},
}


def validator() -> Any:
    return jsonschema.Draft202012Validator(load_schema())


def errors_of(document: Any) -> List[str]:
    return [error.message for error in validator().iter_errors(document)]


def spec_example() -> Dict[str, Any]:
    return json.loads((DATA / "spec_example.json").read_text(encoding="utf-8"))


def recorded_cassette(tmp_path: Path) -> Dict[str, Any]:
    config = TraceConfig(mode=Mode.RECORD, cassette_dir=tmp_path, service="myapp", env="test")
    session = Session(
        config,
        Mode.RECORD,
        cassette_path=tmp_path / "GET__users_123.json",
        request={"method": "GET", "path": "/users/123", "query": "", "headers": {"Accept": "*/*"}},
    )
    calls = [
        ("FIND_ONE", {"filter": {"_id": "123"}}, {"_id": "123", "name": "Alice", "age": 30}),
        ("COUNT_DOCUMENTS", {"filter": {"active": True}}, 7),
    ]
    for method, args, data in calls:
        signature = {
            "lib": "pymongo",
            "method": method,
            "url": "myapp.users",
            "query": {"filter_keys": sorted(args["filter"])},
            "body_hash": body_hash(args),
        }
        event = session.start_event(signature, args)
        session.end_event(event, {"status": 0, "body": {"captured": True, "data": data}})
    session.response = copy.deepcopy(RESPONSE)
    return session.to_cassette()


# -- the schema itself --------------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_version_matches_code() -> None:
    assert SCHEMA_VERSION == "1.1"
    assert (
        load_schema()["properties"]["schema_version"]["enum"] == sorted(SUPPORTED_VERSIONS) == ["1.0", "1.1"]
    )


def test_a_1_0_cassette_still_conforms() -> None:
    document = spec_example()
    assert document["schema_version"] == "1.0"
    assert errors_of(document) == []


def test_schema_ships_in_the_package() -> None:
    resource = resources.files("timetracer.cassette").joinpath("schema.json")
    assert resource.is_file()
    assert json.loads(resource.read_text(encoding="utf-8")) == load_schema()


def test_schema_is_declared_as_package_data() -> None:
    setup_cfg = REPO_ROOT / "setup.cfg"
    if not setup_cfg.is_file():
        pytest.skip("not running from a source checkout")
    parser = configparser.ConfigParser()
    parser.read(setup_cfg, encoding="utf-8")
    declared = parser.get("options.package_data", "timetracer").replace(",", " ").split()
    assert "cassette/schema.json" in declared


# -- documents that must validate ---------------------------------------------------------------------


def test_spec_example_validates() -> None:
    assert errors_of(spec_example()) == []


def test_session_cassette_validates(tmp_path: Path) -> None:
    document = recorded_cassette(tmp_path)
    assert errors_of(document) == []
    assert [event["eid"] for event in document["events"]] == [1, 2]
    assert document["response"] == RESPONSE


@pytest.mark.parametrize(
    "compression",
    [
        pytest.param(Compression.NONE, id="none"),
        pytest.param(Compression.GZIP, id="gzip"),
        pytest.param(Compression.ZSTD, id="zstd"),
    ],
)
def test_written_and_reloaded_cassette_validates(tmp_path: Path, compression: Compression) -> None:
    if compression is Compression.ZSTD:
        pytest.importorskip("zstandard")
    target = write_cassette(tmp_path / f"c{compression.suffix}", recorded_cassette(tmp_path), compression)
    assert errors_of(read_cassette(target)) == []


def test_session_cassette_with_error_and_no_request_validates(tmp_path: Path) -> None:
    session = Session(TraceConfig(), Mode.RECORD, cassette_path=tmp_path / "script.json")
    event = session.start_event(
        {
            "lib": "pymongo",
            "method": "INSERT_ONE",
            "url": "db.c",
            "query": {"filter_keys": []},
            "body_hash": "x",
        },
        {"document": {"a": 1}},
    )
    session.end_event(
        event,
        {
            "status": 1,
            "body": {"captured": False, "data": None},
            "error": {"type": "pymongo.errors.DuplicateKeyError", "message": "dup", "code": 11000},
        },
    )
    session.record_error(RuntimeError("boom"))
    document = session.to_cassette()
    assert document["request"] == {}
    assert document["session"]["service"] is None
    assert errors_of(document) == []


# -- documents that must not validate -----------------------------------------------------------------

Pointer = List[Union[str, int]]

SPEC_KEYS: List[Pointer] = [
    ["schema_version"],
    ["session"],
    ["session", "id"],
    ["session", "recorded_at"],
    ["session", "service"],
    ["session", "env"],
    ["request"],
    ["events"],
    ["events", 0, "eid"],
    ["events", 0, "event_type"],
    ["events", 0, "start_offset_ms"],
    ["events", 0, "duration_ms"],
    ["events", 0, "signature"],
    ["events", 0, "signature", "lib"],
    ["events", 0, "signature", "method"],
    ["events", 0, "signature", "url"],
    ["events", 0, "signature", "query"],
    ["events", 0, "signature", "query", "filter_keys"],
    ["events", 0, "signature", "body_hash"],
    ["events", 0, "result"],
    ["events", 0, "result", "status"],
    ["events", 0, "result", "body"],
    ["events", 0, "result", "body", "captured"],
    ["events", 0, "result", "body", "data"],
]


def _parent(document: Any, pointer: Pointer) -> Any:
    node = document
    for part in pointer[:-1]:
        node = node[part]
    return node


@pytest.mark.parametrize("pointer", [pytest.param(p, id=".".join(map(str, p))) for p in SPEC_KEYS])
def test_missing_spec_key_fails(pointer: Pointer) -> None:
    document = spec_example()
    del _parent(document, pointer)[pointer[-1]]
    messages = errors_of(document)
    assert messages, f"removing {pointer} should fail validation"
    assert any(repr(pointer[-1]) in message for message in messages)


@pytest.mark.parametrize("pointer", [pytest.param(p, id=".".join(map(str, p))) for p in SPEC_KEYS])
def test_missing_spec_key_fails_for_session_cassettes(tmp_path: Path, pointer: Pointer) -> None:
    document = recorded_cassette(tmp_path)
    del _parent(document, pointer)[pointer[-1]]
    assert errors_of(document)


def test_missing_body_hash_fails() -> None:
    document = spec_example()
    del document["events"][0]["signature"]["body_hash"]
    with pytest.raises(jsonschema.ValidationError, match="'body_hash' is a required property"):
        validator().validate(document)


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        pytest.param(["schema_version"], "9.9", id="unknown-version"),
        pytest.param(["schema_version"], 1.0, id="version-number"),
        pytest.param(["session", "recorded_at"], "2026-01-22 14:00:00", id="recorded-at-not-iso"),
        pytest.param(["session", "recorded_at"], "2026-01-22T14:00:00+02:00", id="recorded-at-not-utc-z"),
        pytest.param(["session", "id"], "", id="empty-session-id"),
        pytest.param(["events"], {}, id="events-object"),
        pytest.param(["events", 0, "eid"], 0, id="eid-zero"),
        pytest.param(["events", 0, "eid"], "1", id="eid-string"),
        pytest.param(["events", 0, "event_type"], "http.request", id="event-type"),
        pytest.param(["events", 0, "duration_ms"], -1, id="negative-duration"),
        pytest.param(["events", 0, "signature", "method"], "find_one", id="method-lowercase"),
        pytest.param(["events", 0, "signature", "body_hash"], "", id="empty-body-hash"),
        pytest.param(["events", 0, "signature", "query", "filter_keys"], "_id", id="filter-keys-string"),
        pytest.param(["events", 0, "result", "body", "captured"], "yes", id="captured-string"),
        pytest.param(["events", 0, "result", "status"], "0", id="status-string"),
    ],
)
def test_wrong_value_fails(pointer: Pointer, value: Any) -> None:
    document = spec_example()
    _parent(document, pointer)[pointer[-1]] = value
    assert errors_of(document)


@pytest.mark.parametrize(
    ("change", "value"),
    [
        pytest.param("status", 42, id="status-below-100"),
        pytest.param("headers", {"Content-Type": "application/json"}, id="headers-not-pairs"),
        pytest.param("headers", [["Content-Type"]], id="header-without-value"),
        pytest.param(
            "body", {"encoding": "latin-1", "data": "", "size": 0, "truncated": False}, id="encoding"
        ),
        pytest.param("body", {"encoding": "utf-8", "data": "{}"}, id="body-missing-keys"),
    ],
)
def test_bad_response_fails(tmp_path: Path, change: str, value: Any) -> None:
    document = recorded_cassette(tmp_path)
    document["response"][change] = value
    assert errors_of(document)


def test_a_1_1_cursor_section_is_checked() -> None:
    document = spec_example()
    document["schema_version"] = "1.1"
    result = document["events"][0]["result"]
    result["cursor"] = {
        "address": ["127.0.0.1", 27017],
        "batches": [{"size": 2, "cursor_id": 0, "killed": False}],
    }
    assert errors_of(document) == []
    result["cursor"]["batches"][0]["size"] = -1
    assert errors_of(document)
    result["cursor"] = {"address": ["127.0.0.1", "27017"], "batches": []}
    assert errors_of(document)
