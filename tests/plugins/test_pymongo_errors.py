"""Exceptions raised by PyMongo while recording are raised again in replay, unchanged.

Each test makes the live server (or a dead address) raise, then replays the same call and checks
the user-visible parts: class, ``code``, ``details``, error labels and ``str()``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import pymongo
import pytest
from pymongo import InsertOne, UpdateOne
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteError,
)

from ._support import Tape, assert_same

Work = Callable[[Any], Any]


def _raised(work: Work, db: Any) -> PyMongoError:
    with pytest.raises(PyMongoError) as caught:
        work(db)
    return caught.value


def assert_same_error(replayed: PyMongoError, live: PyMongoError) -> None:
    assert type(replayed) is type(live)
    assert str(replayed) == str(live)
    assert getattr(replayed, "code", None) == getattr(live, "code", None)
    assert_same(getattr(replayed, "details", None), getattr(live, "details", None), "details")
    for label in ("TransientTransactionError", "RetryableWriteError", "NoWritesPerformed"):
        assert replayed.has_error_label(label) == live.has_error_label(label)


@pytest.fixture
def users_db(fresh_db: Any) -> Any:
    fresh_db.users.insert_many([{"_id": 1, "name": "a", "n": 1}, {"_id": 2, "name": "b", "n": "text"}])
    return fresh_db


FAILING_CALLS = [
    pytest.param(lambda db: db.users.insert_one({"_id": 1}), DuplicateKeyError, id="insert_one-duplicate"),
    pytest.param(
        lambda db: db.users.update_one({"_id": 2}, {"$inc": {"n": 1}}), WriteError, id="inc-on-a-string"
    ),
    pytest.param(
        lambda db: db.users.update_many({}, {"$bogus": {"n": 1}}), WriteError, id="unknown-update-operator"
    ),
    pytest.param(
        lambda db: db.users.replace_one({"_id": 1}, {"_id": 2, "name": "clash"}),
        WriteError,
        id="replace-changes-id",
    ),
    pytest.param(
        lambda db: db.users.insert_many([{"_id": 3}, {"_id": 1}, {"_id": 4}]),
        BulkWriteError,
        id="insert_many-dup",
    ),
    pytest.param(
        lambda db: db.users.bulk_write(
            [InsertOne({"_id": 5}), InsertOne({"_id": 5}), UpdateOne({"_id": 1}, {"$set": {"x": 1}})]
        ),
        BulkWriteError,
        id="bulk_write-dup",
    ),
    pytest.param(
        lambda db: db.users.bulk_write([InsertOne({"_id": 1}), InsertOne({"_id": 6})], ordered=False),
        BulkWriteError,
        id="bulk_write-unordered",
    ),
    pytest.param(
        lambda db: list(db.users.find({"n": {"$bogus": 1}})), OperationFailure, id="find-bad-operator"
    ),
    pytest.param(
        lambda db: db.users.find_one({"n": {"$bogus": 1}}), OperationFailure, id="find_one-bad-operator"
    ),
    pytest.param(
        lambda db: list(db.users.aggregate([{"$bogus": {}}])), OperationFailure, id="aggregate-bad-stage"
    ),
    pytest.param(lambda db: db.command("noSuchCommand"), OperationFailure, id="unknown-command"),
    pytest.param(
        lambda db: db.users.find_one_and_update({"_id": 2}, {"$inc": {"n": 1}}),
        OperationFailure,
        id="find_one_and_update-inc-on-a-string",
    ),
]


@pytest.mark.parametrize(("work", "expected"), FAILING_CALLS)
def test_a_recorded_error_is_raised_again_in_replay(
    work: Work, expected: type, users_db: Any, dead_client: Callable[..., Any], tape: Tape, blackhole: Any
) -> None:
    with tape.record():
        live = _raised(work, users_db)
    assert isinstance(live, expected)
    (event,) = tape.events
    assert event["result"]["status"] == 1
    assert event["result"]["error"]["type"].endswith(type(live).__name__)

    with tape.replay():
        replayed = _raised(work, dead_client()[users_db.name])
    assert_same_error(replayed, live)
    blackhole.assert_untouched()


def test_duplicate_key_error_keeps_code_and_details(
    users_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        with pytest.raises(DuplicateKeyError) as live:
            users_db.users.insert_one({"_id": 2, "name": "again"})
    with tape.replay():
        with pytest.raises(DuplicateKeyError) as replayed:
            dead_client()[users_db.name].users.insert_one({"_id": 2, "name": "again"})
    assert replayed.value.code == live.value.code == 11000
    assert replayed.value.details == live.value.details
    assert str(replayed.value) == str(live.value)


def test_bulk_write_error_details_name_the_failed_write(
    users_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Dict[str, Any]:
        with pytest.raises(BulkWriteError) as caught:
            db.users.bulk_write([InsertOne({"_id": 10}), InsertOne({"_id": 1}), InsertOne({"_id": 11})])
        return caught.value.details

    with tape.record():
        live = work(users_db)
    assert live["nInserted"] == 1 and live["writeErrors"][0]["index"] == 1
    with tape.replay():
        replayed = work(dead_client()[users_db.name])
    assert_same(replayed, live)


def test_a_failed_insert_still_gives_documents_their_recorded_ids(
    users_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    # PyMongo adds the _ids before sending, so after a failed insert_many the app's documents
    # have them; replay gives them the same ones.
    def work(db: Any) -> List[Dict[str, Any]]:
        documents = [{"name": "new"}, {"_id": 1}, {"name": "never sent"}]
        with pytest.raises(BulkWriteError):
            db.users.insert_many(documents)
        return documents

    with tape.record():
        live = work(users_db)
    with tape.replay():
        replayed = work(dead_client()[users_db.name])
    assert [d.get("_id") for d in replayed] == [d.get("_id") for d in live]


def test_server_selection_timeout_is_recorded_and_replayed(
    dead_mongo_uri: str, make_client: Callable[..., Any], dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        down = make_client(dead_mongo_uri, serverSelectionTimeoutMS=200)
        with pytest.raises(ServerSelectionTimeoutError) as live:
            down.app.users.find_one({"_id": 1})
    (event,) = tape.events
    assert event["result"]["error"]["type"] == "pymongo.errors.ServerSelectionTimeoutError"

    with tape.replay():
        dead = make_client(dead_mongo_uri, serverSelectionTimeoutMS=200)
        with pytest.raises(ServerSelectionTimeoutError) as replayed:
            dead.app.users.find_one({"_id": 1})
    assert_same_error(replayed.value, live.value)


def test_an_error_does_not_stop_the_next_calls_replaying(
    users_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        with pytest.raises(DuplicateKeyError):
            db.users.insert_one({"_id": 1})
        return db.users.count_documents({}), db.users.find_one({"_id": 1})

    with tape.record():
        live = work(users_db)
    with tape.replay():
        replayed = work(dead_client()[users_db.name])
    assert_same(replayed, live)


def test_errors_are_pymongo_errors_users_already_catch(
    users_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        with pytest.raises(pymongo.errors.OperationFailure):
            users_db.users.insert_one({"_id": 1})
    with tape.replay():
        try:
            dead_client()[users_db.name].users.insert_one({"_id": 1})
        except pymongo.errors.PyMongoError as exc:  # what an app's handler catches
            assert isinstance(exc, DuplicateKeyError)
        else:
            pytest.fail("the recorded DuplicateKeyError was not raised")
