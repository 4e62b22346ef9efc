"""The fast ways documents are stored and rebuilt give exactly what the exact ways give.

Recording: :func:`_values._json_snapshot` (orjson in one call) writes the same bytes as the
Python walk ``_dict_to_ejson`` it stands in for. Replay: :func:`_rebuild._build_directly` (stored
JSON rebuilt in place) gives the same objects, by exact type and ``repr`` all the way down, as
the BSON way (encode, then PyMongo's own decoder with the live codec options).

The documents are real BSON decoded by PyMongo with each codec option set, as a cursor gets them.
"""

from __future__ import annotations

import datetime
import random
import re
import uuid
from typing import Any, Dict, List

import bson
import pytest
from bson import Code, Decimal128, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from bson.dbref import DBRef
from bson.int64 import Int64

from timetracer.cassette._json import JsonText, compact, loads
from timetracer.plugins.pymongo import _rebuild, _values

from ._differential import assert_identical
from ._support import change_everything

orjson = pytest.importorskip("orjson")

UTC = datetime.timezone.utc

# Each a document as an app stores it; what the tests use is its BSON decoded by PyMongo.
DOCUMENTS: List[Dict[str, Any]] = [
    {"_id": ObjectId("65a1b2c3d4e5f60718293a4b"), "n": 1, "big": Int64(2**40), "f": 1.5, "neg": -0.0},
    {"at": datetime.datetime(2024, 1, 2, 3, 4, 5, 678000), "whole": datetime.datetime(2024, 1, 2, 3, 4, 5)},
    {"old": datetime.datetime(1900, 1, 1), "epoch": datetime.datetime(1970, 1, 1), "ms": datetime.datetime(1970, 1, 1, 0, 0, 0, 1000)},
    {"user": {"$oid": "not an id", "x": 1}, "list": [{"$numberLong": "5"}, 2], "d": {"$date": "x"}},
    {"$tt_literal": {"a": 1}, "b": {"$tt_literal": 2}},
    {"nan": float("nan"), "inf": float("-inf"), "pinf": float("inf"), "none": None},
    {"none": None, "f": 2.0, "list": [None, 1, None]},
    {"dec": Decimal128("1.10"), "re": Regex("^a", "im"), "b": b"\x00\x01", "bin": Binary(b"\x07", 5)},
    {"u4": Binary(uuid.UUID(int=7).bytes, 4), "u3": Binary(uuid.UUID(int=9).bytes, 3)},
    {"text": "12345678-1234-5678-1234-567812345678", "brace": '{"$oid": "x"}', "dollar": "$5"},
    {"code": Code("f()"), "scoped": Code("g(x)", {"x": 1}), "ts": Timestamp(5, 6), "mn": MinKey(), "mx": MaxKey()},
    {"ref": DBRef("c", ObjectId("65a1b2c3d4e5f60718293a4b"), "db", extra=1), "plain_ref": DBRef("c", 5)},
    {"nested": {"deep": [[{"at": datetime.datetime(2030, 5, 6)}]]}, "$tt": "x", "empty": {}, "el": []},
    {"z": 1, "_id": 2, "a": {"y": 1, "x": 2}},
    {"$regex": "^a", "$options": "i"},
    {"unicode": "ü€😀", "ctrl": "\x00\n\t\"\\", "long": "x" * 5000},
    {"i32": 2**31 - 1, "i32n": -(2**31), "i64": Int64(2**31), "i64n": Int64(-(2**31) - 1), "t": True, "fl": False},
]

CODECS = {
    "default": CodecOptions(),
    "standard": CodecOptions(uuid_representation=UuidRepresentation.STANDARD),
    "unspecified": CodecOptions(uuid_representation=UuidRepresentation.UNSPECIFIED),
    "tz_aware": CodecOptions(tz_aware=True),
    "tz_aware_tzinfo": CodecOptions(tz_aware=True, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
}


def _random_documents(count: int, seed: int) -> List[Dict[str, Any]]:
    """Documents like an app's: strings, numbers, dates, ids, nested documents and lists."""
    rng = random.Random(seed)
    words = ["alpha", "$beta", "ga{mma", 'del"ta', "2024-01-02T03:04:05Z", "null", "é"]

    def value(depth: int) -> Any:
        kind = rng.randrange(12 if depth < 3 else 9)
        if kind == 0:
            return rng.randint(-(2**31), 2**31 - 1)
        if kind == 1:
            return Int64(rng.randint(-(2**63), 2**63 - 1))
        if kind == 2:
            return rng.choice([rng.uniform(-1e6, 1e6), 0.0, float("nan"), float("inf")])
        if kind == 3:
            return rng.choice(words) * rng.randint(0, 3)
        if kind == 4:
            millis = rng.randint(-(10**12), 4 * 10**12)
            return datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=millis)
        if kind == 5:
            return ObjectId(bytes(rng.randrange(256) for _ in range(12)))
        if kind == 6:
            return rng.choice([None, True, False])
        if kind == 7:
            return Binary(bytes(rng.randrange(256) for _ in range(16)), rng.choice([0, 3, 4, 5]))
        if kind == 8:
            return Decimal128(str(rng.randint(-999, 999)) + ".5")
        if kind in (9, 10):
            keys = [rng.choice(["a", "b", "$c", "$date", "$oid", "_id", "$tt_literal", "k"]) + str(i) for i in range(rng.randint(0, 4))]
            if rng.random() < 0.2:
                keys.insert(0, rng.choice(["$date", "$oid", "$numberLong", "$tt_literal"]))
            return {key: value(depth + 1) for key in keys}
        return [value(depth + 1) for _ in range(rng.randint(0, 4))]

    return [{f"f{i}": value(0) for i in range(rng.randint(1, 8))} for _ in range(count)]


def _decoded(documents: List[Dict[str, Any]], codec: CodecOptions) -> List[Any]:
    """The documents as a cursor with ``codec`` gets them from the server."""
    raw = b"".join(_values.encode_in_order(doc, CodecOptions(uuid_representation=UuidRepresentation.STANDARD)) for doc in documents)
    return bson.decode_all(raw, codec)


ALL = DOCUMENTS + _random_documents(300, seed=13)


@pytest.mark.parametrize("codec_name", sorted(CODECS))
def test_a_json_snapshot_is_the_stored_json_of_the_exact_walk(codec_name: str) -> None:
    codec = CODECS[codec_name]
    fast = 0
    for index, document in enumerate(_decoded(ALL, codec)):
        expected = _values._dict_to_ejson(document)
        snapshot = _values._json_snapshot(document, codec.uuid_representation != UuidRepresentation.UNSPECIFIED)
        if snapshot is None:  # a UUID (or text like one): the caller takes the long way
            continue
        if type(snapshot) is JsonText:
            fast += 1
            assert loads(snapshot) == loads(orjson.dumps(expected)), (index, document)
            assert bytes(snapshot) == orjson.dumps(expected), (index, document)
        else:
            assert snapshot == expected, (index, document)
    assert fast > len(ALL) // 3  # the fast way is the usual way


@pytest.mark.parametrize("codec_name", sorted(CODECS))
def test_capture_batch_stores_what_the_exact_path_stores(codec_name: str) -> None:
    codec = CODECS[codec_name]
    decoded = _decoded(ALL, codec)
    captured = _values.stored_documents(_values.capture_batch(decoded, codec))
    exact = [compact(_values.stored_document(_values.capture_document(doc, codec))) for doc in decoded]
    assert {type(c) for c in captured} == {JsonText}  # every stored document: written once, on its line
    assert [bytes(c) for c in captured] == exact


def _plain_batch(count: int) -> List[Dict[str, Any]]:
    # Documents the one-call batch writes whole: dates, ids, nulls, and text with the bytes it
    # cuts at (NUL, commas) or counts (``$``, ``{"$``) inside strings.
    at = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
    return [
        {"_id": ObjectId(bytes([i]) * 12), "n": i, "at": at, "none": None, "f": 0.5 * i,
         "s": f'${i} ,\x00, {{"$date": 1}} null', "l": [Int64(i), {"k": "\x00"}]}
        for i in range(count)
    ]


@pytest.mark.parametrize("codec_name", sorted(CODECS))
def test_a_batch_written_in_one_call_is_cut_into_each_documents_own_json(codec_name: str) -> None:
    codec = CODECS[codec_name]
    plain = _decoded(_plain_batch(12), codec)
    whole = _values._json_snapshots(plain, codec.uuid_representation != UuidRepresentation.UNSPECIFIED)
    if _values._decodes_plainly(codec):
        assert whole is not None  # the one call was enough
        assert [bytes(text) for text in whole] == [compact(_values._dict_to_ejson(doc)) for doc in plain]
    # One document the call cannot write exactly, anywhere in a batch: every document still
    # stores what the exact path stores (the others written by the one call where they can be).
    for tricky in _decoded(DOCUMENTS, codec):
        for position in (0, 5, 12):
            batch = list(plain)
            batch.insert(position, tricky)
            captured = _values.stored_documents(_values.capture_batch(batch, codec))
            exact = [compact(_values.stored_document(_values.capture_document(doc, codec))) for doc in batch]
            assert [bytes(c) for c in captured] == exact, (position, tricky)


def test_only_the_usual_codec_options_build_documents_directly() -> None:
    direct = {name for name, codec in CODECS.items() if _rebuild._builds_directly(codec)}
    assert direct == {"default", "standard", "unspecified"}  # aware datetimes always go through BSON


@pytest.mark.parametrize("codec_name", ["default", "standard", "unspecified"])
def test_documents_built_directly_are_what_bson_decodes(codec_name: str) -> None:
    codec = CODECS[codec_name]
    stored = [orjson.loads(orjson.dumps(_values.to_ejson(doc))) for doc in _decoded(ALL, codec)]
    expected = _values.decode_documents(stored, codec)
    built = _rebuild._build_directly(stored, codec)
    assert built is not None
    assert_identical(built, expected, codec_name)
    # The stored JSON is left as it was (later sessions rebuild from it).
    assert orjson.dumps(stored) == orjson.dumps([orjson.loads(orjson.dumps(_values.to_ejson(doc))) for doc in _decoded(ALL, codec)])


@pytest.mark.parametrize("codec_name", sorted(CODECS))
def test_decode_cached_gives_the_same_documents_the_first_second_and_third_time(codec_name: str) -> None:
    codec = CODECS[codec_name]
    stored = [orjson.loads(orjson.dumps(_values.to_ejson(doc))) for doc in _decoded(ALL, codec)]
    expected = _values.decode_documents(stored, codec)
    body: Dict[str, Any] = {"captured": True, "data": stored}
    for use in range(3):
        got = _rebuild.decode_cached(body, 0, 150, codec) + _rebuild.decode_cached(body, 150, len(stored), codec)
        assert_identical(got, expected, f"{codec_name} use {use + 1}")
        change_everything(got)  # the next use must not see any of it
    if _rebuild._builds_directly(codec):  # later uses were copies of kept documents
        kept = body[_rebuild._BUILT_KEY]
        assert len(kept) == len(stored) and sum(entry is not None for entry in kept) > len(stored) // 3


@pytest.mark.parametrize("codec_name", sorted(CODECS))
def test_a_single_document_result_is_the_same_the_first_second_and_third_time(codec_name: str) -> None:
    # find_one, a command's reply: built directly the first time, decoded from kept BSON after.
    codec = CODECS[codec_name]
    for document in _decoded(ALL, codec):
        stored = orjson.loads(orjson.dumps(_values.to_ejson(document)))
        (expected,) = _values.decode_documents([stored], codec)
        body: Dict[str, Any] = {"captured": True, "data": stored}
        for use in range(3):
            got = _rebuild.decode_cached_document(body, codec)
            assert_identical(got, expected, f"{codec_name} use {use + 1}")
            change_everything([got])  # the next use must not see any of it
        assert type(body.get(_values._CACHE_KEY)) is bytes  # the BSON kept from the second use
    assert _rebuild.decode_cached_document({"captured": True, "data": None}, codec) is None


def test_kept_documents_serve_only_the_uuid_representation_they_were_built_for() -> None:
    documents = [{"u": Binary(uuid.UUID(int=5).bytes, 4), "n": [1, {"a": 2}]}]
    body: Dict[str, Any] = {"data": [orjson.loads(orjson.dumps(_values.to_ejson(doc))) for doc in _decoded(documents, CODECS["default"])]}
    for name in ("standard", "unspecified", "standard", "unspecified"):
        codec = CODECS[name]
        expected = _values.decode_documents(body["data"], codec)
        got = _rebuild.decode_cached(body, 0, 1, codec)
        assert_identical(got, expected, name)
        assert type(got[0]["u"]) is (uuid.UUID if name == "standard" else Binary)
        change_everything(got)


def test_a_user_string_shaped_like_a_uuid_does_not_fool_the_snapshot() -> None:
    codec = CODECS["standard"]
    (document,) = _decoded([{"u": Binary(uuid.UUID(int=3).bytes, 4), "s": str(uuid.UUID(int=3))}], codec)
    assert type(document["u"]) is uuid.UUID and type(document["s"]) is str
    stored = _values.stored_documents(_values.capture_batch([document], codec))
    stored = [loads(s) if type(s) is JsonText else s for s in stored]
    assert stored[0]["u"] == {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAw==", "subType": "04"}}
    assert stored[0]["s"] == str(uuid.UUID(int=3))


def test_dates_are_written_with_milliseconds_only_when_there_are_some() -> None:
    (document,) = _decoded(DOCUMENTS[1:2], CODECS["default"])
    snapshot = _values._json_snapshot(document)
    assert type(snapshot) is JsonText
    assert re.findall(rb'"\$date":"([^"]+)"', snapshot) == [b"2024-01-02T03:04:05.678Z", b"2024-01-02T03:04:05Z"]


def test_a_plain_stored_integer_beyond_32_bits_comes_back_as_bson_would_carry_it() -> None:
    # As a hand-edited (or older) cassette may hold it: a plain JSON number, not $numberLong.
    stored = [{"n": 2**40, "m": -(2**31) - 1, "k": 2**31 - 1, "l": [2**33, 5]}]
    expected = _values.decode_documents(stored, CODECS["default"])
    assert type(expected[0]["n"]) is Int64 and type(expected[0]["k"]) is int
    assert_identical(_rebuild._build_directly(stored, CODECS["default"]), expected)


def test_values_bson_cannot_carry_go_the_bson_way_and_non_finite_floats_stay_exact() -> None:
    assert _rebuild._build_directly([{"n": 2**70}], CODECS["default"]) is None
    with pytest.raises(OverflowError):
        _values.decode_documents([{"n": 2**70}], CODECS["default"])
    stored = [{"nan": float("nan"), "inf": float("-inf"), "l": [float("inf")]}]  # a stdlib-parsed NaN literal
    assert_identical(_rebuild._build_directly(stored, CODECS["default"]), _values.decode_documents(stored, CODECS["default"]))
