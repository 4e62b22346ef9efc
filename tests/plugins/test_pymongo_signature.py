"""Call signatures: equal calls written differently match, different calls do not.

Each test records two calls against the test server and compares their signatures; where a
user would rely on it, it also records one spelling and replays the other.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import pymongo
import pytest
from bson import SON
from pymongo import InsertOne
from pymongo.collation import Collation
from pymongo.collection import Collection

from timetracer.errors import ReplayMismatchError

from ._support import Tape, assert_same, observe

Op = Callable[[Collection], Any]


def _signatures(tape: Tape, coll: Collection, *operations: Op) -> List[Dict[str, Any]]:
    """Record ``operations`` in one session; return one signature per operation."""
    with tape.record():
        for operation in operations:
            observe(operation(coll))
    assert len(tape.events) == len(operations)
    return [event["signature"] for event in tape.events]


@pytest.fixture
def users(fresh_db: Any) -> Collection:
    fresh_db.users.insert_many([{"_id": i, "a": i % 4, "b": -i, "name": f"u{i}"} for i in range(10)])
    return fresh_db.users


SAME_CALLS = [
    pytest.param(
        lambda c: c.find().sort("a"),
        [
            lambda c: c.find().sort("a", 1),
            lambda c: c.find().sort([("a", 1)]),
            lambda c: c.find().sort({"a": 1}),
        ],
        id="sort-ascending-forms",
    ),
    pytest.param(
        lambda c: c.find().sort("a", -1),
        [
            lambda c: c.find().sort("a", pymongo.DESCENDING),
            lambda c: c.find().sort([("a", -1)]),
            lambda c: c.find().sort({"a": -1}),
            lambda c: c.find(sort=[("a", -1)]),
        ],
        id="sort-descending-forms",
    ),
    pytest.param(
        lambda c: c.find().sort([("a", 1), ("b", -1)]),
        [lambda c: c.find().sort({"a": 1, "b": -1}), lambda c: c.find().sort(SON([("a", 1), ("b", -1)]))],
        id="sort-compound-forms",
    ),
    pytest.param(
        lambda c: c.find({}, ["a", "name"]),
        [
            lambda c: c.find({}, {"a": 1, "name": 1}),
            lambda c: c.find({}, {"a": True, "name": True}),
            lambda c: c.find(projection=("a", "name")),
        ],
        id="projection-list-and-dict",
    ),
    pytest.param(
        lambda c: c.find_one({"a": 1}, ["name"]),
        [
            lambda c: c.find_one({"a": 1}, {"name": 1}),
            lambda c: c.find_one({"a": 1}, projection={"name": True}),
        ],
        id="find_one-projection",
    ),
    pytest.param(
        lambda c: c.find({"a": 1}),
        [
            lambda c: c.find({"a": 1}).comment("why"),
            lambda c: c.find({"a": 1}).max_time_ms(5000),
            lambda c: c.find({"a": 1}).batch_size(3),
            lambda c: c.find({"a": 1}, comment="why", max_time_ms=5000, batch_size=3),
        ],
        id="find-run-options",
    ),
    pytest.param(
        lambda c: c.find({}),
        [lambda c: c.find(), lambda c: c.find(None), lambda c: c.find(filter={})],
        id="empty-filter-forms",
    ),
    pytest.param(
        lambda c: c.find_one({"a": 2}),
        [lambda c: c.find_one({"a": 2}, comment="x"), lambda c: c.find_one({"a": 2}, max_time_ms=5000)],
        id="find_one-run-options",
    ),
    pytest.param(
        lambda c: c.count_documents({"a": 1}),
        [
            lambda c: c.count_documents({"a": 1}, comment="x"),
            lambda c: c.count_documents({"a": 1}, maxTimeMS=5000),
        ],
        id="count_documents-run-options",
    ),
    pytest.param(
        lambda c: c.update_many({"a": 3}, {"$set": {"z": 1}}),
        [lambda c: c.update_many({"a": 3}, {"$set": {"z": 1}}, comment="x", upsert=False)],
        id="update-comment-and-default",
    ),
    pytest.param(
        lambda c: c.aggregate([{"$match": {"a": 1}}]),
        [
            lambda c: c.aggregate([{"$match": {"a": 1}}], batchSize=2),
            # (a tuple pipeline is no other spelling: PyMongo refuses it, with or without timetracer)
            lambda c: c.aggregate([{"$match": {"a": 1}}], comment="x", maxTimeMS=5000),
        ],
        id="aggregate-run-options",
    ),
    pytest.param(
        lambda c: c.find({"a": 1, "b": -1}),
        [lambda c: c.find({"b": -1, "a": 1})],
        id="filter-key-order",
    ),
    pytest.param(
        lambda c: c.find().hint([("_id", 1)]),
        [lambda c: c.find(hint=[("_id", 1)])],
        id="hint-chained-and-keyword",
    ),
]


@pytest.mark.parametrize(("first", "others"), SAME_CALLS)
def test_equal_calls_written_differently_hash_the_same(
    first: Op, others: List[Op], users: Collection, tape: Tape
) -> None:
    signatures = _signatures(tape, users, first, *others)
    for signature in signatures[1:]:
        assert _call_key(signature) == _call_key(signatures[0])


def _call_key(signature: Dict[str, Any]) -> Any:
    """What replay matches on, plus the filter's keys (kept in the order the app wrote them)."""
    keys = sorted(signature["query"]["filter_keys"])
    return (signature["lib"], signature["method"], signature["url"], signature["body_hash"], keys)


def test_hint_by_name_and_by_keys_are_different_calls(users: Collection, tape: Tape) -> None:
    # hint("_id_") names an index; hint([("_id", 1)]) gives its keys: PyMongo sends different commands
    first, second = _signatures(
        tape, users, lambda c: c.find().hint("_id_"), lambda c: c.find().hint([("_id", 1)])
    )
    assert first["body_hash"] != second["body_hash"]


def test_the_session_argument_does_not_change_the_call(users: Collection, tape: Tape) -> None:
    client = users.database.client
    with client.start_session() as session:
        signatures = _signatures(
            tape,
            users,
            lambda c: c.find_one({"a": 1}),
            lambda c: c.find_one({"a": 1}, session=session),
            lambda c: c.count_documents({"a": 1}),
            lambda c: c.count_documents({"a": 1}, session=session),
            lambda c: c.find({"a": 1}),
            lambda c: c.find({"a": 1}, session=session),
        )
    assert signatures[0] == signatures[1]
    assert signatures[2] == signatures[3]
    assert signatures[4] == signatures[5]


DIFFERENT_CALLS = [
    pytest.param(lambda c: c.find_one({"a": 1}), lambda c: c.find_one({"a": 2}), id="filter-value"),
    pytest.param(lambda c: c.find_one({"a": 1}), lambda c: c.find_one({"a": "1"}), id="filter-value-type"),
    pytest.param(lambda c: c.find({"a": 1}), lambda c: c.find({"b": 1}), id="filter-key"),
    pytest.param(lambda c: c.find().sort("a"), lambda c: c.find().sort("a", -1), id="sort-direction"),
    pytest.param(
        lambda c: c.find().sort([("a", 1), ("b", 1)]),
        lambda c: c.find().sort([("b", 1), ("a", 1)]),
        id="sort-order",
    ),
    pytest.param(lambda c: c.find().skip(1), lambda c: c.find().skip(2), id="skip"),
    pytest.param(lambda c: c.find().limit(1), lambda c: c.find().limit(2), id="limit"),
    pytest.param(lambda c: c.find({}, ["a"]), lambda c: c.find({}, ["b"]), id="projection"),
    pytest.param(
        lambda c: c.update_one({"_id": 1}, {"$set": {"x": 1}}),
        lambda c: c.update_one({"_id": 1}, {"$set": {"x": 2}}),
        id="update-document",
    ),
    pytest.param(
        lambda c: c.update_one({"_id": 1}, {"$set": {"x": 1}}),
        lambda c: c.update_one({"_id": 1}, {"$set": {"x": 1}}, upsert=True),
        id="upsert",
    ),
    pytest.param(
        lambda c: c.find().collation(Collation("en", strength=1)),
        lambda c: c.find().collation(Collation("en", strength=2)),
        id="collation",
    ),
    pytest.param(lambda c: c.database.command("ping"), lambda c: c.database.command("dbStats"), id="command"),
]


@pytest.mark.parametrize(("first", "second"), DIFFERENT_CALLS)
def test_different_calls_hash_differently(first: Op, second: Op, users: Collection, tape: Tape) -> None:
    one, two = _signatures(tape, users, first, second)
    assert (one["method"], one["url"]) == (two["method"], two["url"])
    assert one["body_hash"] != two["body_hash"]


def test_a_changed_filter_value_keeps_filter_keys_but_does_not_replay(
    users: Collection, dead_client: Callable[..., Any], tape: Tape
) -> None:
    (recorded,) = _signatures(tape, users, lambda c: c.find_one({"a": 1, "name": "u1"}))
    assert recorded["query"] == {"filter_keys": ["a", "name"]}

    with tape.replay():
        dead = dead_client()[users.database.name].users
        with pytest.raises(ReplayMismatchError) as caught:
            dead.find_one({"a": 1, "name": "u5"})
    assert "FIND_ONE" in str(caught.value)
    assert "u5" in str(caught.value)


@pytest.mark.parametrize(
    ("recorded", "replayed"),
    [
        pytest.param(
            lambda c: c.find().sort("a"), lambda c: c.find().sort({"a": 1}), id="sort-string-vs-dict"
        ),
        pytest.param(
            lambda c: c.find({}, ["name"]), lambda c: c.find({}, {"name": 1}), id="projection-list-vs-dict"
        ),
        pytest.param(
            lambda c: c.find({"a": 1}).batch_size(2).comment("live"),
            lambda c: c.find({"a": 1}).max_time_ms(9000),
            id="run-options",
        ),
    ],
)
def test_a_call_recorded_in_one_spelling_replays_in_another(
    recorded: Op, replayed: Op, users: Collection, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        live = observe(recorded(users))
    with tape.replay():
        assert_same(observe(replayed(dead_client()[users.database.name].users)), live)


INSERTS = [
    pytest.param(lambda c: c.insert_one({"name": "x", "n": 1}), id="insert_one"),
    pytest.param(lambda c: c.insert_many([{"name": "x"}, {"name": "y"}]), id="insert_many"),
    pytest.param(lambda c: c.insert_many({"name": n} for n in "xy"), id="insert_many-generator"),
    pytest.param(lambda c: c.bulk_write([InsertOne({"name": "x"})]), id="bulk_write"),
]


@pytest.mark.parametrize("operation", INSERTS)
def test_inserted_documents_hash_the_same_across_recordings(
    operation: Op, fresh_db: Any, tmp_path: Any
) -> None:
    # PyMongo adds a fresh ObjectId to each document; the signature is taken before that.
    signatures = []
    for attempt in range(2):
        tape = Tape(tmp_path / f"{attempt}.json")
        with tape.record():
            operation(fresh_db.users)
        (event,) = tape.events
        signatures.append(event["signature"])
        assert "_id" not in str(event["args"])
    assert fresh_db.users.count_documents({}) >= 2  # both really ran
    assert signatures[0] == signatures[1]
