"""Every supported PyMongo operation, recorded against the test server and replayed with none.

Each test records one user call, then replays it on a client whose address never accepts a
connection, and compares the replayed value with what the live server returned (value and type).
"""

from __future__ import annotations

from typing import Any, Callable, List

import pymongo
import pytest
from bson import ObjectId
from jsonschema import Draft202012Validator
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, ReturnDocument, UpdateMany, UpdateOne
from pymongo.collection import Collection

from timetracer.cassette import load_schema

from ._support import Tape, assert_same, observe, result_fields

Op = Callable[[Collection], Any]


def seed(coll: Collection) -> None:
    coll.insert_many(
        [
            {"_id": i, "name": f"user{i}", "g": i % 3, "score": i * 1.5, "tags": ["t", str(i)]}
            for i in range(12)
        ]
    )


OPERATIONS = [
    pytest.param(lambda c: c.find({"g": 1}), "FIND", id="find"),
    pytest.param(lambda c: c.find(), "FIND", id="find-all"),
    pytest.param(lambda c: c.find_one({"g": 2}), "FIND_ONE", id="find_one"),
    pytest.param(lambda c: c.find_one(4), "FIND_ONE", id="find_one-by-id-value"),
    pytest.param(lambda c: c.find_one({"g": 99}), "FIND_ONE", id="find_one-none"),
    pytest.param(lambda c: c.find_one({}, skip=2, sort=[("_id", -1)]), "FIND_ONE", id="find_one-skip-sort"),
    pytest.param(
        lambda c: c.find_one({"_id": 1}, {"tags": 1, "_id": 0}), "FIND_ONE", id="find_one-projection"
    ),
    pytest.param(lambda c: c.find().sort("_id").limit(-2), "FIND", id="find-negative-limit"),
    pytest.param(lambda c: c.count_documents({"g": 1}), "COUNT_DOCUMENTS", id="count_documents"),
    pytest.param(lambda c: c.count_documents({}, skip=2, limit=5), "COUNT_DOCUMENTS", id="count-skip-limit"),
    pytest.param(lambda c: c.estimated_document_count(), "ESTIMATED_DOCUMENT_COUNT", id="estimated_count"),
    pytest.param(lambda c: c.distinct("g"), "DISTINCT", id="distinct"),
    pytest.param(lambda c: c.distinct("name", {"g": 0}), "DISTINCT", id="distinct-filter"),
    pytest.param(
        lambda c: c.aggregate([{"$match": {"g": {"$gt": 0}}}, {"$group": {"_id": "$g", "n": {"$sum": 1}}}]),
        "AGGREGATE",
        id="aggregate",
    ),
    pytest.param(lambda c: c.insert_one({"name": "new"}), "INSERT_ONE", id="insert_one"),
    pytest.param(lambda c: c.insert_one({"_id": "own", "x": 1}), "INSERT_ONE", id="insert_one-own-id"),
    pytest.param(lambda c: c.insert_many([{"k": 1}, {"k": 2}]), "INSERT_MANY", id="insert_many"),
    pytest.param(
        lambda c: c.insert_many({"k": k} for k in range(3)), "INSERT_MANY", id="insert_many-generator"
    ),
    pytest.param(
        lambda c: c.insert_many([{"k": 1}, {"k": 2}], ordered=False),
        "INSERT_MANY",
        id="insert_many-unordered",
    ),
    pytest.param(lambda c: c.update_one({"_id": 1}, {"$set": {"x": 1}}), "UPDATE_ONE", id="update_one"),
    pytest.param(
        lambda c: c.update_one({"_id": 99}, {"$set": {"x": 1}}, upsert=True),
        "UPDATE_ONE",
        id="update_one-upsert",
    ),
    pytest.param(lambda c: c.update_many({"g": 1}, {"$inc": {"score": 1}}), "UPDATE_MANY", id="update_many"),
    pytest.param(lambda c: c.replace_one({"_id": 2}, {"name": "two"}), "REPLACE_ONE", id="replace_one"),
    pytest.param(lambda c: c.delete_one({"_id": 3}), "DELETE_ONE", id="delete_one"),
    pytest.param(lambda c: c.delete_many({"g": 2}), "DELETE_MANY", id="delete_many"),
    pytest.param(
        lambda c: c.find_one_and_update({"_id": 5}, {"$set": {"x": 5}}, return_document=ReturnDocument.AFTER),
        "FIND_ONE_AND_UPDATE",
        id="find_one_and_update",
    ),
    pytest.param(
        lambda c: c.find_one_and_replace({"_id": 6}, {"name": "six"}),
        "FIND_ONE_AND_REPLACE",
        id="find_one_and_replace",
    ),
    pytest.param(
        lambda c: c.find_one_and_delete({"_id": 7}), "FIND_ONE_AND_DELETE", id="find_one_and_delete"
    ),
    pytest.param(
        lambda c: c.bulk_write(
            [
                InsertOne({"_id": 100}),
                UpdateOne({"_id": 1}, {"$set": {"b": 1}}),
                UpdateMany({"g": 0}, {"$set": {"b": 2}}),
                ReplaceOne({"_id": 2}, {"r": 1}),
                DeleteOne({"_id": 4}),
                DeleteMany({"g": 2}),
                UpdateOne({"_id": 200}, {"$set": {"u": 1}}, upsert=True),
            ]
        ),
        "BULK_WRITE",
        id="bulk_write",
    ),
    pytest.param(lambda c: c.database.command("ping"), "COMMAND", id="command-ping"),
    pytest.param(lambda c: c.database.command("count", c.name), "COMMAND", id="command-count"),
    pytest.param(
        lambda c: c.database.command({"distinct": c.name, "key": "g"}), "COMMAND", id="command-document"
    ),
    pytest.param(lambda c: c.database.command("find", c.name, filter={"g": 1}), "COMMAND", id="command-find"),
    pytest.param(
        lambda c: sorted(c.database.list_collection_names()), "LIST_COLLECTION_NAMES", id="list_names"
    ),
    pytest.param(
        lambda c: c.database.list_collection_names(filter={"name": c.name}),
        "LIST_COLLECTION_NAMES",
        id="list_names-filter",
    ),
]


@pytest.mark.parametrize(("operation", "method"), OPERATIONS)
def test_operation_replays_what_the_server_returned(
    operation: Op, method: str, fresh_db: Any, dead_client: Callable[..., Any], tape: Tape, blackhole: Any
) -> None:
    seed(fresh_db.users)
    with tape.record():
        live = observe(operation(fresh_db.users))

    assert tape.methods() == [method]  # one event per user call
    event = tape.events[0]
    assert event["signature"]["lib"] == "pymongo"
    assert event["signature"]["url"] in (fresh_db.users.full_name, f"{fresh_db.name}.$cmd")

    with tape.replay():
        replayed = observe(operation(dead_client()[fresh_db.name].users))
    assert_same(replayed, live)
    blackhole.assert_untouched()


def test_find_one_is_one_event_with_the_spec_signature(myapp_db: Any, tape: Tape) -> None:
    myapp_db.users.insert_one({"_id": "123", "name": "Alice", "email": "alice@example.com", "age": 30})
    with tape.record():
        user = myapp_db.users.find_one({"_id": "123"})

    assert user == {"_id": "123", "name": "Alice", "email": "alice@example.com", "age": 30}
    (event,) = tape.events
    signature = event["signature"]
    assert signature["lib"] == "pymongo"
    assert signature["method"] == "FIND_ONE"
    assert signature["url"] == "myapp.users"
    assert signature["query"] == {"filter_keys": ["_id"]}
    assert isinstance(signature["body_hash"], str) and signature["body_hash"]
    assert event["event_type"] == "db.query"
    assert event["result"]["status"] == 0
    assert event["result"]["body"] == {"captured": True, "data": user}


@pytest.mark.parametrize(
    ("recorded", "replayed"),
    [
        pytest.param(
            lambda c: c.find_one("123"), lambda c: c.find_one({"_id": "123"}), id="value-then-filter"
        ),
        pytest.param(
            lambda c: c.find_one({"_id": "123"}), lambda c: c.find_one("123"), id="filter-then-value"
        ),
        pytest.param(
            lambda c: c.find_one(filter="123"), lambda c: c.find_one("123"), id="keyword-then-value"
        ),
    ],
)
def test_find_one_by_id_value_is_the_same_call_as_by_id_filter(
    recorded: Op, replayed: Op, fresh_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    fresh_db.users.insert_one({"_id": "123", "name": "Alice"})
    with tape.record():
        live = recorded(fresh_db.users)
    assert live == {"_id": "123", "name": "Alice"}
    assert tape.events[0]["signature"]["query"] == {"filter_keys": ["_id"]}

    with tape.replay():
        assert_same(replayed(dead_client()[fresh_db.name].users), live)


# -- write results -------------------------------------------------------------------------------


def test_insert_one_in_replay_gives_the_callers_document_the_recorded_id(
    fresh_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    live_doc = {"name": "Bob"}
    with tape.record():
        live = fresh_db.users.insert_one(live_doc)
    assert isinstance(live.inserted_id, ObjectId) and live_doc["_id"] == live.inserted_id

    replay_doc = {"name": "Bob"}
    with tape.replay():
        replayed = dead_client()[fresh_db.name].users.insert_one(replay_doc)
    assert type(replayed) is pymongo.results.InsertOneResult
    assert str(replayed.inserted_id) == str(live.inserted_id)
    assert replay_doc["_id"] == live.inserted_id  # as PyMongo would have set it
    assert replayed.acknowledged is live.acknowledged is True


def test_insert_many_in_replay_gives_each_document_its_recorded_id(
    fresh_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    live_docs: List[dict] = [{"n": 1}, {"n": 2}, {"_id": "mine", "n": 3}]
    with tape.record():
        live = fresh_db.users.insert_many(live_docs)

    replay_docs: List[dict] = [{"n": 1}, {"n": 2}, {"_id": "mine", "n": 3}]
    with tape.replay():
        replayed = dead_client()[fresh_db.name].users.insert_many(replay_docs)
    assert type(replayed) is pymongo.results.InsertManyResult
    assert_same(replayed.inserted_ids, live.inserted_ids)
    assert [d["_id"] for d in replay_docs] == [d["_id"] for d in live_docs]


def test_bulk_write_in_replay_gives_inserted_documents_their_recorded_ids(
    fresh_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    live_doc = {"n": 1}
    with tape.record():
        live = fresh_db.users.bulk_write([InsertOne(live_doc), DeleteMany({"n": 5})])

    replay_doc = {"n": 1}
    with tape.replay():
        replayed = dead_client()[fresh_db.name].users.bulk_write(
            [InsertOne(replay_doc), DeleteMany({"n": 5})]
        )
    assert_same(result_fields(replayed), result_fields(live))
    assert replay_doc["_id"] == live_doc["_id"]


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda c: c.insert_one({"a": 1}), id="insert_one"),
        pytest.param(lambda c: c.insert_many([{"a": 1}, {"a": 2}]), id="insert_many"),
        pytest.param(lambda c: c.update_one({"a": 1}, {"$set": {"b": 1}}), id="update_one"),
        pytest.param(lambda c: c.delete_many({}), id="delete_many"),
        pytest.param(lambda c: c.bulk_write([InsertOne({"a": 3})]), id="bulk_write"),
    ],
)
def test_unacknowledged_writes_replay_as_unacknowledged(
    operation: Op, fresh_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    from pymongo.write_concern import WriteConcern

    unacked = fresh_db.get_collection("users", write_concern=WriteConcern(w=0))
    with tape.record():
        live = operation(unacked)
    assert live.acknowledged is False

    with tape.replay():
        dead = dead_client()[fresh_db.name].get_collection("users", write_concern=WriteConcern(w=0))
        replayed = operation(dead)
    assert type(replayed) is type(live)
    assert replayed.acknowledged is False


def test_a_request_with_many_calls_replays_them_in_order(
    fresh_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> List[Any]:
        out = []
        out.append(db.users.insert_one({"name": "a"}).inserted_id)
        out.append(db.users.count_documents({}))
        out.append(db.users.insert_one({"name": "b"}).inserted_id)
        out.append(db.users.count_documents({}))  # same call, different answer: recorded order wins
        out.append(list(db.users.find({}, {"_id": 0}).sort("name")))
        out.append(db.users.delete_many({}).deleted_count)
        out.append(db.users.count_documents({}))
        return out

    with tape.record():
        live = work(fresh_db)
    assert live[1:4:2] == [1, 2]
    assert len(tape.events) == 7

    with tape.replay():
        assert_same(work(dead_client()[fresh_db.name]), live)


def test_cassettes_validate_against_the_json_schema(
    fresh_db: Any, tape: Tape, dead_mongo_uri: str, make_client: Callable[..., Any]
) -> None:
    seed(fresh_db.users)
    with tape.record():
        fresh_db.users.find_one({"_id": 1})
        cursor = fresh_db.users.find().batch_size(2)
        next(cursor)  # a cursor read partly
        list(fresh_db.users.aggregate([{"$match": {"g": 1}}]))
        fresh_db.users.insert_one({"name": "x"})
        fresh_db.users.bulk_write([InsertOne({"y": 1})])
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            fresh_db.users.insert_one({"_id": 1})
        with pytest.raises(pymongo.errors.ServerSelectionTimeoutError):
            make_client(dead_mongo_uri, serverSelectionTimeoutMS=100).db.c.count_documents({})
        fresh_db.command("ping")

    validator = Draft202012Validator(load_schema())
    document = tape.document
    assert document is not None
    assert len(document["events"]) == 8
    validator.validate(document)
    broken = dict(document, events=[{k: v for k, v in document["events"][0].items() if k != "signature"}])
    assert not validator.is_valid(broken)  # the check is real
