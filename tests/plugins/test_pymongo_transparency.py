"""Recording is transparent, and what failed while recording fails the same way in replay.

Each case runs three times against the real test server: with timetracer off, recording, and
replaying on a client (same options) whose address has nothing listening. What the app sees --
the value (cursor documents, result fields) or the exception's class and ``str()`` -- must be
identical by type and repr in all three. Cases cover clients with custom type codecs (a registered
``Decimal`` codec, a fallback encoder) and the errors PyMongo raises on the client side.
Replayed exceptions also carry a note naming the cassette and the recorded event.
"""

from __future__ import annotations

import logging
import sys
import traceback
import uuid
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pymongo
import pytest
from bson.codec_options import TypeCodec, TypeDecoder, TypeRegistry
from bson.decimal128 import Decimal128
from bson.errors import InvalidDocument
from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo.errors import ServerSelectionTimeoutError

from timetracer.cassette import read_cassette, write_cassette
from timetracer.config import Compression
from timetracer.errors import ReplayMismatchError
from timetracer.plugins.pymongo import _failures
from timetracer.plugins.pymongo._errors import ReplayedFrom
from timetracer.plugins.pymongo._normalize import UNENCODABLE

from ._sockets import Connects, connects_fixture  # noqa: F401  (the "connects" fixture)
from ._support import Tape, assert_same, observe


class DecimalCodec(TypeCodec):
    python_type = Decimal
    bson_type = Decimal128

    def transform_python(self, value: Decimal) -> Decimal128:
        return Decimal128(value)

    def transform_bson(self, value: Decimal128) -> Decimal:
        return value.to_decimal()


class DecimalDecoder(TypeDecoder):
    """Decodes Decimal128 as Decimal but cannot encode it back: what it returns can't be stored."""

    bson_type = Decimal128

    def transform_bson(self, value: Decimal128) -> Decimal:
        return value.to_decimal()


class Money:
    """An app type sent through the client's fallback encoder."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __repr__(self) -> str:
        return f"Money({self.cents})"


def money_as_decimal(value: Any) -> Any:
    if isinstance(value, Money):
        return Decimal128(Decimal(value.cents) / 100)
    return value


class Unstorable:
    """Neither PyMongo nor timetracer can encode it (a repr without an address, so messages repeat)."""

    def __repr__(self) -> str:
        return "Unstorable()"


CLIENT_OPTIONS: Dict[str, Dict[str, Any]] = {
    "plain": {},
    "decimal-codec": {"type_registry": TypeRegistry([DecimalCodec()])},
    "fallback-encoder": {"type_registry": TypeRegistry(fallback_encoder=money_as_decimal)},
}

Work = Callable[[Any], Any]


def failing_documents() -> Iterator[Dict[str, Any]]:
    yield {"_id": 70}
    raise ValueError("the app's generator failed")


CASES: List[Any] = [
    # Filters and documents PyMongo encodes through the client's type registry.
    ("decimal-codec", "find", lambda c: c.find({"price": {"$gt": Decimal("1.5")}}).sort("_id")),
    ("decimal-codec", "find_one", lambda c: c.find_one({"price": Decimal("2")})),
    ("decimal-codec", "count_documents", lambda c: c.count_documents({"price": {"$lte": Decimal("3")}})),
    ("decimal-codec", "distinct", lambda c: c.distinct("price", {"price": {"$gt": Decimal("2")}})),
    (
        "decimal-codec",
        "aggregate",
        lambda c: c.aggregate([{"$match": {"price": {"$gte": Decimal("3")}}}, {"$sort": {"_id": 1}}]),
    ),
    ("decimal-codec", "insert_one", lambda c: c.insert_one({"_id": 10, "price": Decimal("9.99")})),
    (
        "decimal-codec",
        "insert_many",
        lambda c: c.insert_many([{"_id": 11, "price": Decimal("1")}, {"_id": 12, "price": Decimal("2")}]),
    ),
    (
        "decimal-codec",
        "update_many",
        lambda c: c.update_many({"price": {"$lt": Decimal("2")}}, {"$set": {"price": Decimal("0.5")}}),
    ),
    (
        "decimal-codec",
        "bulk_write",
        lambda c: c.bulk_write(
            [
                InsertOne({"_id": 13, "price": Decimal("7")}),
                UpdateOne({"price": Decimal("7")}, {"$inc": {"n": 1}}),
            ]
        ),
    ),
    (
        "decimal-codec",
        "find_one_and_update",
        lambda c: c.find_one_and_update(
            {"price": Decimal("4")}, {"$set": {"price": Decimal("4.5")}}, return_document=ReturnDocument.AFTER
        ),
    ),
    ("fallback-encoder", "find", lambda c: c.find({"price": {"$gte": Money(300)}}).sort("_id")),
    ("fallback-encoder", "insert_one", lambda c: c.insert_one({"_id": 20, "price": Money(150)})),
    ("fallback-encoder", "update_one", lambda c: c.update_one({"_id": 1}, {"$set": {"price": Money(5)}})),
    # Arguments PyMongo refuses itself: its own exception, message unchanged.
    ("plain", "insert_many-a-dict", lambda c: c.insert_many({"_id": 1})),
    ("plain", "insert_many-empty", lambda c: c.insert_many([])),
    ("plain", "insert_many-generator", lambda c: c.insert_many({"_id": 30 + i} for i in range(3))),
    ("plain", "insert_many-generator-raises", lambda c: c.insert_many(failing_documents())),
    ("plain", "bulk_write-a-tuple", lambda c: c.bulk_write((InsertOne({"_id": 40}),))),
    ("plain", "aggregate-a-tuple", lambda c: c.aggregate(({"$match": {}},))),
    ("plain", "insert_one-not-a-document", lambda c: c.insert_one("text")),
    ("plain", "find_one_and_update-no-operator", lambda c: c.find_one_and_update({"_id": 1}, {"price": 1})),
    # Every way of passing arguments reaches PyMongo as the app passed it.
    ("plain", "find_one-filter-keyword", lambda c: c.find_one(filter={"_id": 2})),
    ("plain", "find_one-no-arguments", lambda c: c.find_one()),
    ("plain", "find_one-id-and-keyword", lambda c: c.find_one(3, projection={"name": 1})),
    ("plain", "find-keywords-only", lambda c: c.find(filter={"_id": {"$gt": 2}}, projection={"name": 1}).sort("_id")),
    ("plain", "find-positional-and-keyword", lambda c: c.find({"_id": {"$lt": 4}}, {"name": 1}, skip=1).sort("_id")),
    ("plain", "find-no-arguments", lambda c: c.find().sort("_id")),
    ("plain", "update_one-keywords-only", lambda c: c.update_one(update={"$set": {"name": "k"}}, filter={"_id": 1})),
    ("plain", "count_documents-keyword", lambda c: c.count_documents(filter={"_id": {"$gte": 2}})),
    ("plain", "find_one-filter-twice", lambda c: c.find_one({"_id": 1}, filter={"_id": 2})),
    ("plain", "insert_one-no-document", lambda c: c.insert_one()),
    # Values that cannot be encoded: raised on the client side, before anything is sent.
    ("plain", "insert_one-uuid-unspecified", lambda c: c.insert_one({"_id": 50, "u": uuid.UUID(int=5)})),
    ("plain", "insert_one-uuid-id-unspecified", lambda c: c.insert_one({"_id": uuid.UUID(int=6)})),
    ("plain", "insert_one-decimal-no-codec", lambda c: c.insert_one({"_id": 60, "price": Decimal("1")})),
    ("plain", "find-decimal-no-codec", lambda c: c.find({"price": Decimal("1")})),
    ("plain", "insert_one-int-overflow", lambda c: c.insert_one({"_id": 61, "n": 2**70})),
    ("plain", "find-unstorable", lambda c: c.find({"x": Unstorable()})),
    ("plain", "find_one-unstorable", lambda c: c.find_one({"x": Unstorable()})),
    ("plain", "update_one-unstorable", lambda c: c.update_one({"_id": 1}, {"$set": {"x": Unstorable()}})),
]


def outcome(work: Work, collection: Any) -> Tuple[Any, ...]:
    """What the app sees: the observed value, or the exception's class and message (and the
    exception itself, for its notes)."""
    try:
        return ("returned", observe(work(collection)))
    except Exception as exc:
        return ("raised", type(exc), str(exc), exc)


def assert_same_outcome(replayed: Tuple[Any, ...], live: Tuple[Any, ...]) -> None:
    assert replayed[0] == live[0], f"{replayed[:3]} != {live[:3]}"
    if live[0] == "returned":
        assert_same(replayed[1], live[1])
    else:
        assert replayed[1:3] == live[1:3]


def notes(exc: BaseException) -> List[str]:
    return list(getattr(exc, "__notes__", None) or [])


@pytest.fixture
def seeded(mongo_client: pymongo.MongoClient, fresh_db: Any) -> Callable[[], None]:
    """``seed()``: put the ``items`` collection back in its initial state (no session active)."""

    def seed() -> None:
        items = mongo_client[fresh_db.name].items
        items.delete_many({})
        items.insert_many([{"_id": i, "price": Decimal128(str(i)), "name": f"n{i}"} for i in range(1, 6)])

    return seed


@pytest.mark.parametrize(
    ("client", "name", "work"), [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in CASES]
)
def test_the_app_sees_the_same_live_recording_and_replaying(
    client: str,
    name: str,
    work: Work,
    fresh_db: Any,
    seeded: Callable[[], None],
    make_client: Callable[..., pymongo.MongoClient],
    mongo_uri: str,
    dead_mongo_uri: str,
    tape: Tape,
    connects: Connects,
) -> None:
    options = CLIENT_OPTIONS[client]
    items = make_client(mongo_uri, **options)[fresh_db.name].items
    seeded()
    off = outcome(work, items)
    seeded()
    with tape.record():
        recorded = outcome(work, items)
    assert_same_outcome(recorded, off)
    if off[0] == "raised":
        assert notes(recorded[3]) == [] and recorded[3].__cause__ is off[3].__cause__ is None
    with tape.replay() as session:
        replayed = outcome(work, make_client(dead_mongo_uri, **options)[fresh_db.name].items)
    assert_same_outcome(replayed, off)
    assert session.replayer is not None and session.replayer.unused() == []
    assert connects.to(dead_mongo_uri) == 0
    if replayed[0] == "raised" and tape.events:
        (event,) = tape.events
        assert notes(replayed[3]) == [
            f"replayed by timetracer from the cassette {tape.path}, recorded call eid={event['eid']}"
        ]
        if sys.version_info < (3, 11):
            assert isinstance(replayed[3].__cause__, ReplayedFrom)


def test_writes_through_a_type_codec_are_recorded_with_the_encoded_values(
    fresh_db: Any, make_client: Callable[..., pymongo.MongoClient], mongo_uri: str, tape: Tape
) -> None:
    items = make_client(mongo_uri, **CLIENT_OPTIONS["decimal-codec"])[fresh_db.name].items
    with tape.record():
        items.insert_one({"_id": 1, "price": Decimal("9.99")})
        items.update_one({"_id": 1}, {"$set": {"price": Decimal("10")}})
    assert [event["args"] for event in tape.events] == [
        {"document": {"_id": 1, "price": {"$numberDecimal": "9.99"}}},
        {"filter": {"_id": 1}, "update": {"$set": {"price": {"$numberDecimal": "10"}}}},
    ]


def test_a_successful_call_with_an_unstorable_argument_is_never_answered_blindly(
    fresh_db: Any,
    make_client: Callable[..., pymongo.MongoClient],
    mongo_uri: str,
    dead_mongo_uri: str,
    tape: Tape,
) -> None:
    # An argument no encoder can store is kept only as its type. PyMongo refuses such calls, so the
    # recording holds its error; were a success recorded for one (the cassette below is edited to
    # say so), replay could not tell two such arguments apart and must not return that result.
    items = make_client(mongo_uri)[fresh_db.name].items
    with tape.record(), pytest.raises(InvalidDocument):
        items.find_one({"x": Unstorable()})
    (event,) = tape.events
    assert event["args"] == {"filter": {"x": {UNENCODABLE: f"{__name__}.Unstorable"}}}
    document = read_cassette(tape.path)
    document["events"][0]["result"] = {"status": 0, "body": {"captured": True, "data": {"_id": 1}}}
    write_cassette(tape.path, document, Compression.NONE)
    with tape.replay():
        dead = make_client(dead_mongo_uri)[fresh_db.name].items
        with pytest.raises(ReplayMismatchError, match="cannot be stored"):
            dead.find_one({"x": Unstorable()})


DECODE_ONLY = {"type_registry": TypeRegistry([DecimalDecoder()])}


@pytest.mark.parametrize(
    "work",
    [
        pytest.param(lambda c: c.find_one({"_id": 2}), id="find_one"),
        pytest.param(lambda c: list(c.find({"_id": {"$gte": 2}}).sort("_id")), id="find"),
        pytest.param(lambda c: list(c.aggregate([{"$match": {"_id": 2}}])), id="aggregate"),
    ],
)
def test_a_result_that_cannot_be_stored_is_returned_untouched_and_replay_says_so(
    work: Work,
    fresh_db: Any,
    seeded: Callable[[], None],
    make_client: Callable[..., pymongo.MongoClient],
    mongo_uri: str,
    dead_mongo_uri: str,
    tape: Tape,
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = make_client(mongo_uri, **DECODE_ONLY)[fresh_db.name].items
    seeded()
    off = outcome(work, items)
    assert off[0] == "returned" and "Decimal('2')" in repr(off[1])
    _failures.reset()
    with caplog.at_level(logging.DEBUG, logger="timetracer"), tape.record():
        recorded = (outcome(work, items), outcome(work, items))
    for each in recorded:
        assert_same_outcome(each, off)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # logged once, not per call
    assert "could not be recorded" in warnings[0].getMessage()
    assert all(event["result"]["body"]["captured"] is False for event in tape.events)
    with tape.replay():
        replayed = outcome(work, make_client(dead_mongo_uri, **DECODE_ONLY)[fresh_db.name].items)
    assert replayed[:2] == ("raised", ReplayMismatchError)
    assert "not captured" in replayed[2] and str(tape.path) in replayed[2]


def test_calls_that_never_reached_the_server_warn_when_recorded_and_replayed(
    make_client: Callable[..., pymongo.MongoClient],
    dead_mongo_uri: str,
    tape: Tape,
    connects: Connects,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def work(db: Any) -> List[Tuple[Any, ...]]:
        return [
            outcome(lambda c: c.find_one({"_id": 1}), db.items),
            outcome(lambda c: list(c.find({"a": 1})), db.items),
        ]

    down = make_client(dead_mongo_uri, serverSelectionTimeoutMS=100)
    off = work(down.shop)
    with caplog.at_level(logging.WARNING, logger="timetracer"):
        with tape.record():
            recorded = work(down.shop)
    for live, rec in zip(off, recorded):
        assert rec[:2] == live[:2] == ("raised", ServerSelectionTimeoutError)
    saved = [r.getMessage() for r in caplog.records if "failed to reach the database" in r.getMessage()]
    assert len(saved) == 1 and str(tape.path) in saved[0]
    assert "eid=1 FIND_ONE on shop.items: ServerSelectionTimeoutError" in saved[0]
    assert "eid=2 FIND on shop.items: ServerSelectionTimeoutError" in saved[0]

    caplog.clear()
    before = connects.to(dead_mongo_uri)
    with caplog.at_level(logging.WARNING, logger="timetracer"), tape.replay():
        replayed = work(make_client(dead_mongo_uri).shop)
    assert connects.to(dead_mongo_uri) == before
    for eid, (rec, rep) in enumerate(zip(recorded, replayed), start=1):
        assert rep[:3] == rec[:3]
        assert notes(rep[3]) == [
            f"replayed by timetracer from the cassette {tape.path}, recorded call eid={eid} "
            "(recorded when the database could not be reached)"
        ]
    replay_warnings = [r.getMessage() for r in caplog.records if "could not be reached" in r.getMessage()]
    assert len(replay_warnings) == 2 and all(str(tape.path) in m for m in replay_warnings)


def test_a_replayed_error_keeps_its_message_and_shows_its_origin_in_the_traceback(
    fresh_db: Any,
    make_client: Callable[..., pymongo.MongoClient],
    mongo_uri: str,
    dead_mongo_uri: str,
    tape: Tape,
) -> None:
    items = make_client(mongo_uri)[fresh_db.name].items
    with tape.record(), pytest.raises(InvalidDocument) as live:
        items.insert_one({"_id": 1, "x": Unstorable()})
    with tape.replay(), pytest.raises(InvalidDocument) as replayed:
        make_client(dead_mongo_uri)[fresh_db.name].items.insert_one({"_id": 1, "x": Unstorable()})
    assert str(replayed.value) == str(live.value) and replayed.value.args == live.value.args
    live_text = "".join(traceback.format_exception(live.type, live.value, live.tb))
    assert "replayed by timetracer" not in live_text  # recording adds nothing
    text = "".join(traceback.format_exception(replayed.type, replayed.value, replayed.tb))
    assert f"replayed by timetracer from the cassette {tape.path}, recorded call eid=1" in text
    assert f"bson.errors.InvalidDocument: {live.value}\n" in text  # the message line is unchanged
