"""Differential tests: every scenario runs off, recording and replaying, and must look the same.

Each case runs one :class:`~._differential.Scenario` three times with the same client options:
with timetracer off and while recording (both on the test server, from the same seed: recording
must be transparent), then replaying from the cassette against a dead address (replay must give
back exactly what the recording saw, and must not attempt a single connection). Outcomes are
compared recursively by exact type and ``repr``.

Parametrised over every BSON type (read back, written, used as an ``_id``, an upserted id, a
duplicate key, a bulk error's ``op``), client codec options, the covered methods with their
options, and the fidelity classes of issue #9: ``$``-keyed user documents, key order, write
results and error details in the client's codec, bulk writes failing part-way, cursor attributes.
Cases whose write cannot be encoded by the client itself (a client-side error) are issue #9
item 4's and live in ``test_differential_pending_9b.py``.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, Tuple

import bson
import pymongo
import pytest
from bson import SON, Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, ReturnDocument, UpdateMany, UpdateOne
from pymongo.collation import Collation

from ._differential import REGISTRY, Raised, Scenario, cursor_state, observe, read_cursor

TZ = datetime.timezone(datetime.timedelta(hours=5, minutes=30))


CLIENTS: Dict[str, Dict[str, Any]] = {
    "default": {},
    "tz_aware": {"tz_aware": True},
    "tz_aware-tzinfo": {"tz_aware": True, "tzinfo": TZ},
    "uuid-standard": {"uuidRepresentation": "standard"},
    "uuid-pythonLegacy": {"uuidRepresentation": "pythonLegacy"},
    "uuid-unspecified": {"uuidRepresentation": "unspecified"},
    "SON": {"document_class": SON},
    "OrderedDict": {"document_class": OrderedDict},
    "RawBSONDocument": {"document_class": RawBSONDocument},
    "type_registry": {"type_registry": REGISTRY, "uuidRepresentation": "standard", "tz_aware": True},
}

# Every BSON type a Python app can send or receive, with the variants that decoding options change.
BSON_VALUES: Dict[str, Any] = {
    "double": 1.5,
    "double-whole": 2.0,
    "double-nan": float("nan"),
    "double-inf": float("-inf"),
    "string": "ünïcødé ✓",
    "document": {"b": 1, "a": {"c": [1, Int64(2)]}},
    "array": [1, "x", [2, {"y": None}]],
    "binary": b"\x00\x01\xff",
    "binary-user": Binary(b"custom", 0x80),
    "binary-md5": Binary(b"0123456789abcdef", 5),
    "binary-legacy-uuid": Binary(uuid.UUID("87654321-4321-8765-4321-876543218765").bytes, 3),
    "binary-uuid": Binary(uuid.UUID("12345678-1234-5678-1234-567812345678").bytes, 4),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "objectid": ObjectId("5f43a1b2c3d4e5f6a7b8c9d0"),
    "bool": True,
    "datetime-micro": datetime.datetime(2021, 3, 4, 5, 6, 7, 891234),
    "datetime-aware": datetime.datetime(2021, 3, 4, 5, 6, 7, tzinfo=TZ),
    "datetime-1901": datetime.datetime(1901, 1, 1),
    "null": None,
    "regex": Regex("^al.*ce$", "im"),
    "dbref": DBRef("other", 5, "otherdb"),
    "code": Code("function () { return 1; }"),
    "code-scope": Code("function () { return x; }", {"x": 1}),
    "int32": 7,
    "int64": Int64(5),
    "int-big": 2**40,
    "timestamp": Timestamp(1_700_000_000, 7),
    "decimal128": Decimal128("1234.5678901234567890"),
    "minkey": MinKey(),
    "maxkey": MaxKey(),
    "decimal.Decimal": decimal.Decimal("2.50"),
}

# Types also written one call at a time (a DuplicateKeyError's details, a replace upsert).
SINGLE_WRITES = frozenset(
    {
        "datetime-micro",
        "datetime-aware",
        "uuid",
        "binary-legacy-uuid",
        "int64",
        "document",
        "objectid",
        "decimal128",
        "double-nan",
        "timestamp",
    }
)


_CODECS: Dict[str, Any] = {}


def client_cannot_encode(value: Any, options: Dict[str, Any]) -> bool:
    """Whether a client with ``options`` refuses to encode ``value`` itself (no server involved)."""
    key = repr(sorted(options.items(), key=str))
    if key not in _CODECS:
        _CODECS[key] = pymongo.MongoClient(connect=False, **options).codec_options
    try:
        codec = _CODECS[key]
        bson.encode({"v": value}, codec_options=codec)
    except Exception:
        return True
    return False


def needs_type_registry(value: Any) -> bool:
    """Values only a client with a type registry can send (in a filter or update: issue #9
    item 4, normalising arguments with the client's codec, ``test_differential_pending_9b.py``)."""
    return client_cannot_encode(value, {"uuidRepresentation": "standard"})


def keeping(call: Callable[[Any], Any], args: Callable[[], Tuple[Any, ...]]) -> Callable[[Any], Any]:
    """A step that also shows the app's own arguments after the call (PyMongo adds ``_id``s)."""

    def step(coll: Any) -> Any:
        made = args()
        try:
            outcome: Any = observe(call(coll, *made))
        except Exception as exc:
            outcome = Raised.of(exc)
        return {"outcome": outcome, "args": made}

    return step


# -- scenarios ----------------------------------------------------------------------------------


def bson_types_scenario(options: Dict[str, Any], *, every_write: bool = False) -> Scenario:
    """Every BSON value read back, written, and used as an _id, upserted id and duplicate key.

    Values the client itself cannot encode (a native UUID without a UUID representation) are only
    read here: writing them fails client-side; values sent through the type registry's codec
    (``decimal.Decimal``) are read, not sent. Both are issue #9 item 4
    (``test_differential_pending_9b.py``, which passes ``every_write=True``).
    """
    writable = {
        name: value
        for name, value in BSON_VALUES.items()
        if every_write or not (client_cannot_encode(value, options) or needs_type_registry(value))
    }
    seed = [
        {"_id": f"t-{name}", "v": value, "nested": {"k": value, "arr": [value, {"deep": value}]}}
        for name, value in BSON_VALUES.items()
    ]
    steps: List[Tuple[str, Any]] = [
        ("find", lambda c: read_cursor(c.find().sort("_id", 1))),
        ("find_one", lambda c: c.find_one({"_id": "t-uuid"})),
        (
            "aggregate-replaceRoot",
            lambda c: read_cursor(
                c.aggregate(
                    [
                        {"$sort": {"_id": 1}},
                        {"$replaceRoot": {"newRoot": {"v": "$v", "n": "$nested", "_id": "$_id"}}},
                    ],
                    batchSize=7,
                )
            ),
        ),
        ("distinct", lambda c: c.distinct("v")),
        ("distinct-nested", lambda c: c.distinct("nested.arr")),
    ]
    values = list(writable.values())
    steps.append(
        (
            "find_one_and_update-every-value",
            lambda c: c.find_one_and_update(
                {"_id": "t-string"}, {"$set": {"w": dict(writable)}}, return_document=ReturnDocument.AFTER
            ),
        )
    )
    for name, value in writable.items():
        # UpdateResult.upserted_id is decoded with the client's options: one upsert per type.
        steps.append(
            (
                f"upsert-id:{name}",
                lambda c, v=value: c.update_one({"_id": v}, {"$set": {"n": 1}}, upsert=True),
            )
        )
        if name in SINGLE_WRITES:
            steps += [
                (
                    f"duplicate-key:{name}",
                    keeping(lambda c, d: c.insert_one(d), lambda v=value: ({"_id": v, "d": 1},)),
                ),
                (
                    f"replace_one-upsert:{name}",
                    lambda c, v=value, n=name: c.replace_one({"_id": f"r-{n}"}, {"r": v}, upsert=True),
                ),
            ]
    steps += [
        (
            "insert_many-duplicates",
            keeping(
                lambda c, *docs: c.insert_many(list(docs), ordered=False),
                lambda: (
                    *(
                        {"_id": v, "t": (1, v), "when": datetime.datetime(2020, 1, 2, 3, 4, 5, 678901)}
                        for v in values
                    ),
                    {"m": 1},
                    {"m": 2},
                ),
            ),
        ),
        (
            "bulk_write-partial",
            keeping(
                lambda c, *ops: c.bulk_write(list(ops), ordered=False),
                lambda: (
                    *(
                        op
                        for i, v in enumerate(values)
                        for op in (
                            UpdateOne({"_id": f"b-{i}"}, {"$set": {"v": v, "t": (v,)}}, upsert=True),
                            InsertOne({"_id": v}),
                            ReplaceOne({"_id": f"c-{i}"}, {"v": v}, upsert=True),
                        )
                    ),
                    InsertOne({"a": 1}),
                    InsertOne(SON([("z", 2), ("v", values)])),
                    DeleteOne({"_id": "nothing"}),
                ),
            ),
        ),
        (
            "bulk_write-ordered-stops",
            keeping(
                lambda c, *ops: c.bulk_write(list(ops)),
                lambda: (InsertOne({"q": 1}), InsertOne({"_id": "t-string"}), InsertOne({"q": 2})),
            ),
        ),
        ("count_documents", lambda c: c.count_documents({})),
        ("after", lambda c: read_cursor(c.find().sort("_id", 1))),
    ]
    return Scenario("bson-types", steps, seed=seed)


DOLLAR_DOCS: Dict[str, Any] = {
    "numberLong": {"$numberLong": "5"},
    "date": {"$date": "2020-01-01T00:00:00Z"},
    "date-number": {"$date": {"$numberLong": "0"}},
    "oid-malformed": {"$oid": "x"},
    "oid": {"$oid": "5f43a1b2c3d4e5f6a7b8c9d0"},
    "regex": {"$regex": "^a", "$options": "i"},
    "binary": {"$binary": {"base64": "AA==", "subType": "00"}},
    "undefined": {"$undefined": True},
    "minKey": {"$minKey": 1},
    "ref": {"$ref": 5},
    "uuid": {"$uuid": "12345678-1234-5678-1234-567812345678"},
    "literal": {"$tt_literal": {"$oid": "y"}},
    "two-keys": {"$numberDecimal": "1", "other": 2},
    "gt": {"$gt": 1},
}


def dollar_keys_scenario() -> Scenario:
    """User documents whose keys look like Extended JSON type markers come back as documents."""
    seed = [{"_id": name, "v": doc, "list": [doc], "deep": {"x": doc}} for name, doc in DOLLAR_DOCS.items()]
    return Scenario(
        "dollar-keys",
        [
            ("find", lambda c: read_cursor(c.find().sort("_id", 1))),
            ("find_one", lambda c: c.find_one({"_id": "oid-malformed"})),
            (
                "aggregate",
                lambda c: read_cursor(c.aggregate([{"$sort": {"_id": 1}}, {"$project": {"v": 1}}])),
            ),
            (
                "find_one_and_replace",
                lambda c: c.find_one_and_replace(
                    {"_id": "date"}, {"v": {"$date": 1}}, return_document=ReturnDocument.AFTER
                ),
            ),
            ("distinct", lambda c: c.distinct("deep")),
            (
                "insert_one",
                keeping(lambda c, d: c.insert_one(d), lambda: ({"_id": "new", "v": {"$oid": "z"}},)),
            ),
            ("read-back", lambda c: c.find_one({"_id": "new"})),
        ],
        seed=seed,
    )


def raw(document: Dict[str, Any]) -> RawBSONDocument:
    return RawBSONDocument(bson.encode(document))


def key_order_scenario() -> Scenario:
    """Documents keep the server's key order, ``_id`` wherever it is."""
    seed = [SON([("b", i), ("a", {"z": 1, "y": {"_id": i, "x": 2}}), ("_id", i)]) for i in range(5)]
    return Scenario(
        "key-order",
        [
            ("find-projection", lambda c: read_cursor(c.find({}, {"a": 1, "b": 1}).sort("_id", 1))),
            (
                "aggregate-replaceRoot",
                lambda c: read_cursor(
                    c.aggregate(
                        [
                            {"$sort": {"_id": 1}},
                            {"$replaceRoot": {"newRoot": {"b": "$b", "_id": "$_id", "a": "$a"}}},
                        ]
                    )
                ),
            ),
            (
                "aggregate-project",
                lambda c: read_cursor(
                    c.aggregate([{"$project": {"_id": 0, "a": 1, "id": "$_id"}}, {"$sort": {"id": -1}}])
                ),
            ),
            (
                "find_one_and_update",
                lambda c: c.find_one_and_update(
                    {"_id": 1},
                    {"$set": {"c": 1}},
                    projection={"a": 1, "c": 1},
                    return_document=ReturnDocument.AFTER,
                ),
            ),
            (
                "find_one_and_replace-raw",
                lambda c: c.find_one_and_replace(
                    {"_id": 2}, raw({"q": 1, "_id": 2}), return_document=ReturnDocument.AFTER
                ),
            ),
            ("find_one_and_delete", lambda c: c.find_one_and_delete({"_id": 3}, projection={"a": 1})),
            (
                "upserted-document",
                lambda c: c.find_one_and_update(
                    {"_id": 9}, {"$set": {"m": 1, "a": 2}}, upsert=True, return_document=ReturnDocument.AFTER
                ),
            ),
            ("nested", lambda c: c.find_one({"_id": 4}, {"a.y": 1})),
        ],
        seed=seed,
    )


def cursor_scenario() -> Scenario:
    """Cursor attributes between reads: retrieved, alive, cursor_id, address."""
    seed = [{"_id": i, "g": i % 3} for i in range(30)]

    def partial_then_close(c: Any) -> Any:
        cursor = c.find().sort("_id", 1).batch_size(7)
        seen = [cursor_state(cursor), next(cursor), next(cursor), cursor_state(cursor)]
        cursor.close()
        seen.append(cursor_state(cursor))
        return seen

    def within_with(c: Any) -> Any:
        with c.find({"g": 1}).batch_size(4) as cursor:
            first = [next(cursor) for _ in range(5)]
            inside = cursor_state(cursor)
        return first, inside, cursor_state(cursor)

    def empty_aggregate(c: Any) -> Any:
        cursor = c.aggregate([{"$match": {"g": 99}}])
        return cursor_state(cursor), list(cursor), cursor_state(cursor)

    def aggregate_unread(c: Any) -> Any:
        cursor = c.aggregate([{"$sort": {"_id": 1}}], batchSize=5)
        state = cursor_state(cursor)
        cursor.close()
        return state, cursor_state(cursor)

    def read_one_batch_exactly(c: Any) -> Any:
        cursor = c.find().sort("_id", -1).batch_size(10)
        docs = [next(cursor) for _ in range(10)]
        return docs, cursor_state(cursor)

    return Scenario(
        "cursors",
        [
            ("batches", lambda c: read_cursor(c.find().sort("_id", 1).batch_size(7), first=8)),
            ("one-batch", lambda c: read_cursor(c.find({"g": 2}))),
            ("limit", lambda c: read_cursor(c.find().sort("_id", 1).limit(12).batch_size(5), first=3)),
            ("skip-limit", lambda c: read_cursor(c.find().sort("_id", -1).skip(3).limit(4))),
            ("partial-close", partial_then_close),
            ("with-block", within_with),
            ("aggregate-empty-first-batch", empty_aggregate),
            (
                "aggregate-batches",
                lambda c: read_cursor(c.aggregate([{"$sort": {"_id": 1}}], batchSize=4), first=6),
            ),
            ("aggregate-unread", aggregate_unread),
            ("batch-boundary", read_one_batch_exactly),
            ("to-list", lambda c: list(c.find({"g": 0}).sort("_id", 1).batch_size(3))),
            ("empty-find", lambda c: read_cursor(c.find({"g": 99}))),
        ],
        seed=seed,
    )


def large_batches_scenario() -> Scenario:
    """Server batches larger than replay decodes at a time (101 first, then the rest)."""
    seed = [{"_id": i, "s": "x" * (i % 7)} for i in range(260)]

    def next_by_next(c: Any) -> Any:
        cursor = c.find().sort("_id", 1)
        docs = [next(cursor) for _ in range(230)]
        return docs, cursor_state(cursor), list(cursor), cursor_state(cursor)

    def to_list_in_parts(c: Any) -> Any:
        cursor = c.find().sort("_id", -1)
        first = next(cursor)
        if hasattr(cursor, "to_list"):  # PyMongo 4.9+
            return first, cursor.to_list(150), cursor_state(cursor), cursor.to_list(), cursor_state(cursor)
        return first, list(cursor), cursor_state(cursor)

    def partial_of_a_big_batch(c: Any) -> Any:
        cursor = c.find({"_id": {"$gte": 10}}).sort("_id", 1).batch_size(200)
        docs = [next(cursor) for _ in range(120)]
        state = cursor_state(cursor)
        cursor.close()
        return docs, state, cursor_state(cursor)

    return Scenario(
        "large-batches",
        [
            ("list", lambda c: read_cursor(c.find().sort("_id", 1), first=150)),
            ("next", next_by_next),
            ("to_list", to_list_in_parts),
            ("partial", partial_of_a_big_batch),
            ("aggregate", lambda c: read_cursor(c.aggregate([{"$sort": {"_id": -1}}]), first=120)),
        ],
        seed=seed,
    )


def methods_scenario() -> Scenario:
    """Every covered method with its options."""
    seed = [{"_id": i, "name": f"n{i:02d}", "g": i % 4, "tags": ["a", "b"][: i % 3]} for i in range(12)]
    return Scenario(
        "methods",
        [
            (
                "find-options",
                lambda c: read_cursor(
                    c.find({"g": {"$in": [1, 2]}}, {"name": 1}).sort([("g", -1), ("_id", 1)]).skip(1).limit(5)
                ),
            ),
            ("find-projection-list", lambda c: read_cursor(c.find({}, ["g"]).sort("_id", 1).limit(3))),
            ("find-hint", lambda c: read_cursor(c.find({"g": 1}).hint([("_id", 1)]))),
            (
                "find-collation",
                lambda c: read_cursor(c.find({"name": "N01"}).collation(Collation("en", strength=2))),
            ),
            ("find-comment-max-time", lambda c: read_cursor(c.find({"g": 3}).comment("x").max_time_ms(5000))),
            ("find_one-sort", lambda c: c.find_one({"g": 2}, sort=[("_id", -1)])),
            ("find_one-none", lambda c: c.find_one({"g": 99})),
            ("find_one-by-id", lambda c: c.find_one(3)),
            ("count_documents", lambda c: c.count_documents({"g": 1}, skip=1, limit=5)),
            ("estimated_document_count", lambda c: c.estimated_document_count()),
            ("distinct-filter", lambda c: c.distinct("g", {"_id": {"$lt": 6}})),
            (
                "aggregate-group",
                lambda c: read_cursor(
                    c.aggregate([{"$group": {"_id": "$g", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}])
                ),
            ),
            ("insert_one", keeping(lambda c, d: c.insert_one(d), lambda: ({"name": "new"},))),
            (
                "insert_many-unordered",
                keeping(
                    lambda c, *d: c.insert_many(list(d), ordered=False),
                    lambda: ({"x": 1}, {"_id": 1}, {"x": 2}),
                ),
            ),
            (
                "insert_many-raw",
                keeping(
                    lambda c, *d: c.insert_many(list(d)),
                    lambda: (raw({"_id": "r1"}), {"k": 1}, raw({"k": 2})),
                ),
            ),
            ("insert_one-raw", keeping(lambda c, d: c.insert_one(d), lambda: (raw({"_id": "r2", "k": 1}),))),
            ("update_one", lambda c: c.update_one({"_id": 1}, {"$set": {"u": 1}})),
            ("update_many", lambda c: c.update_many({"g": 2}, {"$inc": {"g": 10}})),
            ("update_one-upsert", lambda c: c.update_one({"_id": "up"}, {"$set": {"u": 1}}, upsert=True)),
            ("update_one-pipeline", lambda c: c.update_one({"_id": 2}, [{"$set": {"p": "$name"}}])),
            (
                "update_one-array_filters",
                lambda c: c.update_one({"_id": 4}, {"$set": {"tags.$[t]": "z"}}, array_filters=[{"t": "a"}]),
            ),
            ("replace_one", lambda c: c.replace_one({"_id": 5}, {"name": "replaced"})),
            ("delete_one", lambda c: c.delete_one({"_id": 6})),
            ("delete_many", lambda c: c.delete_many({"g": 3})),
            (
                "find_one_and_update-before",
                lambda c: c.find_one_and_update(
                    {"g": 1}, {"$set": {"f": 1}}, sort=[("_id", -1)], projection={"f": 1, "g": 1}
                ),
            ),
            ("find_one_and_delete-none", lambda c: c.find_one_and_delete({"_id": "missing"})),
            (
                "bulk_write-ordered",
                keeping(
                    lambda c, *ops: c.bulk_write(list(ops)),
                    lambda: (
                        InsertOne({"b": 1}),
                        UpdateMany({"g": 0}, {"$set": {"bw": 1}}),
                        ReplaceOne({"_id": 7}, {"r": 1}),
                        DeleteMany({"g": 12}),
                        UpdateOne({"_id": "bw-up"}, {"$set": {"x": 1}}, upsert=True),
                        InsertOne({"_id": 0}),
                        InsertOne({"never": "sent"}),
                    ),
                ),
            ),
            (
                "unacknowledged",
                lambda c: c.with_options(write_concern=pymongo.WriteConcern(w=0)).delete_one({"_id": "none"}),
            ),
            ("command-count", lambda c: c.database.command("count", c.name, query={"g": 0})),
            ("command-ping", lambda c: c.database.command({"ping": 1})),
            (
                "list_collection_names",
                lambda c: sorted(n for n in c.database.list_collection_names() if n == c.name),
            ),
            (
                "collection-codec_options",
                lambda c: read_cursor(
                    c.with_options(codec_options=CodecOptions(tz_aware=True, document_class=SON)).find(
                        {"g": 1}
                    )
                ),
            ),
            (
                "command-codec_options",
                lambda c: c.database.command("count", c.name, codec_options=CodecOptions(document_class=SON)),
            ),
            (
                "list_collection_names-filter",
                lambda c: c.database.list_collection_names(filter={"name": c.name}),
            ),
            ("count_documents-hint", lambda c: c.count_documents({"g": 1}, hint="_id_")),
            ("distinct-collation", lambda c: c.distinct("name", collation=Collation("en", strength=2))),
            ("update_many-hint", lambda c: c.update_many({"g": 1}, {"$set": {"h": 1}}, hint=[("_id", 1)])),
            (
                "delete_many-collation",
                lambda c: c.delete_many({"name": "N11"}, collation=Collation("en", strength=2)),
            ),
            (
                "find_one_and_replace-upsert",
                lambda c: c.find_one_and_replace(
                    {"_id": "far"}, {"new": True}, upsert=True, return_document=ReturnDocument.AFTER
                ),
            ),
            (
                "aggregate-let",
                lambda c: read_cursor(
                    c.aggregate([{"$match": {"$expr": {"$eq": ["$g", "$$want"]}}}], let={"want": 2})
                ),
            ),
            ("error-find", lambda c: read_cursor(c.find({"$bad": 1}))),
            ("error-aggregate", lambda c: read_cursor(c.aggregate([{"$nope": {}}]))),
            ("error-command", lambda c: c.database.command("definitelyNotACommand")),
            ("error-update", lambda c: c.update_one({"_id": 1}, {"$set": {"_id": 2}})),
            # (the raw document inserted without an _id got one from the server: not compared)
            ("after", lambda c: read_cursor(c.find({"k": {"$ne": 2}}).sort("_id", 1))),
        ],
        seed=seed,
    )


def _type_cases() -> Iterator[Any]:
    for client_id, options in CLIENTS.items():
        yield pytest.param(bson_types_scenario(options), options, id=f"bson-types-{client_id}")


def _class_cases() -> Iterator[Any]:
    for client_id, options in CLIENTS.items():
        for scenario in (dollar_keys_scenario(), key_order_scenario(), cursor_scenario(), methods_scenario()):
            yield pytest.param(scenario, options, id=f"{scenario.name}-{client_id}")
    for client_id in ("default", "RawBSONDocument", "SON"):
        yield pytest.param(large_batches_scenario(), CLIENTS[client_id], id=f"large-batches-{client_id}")


@pytest.mark.parametrize(("scenario", "options"), list(_type_cases()))
def test_every_bson_type_is_the_same_off_recording_and_replaying(
    scenario: Scenario, options: Dict[str, Any], differential: Callable[..., None]
) -> None:
    differential(scenario, options)


@pytest.mark.parametrize(("scenario", "options"), list(_class_cases()))
def test_every_method_and_fidelity_class_is_the_same_off_recording_and_replaying(
    scenario: Scenario, options: Dict[str, Any], differential: Callable[..., None]
) -> None:
    differential(scenario, options)


def test_the_harness_sees_a_difference() -> None:
    """The comparison is strict: what the issue lists as silent differences fail it."""
    from ._differential import assert_identical

    cases = [
        ({"_id": 1, "a": 2}, {"a": 2, "_id": 1}),
        (SON([("a", 1)]), {"a": 1}),
        ((1, 2), [1, 2]),
        (Int64(5), 5),
        (datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc), datetime.datetime(2020, 1, 1)),
        (datetime.datetime(2020, 1, 1, 0, 0, 0, 123000), datetime.datetime(2020, 1, 1, 0, 0, 0, 123456)),
        (Binary(uuid.UUID(int=1).bytes, 4), uuid.UUID(int=1)),
        ({"$numberLong": "5"}, Int64(5)),
    ]
    for replayed, live in cases:
        with pytest.raises(AssertionError):
            assert_identical(replayed, live)
