"""The differential harness for the async drivers: Motor and PyMongo's ``AsyncMongoClient``.

Every scenario runs three times on identically seeded data: live with timetracer off, recorded,
and replayed through a client on a :class:`~.conftest.Blackhole` (zero connection attempts
allowed). Outcomes (values, result objects, raised errors) are compared by exact type and repr,
recursively: replay must equal the recording, and the recording must equal the live run (only
``ObjectId``s made by the driver differ between live and recorded runs). A cassette recorded
through one driver replays through the others (Motor, AsyncMongoClient, MongoClient).
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Tuple

import pymongo
import pytest
from bson import SON, Decimal128, Int64, ObjectId
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import DeleteOne, InsertOne, ReplaceOne, ReturnDocument, UpdateOne

from timetracer.plugins import disable_motor, enable_motor
from timetracer.plugins.pymongo import _async

from ._support import Tape, result_fields

motor_asyncio = pytest.importorskip("motor.motor_asyncio")

Scenario = Callable[[Any], Awaitable[Dict[str, Any]]]


@pytest.fixture(scope="module", autouse=True)
def motor_plugin() -> Any:
    enable_motor()
    yield
    disable_motor()


# -- the drivers -----------------------------------------------------------------------------


def make_motor(uri: str) -> Any:
    return motor_asyncio.AsyncIOMotorClient(uri, serverSelectionTimeoutMS=2000)


def make_async(uri: str) -> Any:
    return pymongo.AsyncMongoClient(uri, serverSelectionTimeoutMS=2000)


async def close(client: Any) -> None:
    result = client.close()
    if asyncio.iscoroutine(result):
        await result


DRIVERS = [
    pytest.param(make_motor, id="motor"),
    pytest.param(
        make_async,
        id="AsyncMongoClient",
        marks=pytest.mark.skipif(not _async.AVAILABLE, reason="this PyMongo has no AsyncMongoClient (4.9+)"),
    ),
]


async def cursor_of(value: Any) -> Any:
    """``aggregate`` returns a cursor in Motor and an awaitable of one in AsyncMongoClient."""
    return await value if asyncio.iscoroutine(value) else value


# -- outcomes --------------------------------------------------------------------------------


def snapshot(value: Any, *, ids: bool = True, db: str = "") -> Any:
    """Type and repr of ``value``, recursively. For comparing two databases' runs, ``ids=False``
    hides ObjectId values (their type stays) and ``db`` is written ``<db>`` (error messages name it)."""
    if isinstance(value, dict):
        return (type(value).__qualname__, [(k, snapshot(v, ids=ids, db=db)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__qualname__, [snapshot(v, ids=ids, db=db) for v in value])
    if type(value).__module__ == "pymongo.results":
        return snapshot(result_fields(value), ids=ids, db=db)
    if isinstance(value, ObjectId) and not ids:
        return ("ObjectId", "...")
    text = repr(value)
    return (type(value).__qualname__, text.replace(db, "<db>") if db else text)


async def outcome(steps: List[Tuple[str, Callable[[], Awaitable[Any]]]]) -> Dict[str, Any]:
    """Run each step; keep its value, or the class, code, details and message of its error."""
    out: Dict[str, Any] = {}
    for name, step in steps:
        try:
            out[name] = await step()
        except Exception as exc:
            out[name] = {
                "raised": type(exc).__qualname__,
                "code": getattr(exc, "code", None),
                "details": getattr(exc, "details", None),
                "message": str(exc),
            }
    return out


# -- scenarios: every call the plugin covers, awaited --------------------------------------


async def reads(db: Any) -> Dict[str, Any]:
    items = db.items

    async def partial() -> Any:
        cursor = items.find({"in_stock": True}).sort("price", 1).batch_size(3)
        first = await cursor.to_list(4)
        one = await cursor.next()
        return [first, one]

    async def iterate() -> Any:
        return [doc async for doc in items.find({"price": {"$gt": 50}}, {"_id": 0}).sort([("price", -1)])]

    async def stop_early() -> Any:
        seen = []
        async for doc in items.find().sort("sku", 1).batch_size(2):
            seen.append(doc["sku"])
            if len(seen) == 3:
                break
        return seen

    async def aggregate_partial() -> Any:
        cursor = await cursor_of(items.aggregate([{"$sort": {"sku": 1}}, {"$project": {"sku": 1, "_id": 0}}]))
        return await cursor.to_list(2)

    return await outcome(
        [
            ("find_all", lambda: items.find({}, sort=[("sku", 1)]).to_list(None)),
            (
                "find_skip_limit",
                lambda: items.find({"in_stock": True}).sort("sku", -1).skip(2).limit(3).to_list(None),
            ),
            ("find_none", lambda: items.find({"sku": "nope"}).to_list(None)),
            ("find_partial", partial),
            ("find_async_for", iterate),
            ("find_stop_early", stop_early),
            (
                "aggregate",
                lambda: _to_list(
                    items.aggregate(
                        [{"$group": {"_id": "$in_stock", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]
                    )
                ),
            ),
            (
                "aggregate_async_for",
                lambda: _iterate(
                    items.aggregate([{"$match": {"price": {"$lt": 30}}}, {"$sort": {"sku": 1}}])
                ),
            ),
            ("aggregate_partial", aggregate_partial),
            ("find_one", lambda: items.find_one({"sku": "s3"})),
            ("find_one_by_id", lambda: db.users.find_one("123")),
            ("find_one_missing", lambda: items.find_one({"sku": "nope"})),
            ("count", lambda: items.count_documents({"in_stock": False})),
            ("estimated", lambda: items.estimated_document_count()),
            ("distinct", lambda: items.distinct("in_stock")),
            ("types", lambda: db.types.find_one({"_id": 1})),
            ("types_live_codecs", lambda: db.types.with_options(codec_options=CODECS).find_one({"_id": 1})),
            ("raw_documents", lambda: _raw(db.types.with_options(codec_options=RAW).find({}).to_list(None))),
            ("codec_aggregate", lambda: _to_list(db.types.with_options(codec_options=CODECS).aggregate([]))),
            ("command", lambda: db.command({"count": "items", "query": {"in_stock": True}})),
            ("names", lambda: _sorted(db.list_collection_names())),
        ]
    )


# Live codec options the replayed values must be decoded with: aware datetimes, SON, UUIDs.
CODECS = CodecOptions(
    document_class=SON,
    tz_aware=True,
    tzinfo=datetime.timezone.utc,
    uuid_representation=UuidRepresentation.STANDARD,
)
RAW = CodecOptions(document_class=RawBSONDocument)


async def _raw(value: Awaitable[List[Any]]) -> Any:
    return [(type(doc).__name__, doc.raw) for doc in await value]


async def _to_list(value: Any) -> Any:
    return await (await cursor_of(value)).to_list(None)


async def _iterate(value: Any) -> Any:
    return [doc async for doc in await cursor_of(value)]


async def _sorted(value: Awaitable[List[str]]) -> List[str]:
    return sorted(await value)


async def writes(db: Any) -> Dict[str, Any]:
    orders = db.orders
    fresh = {"user": "123", "total": 12.5}
    many = [{"_id": 10, "n": 1}, {"n": 2}]

    async def insert_fresh() -> Any:
        result = await orders.insert_one(fresh)
        return [result, fresh["_id"] == result.inserted_id]

    async def insert_many() -> Any:
        result = await orders.insert_many(many)
        return [result, [d["_id"] for d in many] == result.inserted_ids]

    bulk_docs = [
        InsertOne({"_id": 20, "n": 20}),
        UpdateOne({"_id": 10}, {"$set": {"n": 11}}),
        DeleteOne({"_id": 99}),
    ]

    return await outcome(
        [
            ("insert_one", insert_fresh),
            ("insert_many", insert_many),
            ("duplicate", lambda: orders.insert_one({"_id": 10})),
            ("update_one", lambda: orders.update_one({"_id": 10}, {"$inc": {"n": 5}})),
            ("update_many", lambda: orders.update_many({}, {"$set": {"seen": True}})),
            ("upsert", lambda: orders.update_one({"_id": 30}, {"$set": {"n": 30}}, upsert=True)),
            ("replace_one", lambda: orders.replace_one({"_id": 30}, {"n": 31})),
            (
                "find_one_and_update",
                lambda: orders.find_one_and_update(
                    {"_id": 10}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER
                ),
            ),
            ("find_one_and_replace", lambda: orders.find_one_and_replace({"_id": 30}, {"n": 32})),
            ("find_one_and_delete", lambda: orders.find_one_and_delete({"_id": 30})),
            ("bulk_write", lambda: orders.bulk_write(bulk_docs)),
            (
                "bulk_error",
                lambda: orders.bulk_write(
                    [InsertOne({"_id": 10}), ReplaceOne({"_id": 20}, {"n": 0})], ordered=True
                ),
            ),
            ("delete_one", lambda: orders.delete_one({"_id": 20})),
            ("delete_many", lambda: orders.delete_many({"seen": True})),
            ("bad_query", lambda: orders.find({"$bogus": 1}).to_list(None)),
            ("bad_pipeline", lambda: _to_list(orders.aggregate([{"$bogus": {}}]))),
            ("bad_command", lambda: db.command("noSuchCommandAtAll")),
            ("after", lambda: orders.find({}, {"_id": 0}).sort("n", 1).to_list(None)),
        ]
    )


SCENARIOS = [pytest.param(reads, id="reads"), pytest.param(writes, id="writes")]


def seed(db: Any) -> None:
    db.items.insert_many(
        [{"_id": i, "sku": f"s{i}", "price": (i * 37) % 100, "in_stock": i % 4 != 0} for i in range(12)]
    )
    db.users.insert_one({"_id": "123", "name": "Alice"})
    db.types.insert_one(
        {
            "_id": 1,
            "when": datetime.datetime(2024, 5, 1, 12, 30, 15, 123000),
            "big": Int64(2**40),
            "dec": Decimal128("1.10"),
            "uid": uuid.UUID("12345678-1234-5678-1234-567812345678").bytes,
            "std_uuid": Binary.from_uuid(uuid.UUID("87654321-4321-8765-4321-876543218765")),
            "nested": {"z": 1, "a": [1, 2.5, None, True]},
        }
    )


def run(make: Callable[[str], Any], uri: str, name: str, scenario: Scenario) -> Dict[str, Any]:
    async def main() -> Dict[str, Any]:
        client = make(uri)
        try:
            return await scenario(client[name])
        finally:
            await close(client)

    return asyncio.run(main())


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("make", DRIVERS)
def test_live_record_replay_agree(
    make: Callable[[str], Any],
    scenario: Scenario,
    mongo_client: pymongo.MongoClient,
    mongo_uri: str,
    tape: Tape,
    blackhole: Any,
) -> None:
    live_db, recorded_db = (f"tt_async_{uuid.uuid4().hex[:10]}" for _ in range(2))
    try:
        seed(mongo_client[live_db])
        seed(mongo_client[recorded_db])
        live = run(make, mongo_uri, live_db, scenario)
        with tape.record():
            recorded = run(make, mongo_uri, recorded_db, scenario)
        with tape.replay() as session:
            replayed = run(make, blackhole.uri, recorded_db, scenario)
    finally:
        mongo_client.drop_database(live_db)
        mongo_client.drop_database(recorded_db)
    blackhole.assert_untouched()
    assert snapshot(replayed) == snapshot(recorded)
    assert snapshot(recorded, ids=False, db=recorded_db) == snapshot(live, ids=False, db=live_db)
    assert session.replayer is not None and not session.replayer.unused()
    raised = [name for name, value in recorded.items() if isinstance(value, dict) and "raised" in value]
    if scenario is reads:  # every read succeeds, and with the live codec options
        assert raised == []
        assert type(recorded["types_live_codecs"]) is SON
        assert recorded["types_live_codecs"]["when"].tzinfo is not None
        assert recorded["raw_documents"][0][0] == "RawBSONDocument"
    else:
        assert raised == ["duplicate", "bulk_error", "bad_query", "bad_pipeline", "bad_command"]


def test_a_cassette_replays_through_every_driver(
    mongo_client: pymongo.MongoClient, mongo_uri: str, tape: Tape, blackhole: Any
) -> None:
    """Recorded through Motor; replayed through AsyncMongoClient and the sync MongoClient."""
    name = f"tt_async_{uuid.uuid4().hex[:10]}"
    seed(mongo_client[name])

    async def awaited(db: Any) -> Any:
        return [
            await db.items.find({"in_stock": True}).sort("sku", 1).to_list(None),
            await (
                await cursor_of(
                    db.items.aggregate([{"$match": {"price": {"$gt": 40}}}, {"$sort": {"sku": 1}}])
                )
            ).to_list(None),
            await db.types.find_one({"_id": 1}),
            result_fields(await db.items.update_one({"_id": 1}, {"$set": {"price": 1}})),
        ]

    def synchronous(db: Any) -> Any:
        return [
            list(db.items.find({"in_stock": True}).sort("sku", 1)),
            list(db.items.aggregate([{"$match": {"price": {"$gt": 40}}}, {"$sort": {"sku": 1}}])),
            db.types.find_one({"_id": 1}),
            result_fields(db.items.update_one({"_id": 1}, {"$set": {"price": 1}})),
        ]

    try:
        with tape.record():
            recorded = run(make_motor, mongo_uri, name, awaited)
    finally:
        mongo_client.drop_database(name)
    replays = []
    if _async.AVAILABLE:
        with tape.replay():
            replays.append(run(make_async, blackhole.uri, name, awaited))
    with tape.replay():
        sync_client = pymongo.MongoClient(blackhole.uri, serverSelectionTimeoutMS=300)
        try:
            replays.append(synchronous(sync_client[name]))
        finally:
            sync_client.close()
    blackhole.assert_untouched()
    for replayed in replays:
        assert snapshot(replayed) == snapshot(recorded)


@pytest.mark.parametrize("make", DRIVERS)
def test_a_sync_recording_replays_through_the_async_drivers(
    make: Callable[[str], Any], mongo_client: pymongo.MongoClient, tape: Tape, blackhole: Any
) -> None:
    name = f"tt_async_{uuid.uuid4().hex[:10]}"
    seed(mongo_client[name])
    db = mongo_client[name]
    try:
        with tape.record():
            recorded = [
                list(db.items.find({"price": {"$lt": 50}}).sort("price", -1)),
                db.users.find_one({"_id": "123"}),
                db.items.count_documents({}),
            ]
    finally:
        mongo_client.drop_database(name)

    async def awaited(adb: Any) -> Any:
        return [
            await adb.items.find({"price": {"$lt": 50}}).sort("price", -1).to_list(None),
            await adb.users.find_one({"_id": "123"}),
            await adb.items.count_documents({}),
        ]

    with tape.replay():
        replayed = run(make, blackhole.uri, name, awaited)
    blackhole.assert_untouched()
    assert snapshot(replayed) == snapshot(recorded)
