"""The cassette value format (schema_version 1.1) and reading 1.0 cassettes.

A user's own document whose first key reads as an Extended JSON type marker is stored escaped
(``{"$tt_literal": {...}}``), so it comes back as the document it was; type markers themselves
stay plain Extended JSON. A cassette recorded by timetracer 1.0 (checked in as
``tests/data/pymongo_cassette_1_0.json``) still replays exactly (it was made by ``tests/plugins/_legacy.py``'s recipe with the 1.0 code).
"""

from __future__ import annotations

import datetime
import json
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Dict

import bson
import pytest
from bson import SON, Binary, Code, DBRef, Decimal128, Int64, ObjectId, Regex, Timestamp
from bson.codec_options import CodecOptions

from timetracer.cassette import read_cassette
from timetracer.plugins.pymongo._values import LITERAL, MARKERS, decode_document, from_ejson, to_ejson

from ._differential import assert_identical
from ._legacy import LEGACY_DB, legacy_seed, legacy_work
from ._support import Tape

DATA = Path(__file__).resolve().parent.parent / "data"

# -- Extended-JSON-looking user documents ------------------------------------------------------

USER_DOCUMENTS = [
    pytest.param({"$numberLong": "5"}, id="numberLong"),
    pytest.param({"$date": {"$numberLong": "0"}}, id="date"),
    pytest.param({"$oid": "x"}, id="oid-malformed"),
    pytest.param({"$binary": "AA==", "$type": "00"}, id="binary-legacy"),
    pytest.param({"$undefined": True}, id="undefined"),
    pytest.param({"$ref": "c", "$id": {"$oid": "y"}, "more": 1}, id="ref"),
    pytest.param({"$tt_literal": {"$oid": "y"}}, id="the-escape-key-itself"),
    pytest.param({"$code": "x", "$scope": {"$minKey": 1}}, id="code"),
]


@pytest.mark.parametrize("document", USER_DOCUMENTS)
def test_a_user_document_that_looks_like_a_type_marker_round_trips(document: Dict[str, Any]) -> None:
    stored = json.loads(json.dumps(to_ejson({"v": document, "list": [document]})))
    assert stored["v"] == {LITERAL: to_ejson(dict(document))[LITERAL]}
    back = from_ejson(stored)
    assert_identical(back, {"v": document, "list": [document]})
    # Replayed through BSON, it is what a live client decodes from the same document.
    live = bson.decode(bson.encode({"v": document, "list": [document]}))
    assert_identical(decode_document(stored, CodecOptions()), live)


def test_type_markers_stay_plain_extended_json() -> None:
    values = {
        "int64": Int64(5),
        "oid": ObjectId("5f43a1b2c3d4e5f6a7b8c9d0"),
        "date": datetime.datetime(2021, 3, 4, 5, 6, 7, 891000, tzinfo=datetime.timezone.utc),
        "decimal": Decimal128("1.5"),
        "uuid": Binary(uuid.UUID(int=1).bytes, 4),
        "regex": Regex("^a", "i"),
        "timestamp": Timestamp(1, 2),
        "dbref": DBRef("c", 1, "d"),
        "code": Code("f", {"a": 1}),
    }
    stored = to_ejson(values)
    assert LITERAL not in json.dumps(stored)
    assert stored["int64"] == {"$numberLong": "5"}
    assert stored["oid"] == {"$oid": "5f43a1b2c3d4e5f6a7b8c9d0"}
    assert stored["date"] == {"$date": "2021-03-04T05:06:07.891Z"}
    assert stored["dbref"] == {"$ref": "c", "$id": 1, "$db": "d"}
    assert all(next(iter(v)) in MARKERS for v in stored.values())
    assert_identical(from_ejson(json.loads(json.dumps(stored))), values)


def test_query_operators_are_not_escaped() -> None:
    # Filters keep their 1.0 normal form, so 1.0 cassettes still match the same calls.
    query = {"name": {"$regex": "^a", "$options": "i"}, "n": {"$gt": 1, "$type": "int"}, "$or": [{"a": 1}]}
    assert to_ejson(query) == query


def test_a_user_regex_operator_document_is_not_read_as_a_regex() -> None:
    # 1.0 read {"$regex": ...} back as a Regex; the legacy form is never written, so it is data.
    assert_identical(
        from_ejson({"v": {"$regex": "^a", "$options": "i"}}), {"v": {"$regex": "^a", "$options": "i"}}
    )


def test_key_order_is_kept_with_id_last() -> None:
    document = SON([("b", 1), ("a", SON([("z", 1), ("_id", 2)])), ("_id", 3)])
    stored = json.loads(json.dumps(to_ejson(document)))
    assert_identical(decode_document(stored, CodecOptions(document_class=SON)), document)


# -- a 1.0 cassette ------------------------------------------------------------------------------

LEGACY_CASSETTE = DATA / "pymongo_cassette_1_0.json"


def test_the_checked_in_cassette_is_schema_version_1_0() -> None:
    document = read_cassette(LEGACY_CASSETTE)
    assert document["schema_version"] == "1.0"
    assert "$tt_literal" not in LEGACY_CASSETTE.read_text(encoding="utf-8")


def test_a_1_0_cassette_still_replays_exactly(
    mongo_client: Any, dead_client: Callable[..., Any], tmp_path: Path
) -> None:
    db = mongo_client[LEGACY_DB]
    mongo_client.drop_database(LEGACY_DB)
    try:
        db.users.insert_many(legacy_seed())
        live = legacy_work(db)
    finally:
        mongo_client.drop_database(LEGACY_DB)
    tape = Tape(tmp_path / "legacy.json")
    shutil.copy(LEGACY_CASSETTE, tape.path)
    with tape.replay():
        replayed = legacy_work(dead_client()[LEGACY_DB])
    assert_identical(replayed, live)
