"""Replay needs no database: no connection is attempted, calls are answered from the cassette.

Replay clients point at a :class:`~.conftest.Blackhole` (listening, never accepting) or at the
spec's ``mongodb://fake:27017``; anything that reaches for a server shows up as a queued
connection or as a :class:`ReplayUnsupportedError`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Dict, List

import pytest
from pymongo.errors import PyMongoError

from timetracer import context
from timetracer.config import TraceConfig
from timetracer.errors import ReplayMismatchError, ReplayUnsupportedError, TimeTracerError
from timetracer.wsgi import TimeTracerMiddleware

from ._support import Tape, assert_same, record_then_replay

Work = Callable[[Any], Any]


def request_handler(db: Any) -> Dict[str, Any]:
    """A request touching most operations, as a view function would."""
    user = db.users.find_one({"_id": "123"})
    items = list(db.items.find({"in_stock": True}, {"_id": 0}).sort("price", -1).limit(5))
    created = db.orders.insert_one({"user": "123", "items": [i["sku"] for i in items]})
    db.users.update_one({"_id": "123"}, {"$inc": {"orders": 1}})
    total = db.orders.count_documents({"user": "123"})
    by_stock = list(
        db.items.aggregate([{"$group": {"_id": "$in_stock", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}])
    )
    return {
        "user": user,
        "items": items,
        "order": str(created.inserted_id),
        "total": total,
        "stock": by_stock,
    }


@pytest.fixture
def shop_db(fresh_db: Any) -> Any:
    fresh_db.users.insert_one({"_id": "123", "name": "Alice", "orders": 0})
    fresh_db.items.insert_many(
        [{"sku": f"s{i}", "price": (i * 37) % 100, "in_stock": i % 4 != 0} for i in range(30)]
    )
    return fresh_db


def test_the_blackhole_detects_a_connection_attempt(blackhole: Any, make_client: Callable[..., Any]) -> None:
    # Self-check of the fixture the other tests rely on: an ordinary client (no replay) connects.
    make_client(blackhole.uri, serverSelectionTimeoutMS=500)
    assert blackhole.attempted(wait=5.0)


def test_replay_makes_no_connection_and_finishes_quickly(
    shop_db: Any, dead_client: Callable[..., Any], tape: Tape, blackhole: Any
) -> None:
    with tape.record():
        live = request_handler(shop_db)
    assert len(tape.events) == 6

    started = time.perf_counter()
    with tape.replay():
        client = dead_client()
        replayed = request_handler(client[shop_db.name])
        client.close()
    elapsed = time.perf_counter() - started
    assert_same(replayed, live)
    assert elapsed < 1.0, f"replay took {elapsed:.2f}s; it should never wait for a server"
    blackhole.assert_untouched()


def test_clients_made_after_a_replay_middleware_never_connect(
    shop_db: Any, make_client: Callable[..., Any], tape: Tape, blackhole: Any
) -> None:
    # An app configured in code (no TIMETRACER_MODE in the environment) creates its client at
    # import time, after the middleware and outside any request.
    with tape.record():
        live = request_handler(shop_db)
    TimeTracerMiddleware(lambda environ, start_response: [], TraceConfig.from_env(mode="replay"))
    client = make_client(blackhole.uri)
    with tape.replay():
        replayed = request_handler(client[shop_db.name])
    assert_same(replayed, live)
    # Outside a request, nothing can answer a call in this replaying process: refused, not sent.
    with pytest.raises(ReplayUnsupportedError, match="no timetracer session"):
        client[shop_db.name].users.find_one({"_id": "123"})
    blackhole.assert_untouched()
    context.replay_configured = False  # the app's process ends here; the fixtures' live cleanup follows


def test_replay_against_the_specs_fake_host(
    myapp_db: Any, make_client: Callable[..., Any], tape: Tape
) -> None:
    myapp_db.users.insert_one({"_id": "123", "name": "Alice", "email": "alice@example.com", "age": 30})
    with tape.record():
        live = myapp_db.users.find_one({"_id": "123"})

    started = time.perf_counter()
    with tape.replay():
        client = make_client("mongodb://fake:27017")  # won't actually connect
        user = client.myapp.users.find_one({"_id": "123"})
        client.close()
    assert time.perf_counter() - started < 1.0
    assert user == live
    assert user["name"] == "Alice" and user["email"] == "alice@example.com"


def test_start_session_and_close_do_not_block_in_replay(
    shop_db: Any, dead_client: Callable[..., Any], tape: Tape, blackhole: Any
) -> None:
    def work(db: Any) -> Any:
        client = db.client
        with client.start_session() as session:
            found = db.users.find_one({"_id": "123"}, session=session)
            listed = list(db.items.find({"price": {"$lt": 20}}, session=session).sort("sku"))
        return found, listed

    with tape.record():
        live = work(shop_db)

    started = time.perf_counter()
    with tape.replay():
        client = dead_client()
        replayed = work(client[shop_db.name])
        client.close()
        client.close()  # twice is fine, as with PyMongo
    assert time.perf_counter() - started < 1.0
    assert_same(replayed, live)
    blackhole.assert_untouched()


UNSUPPORTED = [
    pytest.param(lambda db: db.users.drop(), "Collection.drop()", id="Collection.drop"),
    pytest.param(lambda db: db.users.create_index("name"), "Collection.create_index()", id="create_index"),
    pytest.param(lambda db: list(db.users.list_indexes()), "Collection.list_indexes()", id="list_indexes"),
    pytest.param(lambda db: db.users.index_information(), "Collection.index_information()", id="index_info"),
    pytest.param(lambda db: db.users.rename("people"), "Collection.rename()", id="rename"),
    pytest.param(lambda db: db.users.options(), "Collection.options()", id="options"),
    pytest.param(
        lambda db: list(db.users.find_raw_batches()), "Collection.find_raw_batches()", id="raw_batches"
    ),
    pytest.param(
        lambda db: db.create_collection("new"), "Database.create_collection()", id="create_collection"
    ),
    pytest.param(lambda db: db.drop_collection("users"), "Database.drop_collection()", id="drop_collection"),
    pytest.param(
        lambda db: list(db.list_collections()), "Database.list_collections()", id="list_collections"
    ),
    pytest.param(
        lambda db: list(db.aggregate([{"$documents": [{"a": 1}]}])),
        "Database.aggregate()",
        id="Database.aggregate",
    ),
    pytest.param(
        lambda db: db.client.list_database_names(), "MongoClient.list_database_names()", id="db_names"
    ),
    pytest.param(
        lambda db: db.client.drop_database(db.name), "MongoClient.drop_database()", id="drop_database"
    ),
    pytest.param(lambda db: db.client.server_info(), "MongoClient.server_info()", id="server_info"),
]


@pytest.mark.parametrize(("work", "named"), UNSUPPORTED)
def test_a_method_not_replayed_raises_replay_unsupported_naming_it(
    work: Work, named: str, shop_db: Any, dead_client: Callable[..., Any], tape: Tape, blackhole: Any
) -> None:
    with tape.record():
        shop_db.users.find_one({"_id": "123"})
    with tape.replay():
        with pytest.raises(ReplayUnsupportedError) as caught:
            work(dead_client()[shop_db.name])
    message = str(caught.value)
    assert named in message
    assert str(tape.path) in message
    assert isinstance(caught.value, TimeTracerError) and isinstance(caught.value, NotImplementedError)
    blackhole.assert_untouched()


def test_anything_else_that_reaches_for_the_server_is_refused_without_connecting(
    shop_db: Any, dead_client: Callable[..., Any], tape: Tape, blackhole: Any
) -> None:
    with tape.record():
        shop_db.users.find_one({"_id": "123"})
    with tape.replay():
        client = dead_client()
        with pytest.raises(ReplayUnsupportedError) as caught:
            client.is_primary  # noqa: B018 -- a property that selects a server
    assert str(tape.path) in str(caught.value)
    blackhole.assert_untouched()


def test_methods_not_replayed_still_work_and_are_not_recorded_while_recording(
    shop_db: Any, tape: Tape
) -> None:
    with tape.record():
        shop_db.items.create_index("sku")
        names = sorted(shop_db.items.index_information())
        shop_db.scratch.insert_one({"x": 1})
        shop_db.scratch.drop()
    assert names == ["_id_", "sku_1"]
    assert tape.methods() == ["INSERT_ONE"]


MISSES = [
    pytest.param(lambda db: db.users.find_one({"_id": "999"}), "FIND_ONE", id="different-filter"),
    pytest.param(lambda db: db.users.count_documents({}), "COUNT_DOCUMENTS", id="never-recorded-method"),
    pytest.param(
        lambda db: db.client["otherdb"].users.find_one({"_id": "123"}), "otherdb.users", id="other-db"
    ),
    pytest.param(lambda db: list(db.items.find({"sku": "s1"})), "FIND", id="cursor"),
    pytest.param(
        lambda db: db.users.update_one({"_id": "123"}, {"$set": {"x": 2}}), "UPDATE_ONE", id="update"
    ),
]


@pytest.mark.parametrize(("work", "named"), MISSES)
def test_a_call_not_in_the_cassette_raises_mismatch_naming_call_and_cassette(
    work: Work, named: str, shop_db: Any, dead_client: Callable[..., Any], tape: Tape, blackhole: Any
) -> None:
    with tape.record():
        shop_db.users.find_one({"_id": "123"})
        shop_db.users.update_one({"_id": "123"}, {"$set": {"x": 1}})
    with tape.replay():
        with pytest.raises(ReplayMismatchError) as caught:
            work(dead_client()[shop_db.name])
    message = str(caught.value)
    assert named in message
    assert str(tape.path) in message
    assert "nearest" in message  # points at the recorded calls it could have been
    blackhole.assert_untouched()


def test_a_call_replayed_more_often_than_recorded_raises_mismatch(
    shop_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        shop_db.users.find_one({"_id": "123"})
    with tape.replay():
        users = dead_client()[shop_db.name].users
        users.find_one({"_id": "123"})
        with pytest.raises(ReplayMismatchError) as caught:
            users.find_one({"_id": "123"})
    assert "FIND_ONE" in str(caught.value)


# -- the spec's "done when" --------------------------------------------------------------------


def list_products(db: Any, query: Dict[str, Any]) -> str:
    """A route: page 2 of the products, as JSON with string ids (as the spec's Flask example)."""
    products = list(db.items.find(query).sort("price", -1).skip(3).limit(7))
    for product in products:
        product["_id"] = str(product["_id"])
    return json.dumps({"products": products})


def test_a_route_gives_identical_results_in_record_and_replay(
    shop_db: Any, dead_client: Callable[..., Any], tape: Tape, blackhole: Any
) -> None:
    query = {"in_stock": True}
    live, replayed = record_then_replay(tape, shop_db, dead_client, lambda db: list_products(db, query))
    assert len(json.loads(live)["products"]) == 7
    assert replayed == live
    blackhole.assert_untouched()


# -- several clients, databases, threads ---------------------------------------------------------


def test_several_clients_and_databases_in_one_cassette(
    shop_db: Any,
    mongo_client: Any,
    live_client: Callable[..., Any],
    dead_client: Callable[..., Any],
    make_client: Callable[..., Any],
    tape: Tape,
    blackhole: Any,
) -> None:
    analytics_name = f"{shop_db.name}_analytics"

    def work(primary: Any, analytics: Any) -> Any:
        user = primary[shop_db.name].users.find_one({"_id": "123"})
        event = analytics[analytics_name].events.insert_one({"type": "log", "user": "123"})
        count = analytics[analytics_name].events.count_documents({"type": "log"})
        pinged = primary.admin.command("ping")
        return user, event.inserted_id, count, pinged

    try:
        with tape.record():
            live = work(mongo_client, live_client(tz_aware=True))
        assert sorted({event["signature"]["url"] for event in tape.events}) == sorted(
            {f"{shop_db.name}.users", f"{analytics_name}.events", "admin.$cmd"}
        )
        with tape.replay():
            replayed = work(dead_client(), make_client("mongodb://fake:27017", tz_aware=True))
    finally:
        mongo_client.drop_database(analytics_name)
    assert_same(replayed, live)
    blackhole.assert_untouched()


def test_concurrent_requests_each_record_and_replay_their_own_calls(
    shop_db: Any, tmp_path: Any, dead_client: Callable[..., Any]
) -> None:
    owners = ["ann", "bob", "cyd", "dan"]
    tapes = {owner: Tape(tmp_path / f"{owner}.json") for owner in owners}

    def request(db: Any, owner: str, barrier: threading.Barrier) -> List[Any]:
        out: List[Any] = []
        for step in range(3):
            barrier.wait()  # every thread is mid-request at the same time
            out.append(db.orders.insert_one({"owner": owner, "step": step}).inserted_id)
            out.append(db.orders.count_documents({"owner": owner}))
            out.append(list(db.orders.find({"owner": owner}, {"_id": 0}).sort("step")))
        return out

    def run_all(mode: str, db_for: Callable[[], Any]) -> Dict[str, Any]:
        barrier = threading.Barrier(len(owners))
        results: Dict[str, Any] = {}
        errors: List[BaseException] = []

        def thread(owner: str) -> None:
            tape = tapes[owner]
            try:
                if mode == "record":
                    with tape.record():  # the session is activated inside this thread
                        results[owner] = request(db_for(), owner, barrier)
                else:
                    with tape.replay():
                        results[owner] = request(db_for(), owner, barrier)
            except BaseException as exc:
                barrier.abort()
                errors.append(exc)

        threads = [threading.Thread(target=thread, args=(owner,)) for owner in owners]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        return results

    live = run_all("record", lambda: shop_db)
    for owner, tape in tapes.items():
        assert len(tape.events) == 9
        for event in tape.events:
            assert owner in json.dumps(event["args"]), f"{owner}'s cassette holds another request's call"
        assert [d["step"] for d in live[owner][-1]] == [0, 1, 2]

    with context.active(tapes["ann"].session()):
        shared = dead_client()[shop_db.name]  # one client for all requests, as in a web app
    replayed = run_all("replay", lambda: shared)
    for owner in owners:
        assert_same(replayed[owner], live[owner])


def test_replay_never_writes_to_the_database(
    shop_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        return db.users.delete_many({}).deleted_count

    with tape.record():
        live = work(shop_db)
    shop_db.users.insert_one({"_id": "again"})
    with tape.replay():
        assert work(dead_client()[shop_db.name]) == live
    assert shop_db.users.count_documents({}) == 1  # the live data is untouched


def test_errors_are_timetracer_errors_not_pymongo_errors(
    shop_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    # An app's `except PyMongoError` must not swallow a replay mismatch.
    with tape.record():
        shop_db.users.find_one({"_id": "123"})
    with tape.replay():
        with pytest.raises(ReplayMismatchError) as caught:
            dead_client()[shop_db.name].users.find_one({"_id": "nope"})
    assert not isinstance(caught.value, PyMongoError)
    assert isinstance(caught.value, AssertionError)  # a test using the cassette fails, loudly


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"connect": False, "tz_aware": True}, id="connect-false"),
        pytest.param({"connect": True, "appname": "shop", "maxPoolSize": 7}, id="connect-true"),
    ],
)
def test_a_client_made_in_replay_has_the_repr_it_has_live(
    options: Dict[str, Any], mongo_uri: str, make_client: Callable[..., Any], tape: Tape, blackhole: Any
) -> None:
    # The repr ends up in error pages, logs and test messages: replay must not change it.
    with tape.record():
        pass
    with tape.replay():
        replayed = repr(make_client(blackhole.uri, **options))
    blackhole.assert_untouched()  # the constructor's own connect step was skipped
    live = repr(make_client(blackhole.uri, **options))
    assert replayed == live
    assert ("connect=False" in live) == (options.get("connect") is False)
