"""BSON values survive record → cassette → replay with their types, for every client codec.

The cassette stores Extended JSON; replay decodes it with the replaying client's own codec
options, so each test compares the replayed value and type with what the same kind of live
client returned.
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any, Callable, Dict

import bson
import pytest
from bson import SON, Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument
from pymongo import ReturnDocument

from ._support import Tape, assert_same

TZ = datetime.timezone(datetime.timedelta(hours=5, minutes=30))


def sample_document() -> Dict[str, Any]:
    return {
        "_id": ObjectId(),
        "naive_datetime": datetime.datetime(2021, 3, 4, 5, 6, 7, 891000),
        "aware_datetime": datetime.datetime(2021, 3, 4, 5, 6, 7, tzinfo=TZ),
        "before_1970": datetime.datetime(1901, 1, 1),
        "decimal": Decimal128("1234.5678901234567890"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "legacy_uuid": Binary(uuid.UUID("87654321-4321-8765-4321-876543218765").bytes, 3),
        "bytes": b"\x00\x01\xff",
        "binary_user": Binary(b"custom", 0x80),
        "binary_md5": Binary(b"0123456789abcdef", 5),
        "regex": Regex("^al.*ce$", "im"),
        "timestamp": Timestamp(1_700_000_000, 7),
        "int64_small": Int64(5),
        "int64_big": Int64(2**40),
        "int_big": 2**40,
        "int32": 7,
        "float": 1.5,
        "float_whole": 2.0,
        "nan": float("nan"),
        "minus_inf": float("-inf"),
        "code": Code("function () { return 1; }"),
        "min": MinKey(),
        "max": MaxKey(),
        "dbref": DBRef("other", ObjectId(), "otherdb"),
        "string": "ünïcødé ✓",
        "nested": {"a": [1, {"b": Int64(2), "c": [Decimal128("0.1"), None]}], "empty": {}, "list": []},
        "array": [ObjectId(), "x", None, True, 3.25, [Int64(1)]],
        "bool": False,
        "none": None,
    }


CLIENTS = [
    pytest.param({}, id="default"),
    pytest.param({"tz_aware": True}, id="tz_aware"),
    pytest.param({"tz_aware": True, "tzinfo": TZ}, id="tz_aware-tzinfo"),
    pytest.param({"uuidRepresentation": "standard"}, id="uuid-standard"),
    pytest.param({"uuidRepresentation": "pythonLegacy"}, id="uuid-pythonLegacy"),
    pytest.param({"document_class": RawBSONDocument}, id="RawBSONDocument"),
    pytest.param({"document_class": SON}, id="SON"),
]

READS = [
    pytest.param(lambda c, _id: c.find_one({"_id": _id}), id="find_one"),
    pytest.param(lambda c, _id: list(c.find({"_id": _id})), id="find"),
    pytest.param(lambda c, _id: list(c.aggregate([{"$match": {"_id": _id}}])), id="aggregate"),
    pytest.param(
        lambda c, _id: c.find_one_and_update(
            {"_id": _id}, {"$set": {"touched": True}}, return_document=ReturnDocument.AFTER
        ),
        id="find_one_and_update",
    ),
    pytest.param(lambda c, _id: c.distinct("nested", {"_id": _id}), id="distinct-documents"),
    pytest.param(lambda c, _id: c.distinct("array", {"_id": _id}), id="distinct-values"),
]


@pytest.fixture
def stored(fresh_db: Any, live_client: Callable[..., Any]) -> Dict[str, Any]:
    document = sample_document()
    live_client(uuidRepresentation="standard")[fresh_db.name].values.insert_one(document)
    return document


@pytest.mark.parametrize("read", READS)
@pytest.mark.parametrize("options", CLIENTS)
def test_values_replay_with_the_type_the_live_client_gave(
    options: Dict[str, Any],
    read: Callable[[Any, Any], Any],
    stored: Dict[str, Any],
    fresh_db: Any,
    live_client: Callable[..., Any],
    dead_client: Callable[..., Any],
    tape: Tape,
) -> None:
    with tape.record():
        live = read(live_client(**options)[fresh_db.name].values, stored["_id"])
    with tape.replay():
        replayed = read(dead_client(**options)[fresh_db.name].values, stored["_id"])
    assert_same(replayed, live)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({}, Binary, id="default-Binary"),
        pytest.param({"uuidRepresentation": "standard"}, uuid.UUID, id="standard-UUID"),
    ],
)
def test_uuid_representation_decides_the_replayed_type(
    options: Dict[str, Any],
    expected: type,
    stored: Dict[str, Any],
    fresh_db: Any,
    live_client: Callable[..., Any],
    dead_client: Callable[..., Any],
    tape: Tape,
) -> None:
    with tape.record():
        live = live_client(**options)[fresh_db.name].values.find_one()
    with tape.replay():
        replayed = dead_client(**options)[fresh_db.name].values.find_one()
    assert type(live["uuid"]) is expected
    assert type(replayed["uuid"]) is expected
    assert replayed["uuid"] == live["uuid"]
    if expected is uuid.UUID:
        assert replayed["uuid"] == stored["uuid"]


def test_tz_aware_client_gets_aware_datetimes_in_replay(
    stored: Dict[str, Any],
    fresh_db: Any,
    live_client: Callable[..., Any],
    dead_client: Callable[..., Any],
    tape: Tape,
) -> None:
    with tape.record():
        live = live_client(tz_aware=True)[fresh_db.name].values.find_one()
    with tape.replay():
        replayed = dead_client(tz_aware=True)[fresh_db.name].values.find_one()
    for key in ("naive_datetime", "aware_datetime", "before_1970"):
        assert replayed[key].tzinfo is not None
        assert replayed[key] == live[key]
    # BSON stores UTC: the aware value comes back as the same instant
    assert replayed["aware_datetime"] == stored["aware_datetime"]


def test_naive_client_gets_naive_utc_datetimes_in_replay(
    stored: Dict[str, Any], fresh_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        live = fresh_db.values.find_one()
    with tape.replay():
        replayed = dead_client()[fresh_db.name].values.find_one()
    assert replayed["naive_datetime"].tzinfo is None
    assert replayed["naive_datetime"] == stored["naive_datetime"]
    assert_same(replayed, live)


def test_int64_keeps_its_type_through_the_cassette(
    stored: Dict[str, Any], fresh_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        live = fresh_db.values.find_one({}, {"int64_small": 1, "int32": 1, "int_big": 1})
    with tape.replay():
        replayed = dead_client()[fresh_db.name].values.find_one(
            {}, {"int64_small": 1, "int32": 1, "int_big": 1}
        )
    assert type(live["int64_small"]) is Int64 and type(replayed["int64_small"]) is Int64
    assert type(replayed["int32"]) is int
    assert type(replayed["int_big"]) is type(live["int_big"])
    assert_same(replayed, live)


@pytest.mark.parametrize(
    "codec",
    [
        pytest.param(CodecOptions(tz_aware=True, document_class=SON), id="tz_aware-SON"),
        pytest.param(CodecOptions(document_class=RawBSONDocument), id="RawBSONDocument"),
        pytest.param(CodecOptions(uuid_representation=4), id="uuid-standard"),
    ],
)
def test_collection_codec_options_apply_in_replay(
    codec: CodecOptions, stored: Dict[str, Any], fresh_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        values = db.get_collection("values", codec_options=codec)
        return values.find_one(), list(values.find()), values.distinct("nested")

    with tape.record():
        live = work(fresh_db)
    with tape.replay():
        replayed = work(dead_client()[fresh_db.name])
    assert type(replayed[0]) is codec.document_class
    assert_same(replayed, live)


def test_raw_bson_document_client_gets_raw_documents_in_replay(
    stored: Dict[str, Any],
    fresh_db: Any,
    live_client: Callable[..., Any],
    dead_client: Callable[..., Any],
    tape: Tape,
) -> None:
    def work(db: Any) -> Any:
        return db.values.find_one(), list(db.values.find()), db.command("ping")

    with tape.record():
        live = work(live_client(document_class=RawBSONDocument)[fresh_db.name])
    with tape.replay():
        replayed = work(dead_client(document_class=RawBSONDocument)[fresh_db.name])
    assert type(replayed[0]) is RawBSONDocument
    assert type(replayed[1][0]) is RawBSONDocument
    assert replayed[0]["decimal"] == stored["decimal"]
    assert_same(replayed, live)


def test_values_in_filters_and_written_documents_round_trip(
    fresh_db: Any, live_client: Callable[..., Any], dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        document = sample_document()
        document["_id"] = "fixed"  # the rest is equal in both runs, apart from fresh ObjectIds
        for key in ("dbref", "array"):
            document.pop(key)
        inserted = db.values.insert_one(document).inserted_id
        found = db.values.find_one(
            {
                "decimal": Decimal128("1234.5678901234567890"),
                "naive_datetime": datetime.datetime(2021, 3, 4, 5, 6, 7, 891000),
                "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
                "int64_small": Int64(5),
                "timestamp": Timestamp(1_700_000_000, 7),
            }
        )
        return inserted, found

    live, replayed = None, None
    with tape.record():
        live = work(live_client(uuidRepresentation="standard")[fresh_db.name])
    assert live[1] is not None and live[1]["_id"] == "fixed"
    with tape.replay():
        replayed = work(dead_client(uuidRepresentation="standard")[fresh_db.name])
    assert_same(replayed, live)


def test_replay_decodes_with_the_replaying_clients_options(
    stored: Dict[str, Any], fresh_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    # Recorded with a naive client, replayed by a tz-aware one: the replaying client's codec decides.
    with tape.record():
        live = fresh_db.values.find_one()
    with tape.replay():
        replayed = dead_client(tz_aware=True)[fresh_db.name].values.find_one()
    assert live["naive_datetime"].tzinfo is None
    assert replayed["naive_datetime"] == live["naive_datetime"].replace(tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    "conversion",
    [
        pytest.param(DatetimeConversion.DATETIME_AUTO, id="datetime_auto"),
        pytest.param(DatetimeConversion.DATETIME_MS, id="datetime_ms"),
        pytest.param(DatetimeConversion.DATETIME_CLAMP, id="datetime_clamp"),
    ],
)
def test_dates_outside_pythons_range_follow_the_datetime_conversion(conversion: DatetimeConversion) -> None:
    # The test server cannot store such dates (it decodes them into Python datetimes), so this
    # drives the plugin's own store/load path with the bytes a real server would send.
    from bson.datetime_ms import DatetimeMS

    from timetracer.plugins.pymongo._values import decode_document, raw_to_ejson, snapshot

    codec = CodecOptions(datetime_conversion=conversion)
    wire = bson.encode({"far": DatetimeMS(2**62), "before": DatetimeMS(-(2**62)), "normal": DatetimeMS(0)})
    live = bson.decode(wire, codec)
    stored = json.loads(json.dumps(raw_to_ejson(snapshot(RawBSONDocument(wire), codec))))
    assert_same(decode_document(stored, codec), live)
