"""Stored documents rebuilt in one pass (``from_ejson_many``) equal the per-document walk exactly."""

from __future__ import annotations

import datetime
import uuid

import bson
import pytest
from bson import Decimal128, ObjectId, Regex
from bson.binary import UuidRepresentation
from bson.int64 import Int64

from timetracer.cassette._json import JsonText, compact, materialize
from timetracer.plugins.pymongo import _values

UTC = datetime.timezone.utc
DOCUMENTS = [
    {"_id": ObjectId("65a1b2c3d4e5f60718293a4b"), "n": 1, "big": Int64(2**40), "f": 1.5},
    {
        "at": datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "old": datetime.datetime(1900, 1, 1, tzinfo=UTC),
    },
    {"user": {"$oid": "not an id", "x": 1}, "list": [{"$numberLong": "5"}, 2]},
    {"nan": float("nan"), "inf": float("-inf"), "none": None},
    {"dec": Decimal128("1.10"), "re": Regex("^a", "i"), "u": uuid.UUID(int=7), "b": b"\x00\x01"},
    {"nested": {"deep": [[{"at": datetime.datetime(2030, 5, 6, tzinfo=UTC)}]]}, "$tt": "x"},
]


def _key(value: object) -> object:
    return bson.encode({"v": value}, codec_options=_values.REPLAY_ENCODE_CODEC)


@pytest.mark.parametrize("index", range(len(DOCUMENTS)))
def test_from_ejson_many_matches_from_ejson(index: int) -> None:
    stored = [_values.to_ejson(DOCUMENTS[index]), _values.to_ejson(DOCUMENTS[0])]
    many = _values.from_ejson_many(stored)
    one_by_one = [_values.from_ejson(doc) for doc in stored]
    # Same BSON bytes: same types, values and key order at every level.
    assert [_key(d) for d in many] == [_key(d) for d in one_by_one]
    assert [repr(d) for d in many] == [repr(d) for d in one_by_one]


def test_stored_documents_matches_stored_document() -> None:
    codec = bson.codec_options.CodecOptions(
        document_class=bson.son.SON, uuid_representation=UuidRepresentation.STANDARD
    )
    captured = [_values.capture_document(bson.son.SON(doc), codec) for doc in DOCUMENTS]
    captured.append(_values.to_ejson(DOCUMENTS[0]))
    stored = _values.stored_documents(captured)
    assert {type(d) for d in stored} == {JsonText}
    assert [materialize(d) for d in stored] == [_values.stored_document(d) for d in captured]
    assert [bytes(d) for d in stored] == [compact(_values.stored_document(d)) for d in captured]
