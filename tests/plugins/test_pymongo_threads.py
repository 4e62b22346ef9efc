"""Threads and executor workers started inside a session are recorded and replayed with it.

Every scenario runs three times on real threads: with timetracer off, recording, and replaying on a
client whose address has nothing listening; the three outcomes must be identical by type and repr,
and the replay must attempt no socket connection at all (a counter sees every ``connect``).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pymongo
import pytest

from timetracer import _threads, context
from timetracer.cassette import read_cassette
from timetracer.config import TraceConfig
from timetracer.errors import ReplayUnsupportedError
from timetracer.plugins import disable_pymongo, enable_pymongo

from ._sockets import Connects, connects_fixture  # noqa: F401  (the "connects" fixture)
from ._support import Tape, assert_same

Outcome = Tuple[Any, ...]


@pytest.fixture
def dead_client(dead_mongo_uri: str) -> Iterator[Callable[[], pymongo.MongoClient]]:
    """``dead_client()``: a client on the dead port (make it inside the replay)."""
    clients: List[pymongo.MongoClient] = []

    def make() -> pymongo.MongoClient:
        client: pymongo.MongoClient = pymongo.MongoClient(dead_mongo_uri, serverSelectionTimeoutMS=300)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def shop_db(fresh_db: Any) -> Any:
    fresh_db.users.insert_one({"_id": "123", "name": "Alice"})
    fresh_db.items.insert_many(
        [{"sku": f"s{i:02d}", "price": (i * 37) % 100, "in_stock": i % 4 != 0} for i in range(12)]
    )
    return fresh_db


def outcome(call: Callable[[], Any]) -> Outcome:
    """What the app sees of a call: its value, or its exception's class and message."""
    try:
        return ("returned", call())
    except Exception as exc:
        return ("raised", type(exc), str(exc))


def in_thread(call: Callable[[], Any]) -> Outcome:
    box: List[Outcome] = []
    thread = threading.Thread(target=lambda: box.append(outcome(call)))
    thread.start()
    thread.join()
    return box[0]


class Worker(threading.Thread):
    """A Thread subclass with its own ``run``, as apps write them."""

    def __init__(self, db: Any) -> None:
        super().__init__()
        self.db = db
        self.result: Outcome = ()

    def run(self) -> None:
        self.result = outcome(lambda: self.db.users.find_one({"_id": "123"}))


def scenario(db: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    out["thread"] = in_thread(lambda: list(db.items.find({"in_stock": True}, {"_id": 0}).sort("sku")))
    worker = Worker(db)
    worker.start()
    worker.join()
    out["subclass"] = worker.result
    with ThreadPoolExecutor(max_workers=3) as pool:
        out["map"] = list(
            pool.map(
                lambda limit: outcome(lambda: db.items.count_documents({"price": {"$lt": limit}})),
                [10, 50, 90],
            )
        )
        out["submit"] = pool.submit(outcome, lambda: db.items.distinct("price", {"in_stock": False})).result()
        out["nested"] = pool.submit(in_thread, lambda: db.items.find_one({"sku": "s03"}, {"_id": 0})).result()
    return out


def test_threads_and_executor_workers_record_and_replay_with_the_request(
    shop_db: Any, tape: Tape, dead_client: Callable[[], Any], dead_mongo_uri: str, connects: Connects
) -> None:
    off = scenario(shop_db)
    with tape.record():
        recorded = scenario(shop_db)
    assert_same(recorded, off)
    assert all(result[0] == "returned" for result in (off["thread"], off["subclass"], off["submit"]))
    assert sorted(tape.methods()) == sorted(
        ["FIND", "FIND_ONE", "COUNT_DOCUMENTS", "COUNT_DOCUMENTS", "COUNT_DOCUMENTS", "DISTINCT", "FIND_ONE"]
    )
    with tape.replay() as session:
        replayed = scenario(dead_client()[shop_db.name])
    assert_same(replayed, off)
    assert session.replayer is not None and session.replayer.unused() == []
    assert connects.to(dead_mongo_uri) == 0


def test_a_long_lived_pool_runs_each_job_in_its_submitters_session(shop_db: Any, tmp_path: Any) -> None:
    tapes = {owner: Tape(tmp_path / f"{owner}.json") for owner in ("ann", "bob")}
    pool = ThreadPoolExecutor(max_workers=1)  # made at startup; its one worker serves every request
    try:
        for owner, tape in tapes.items():
            with tape.record() as session:
                job = pool.submit(
                    lambda o=owner: (context.active_session(), shop_db.orders.insert_one({"owner": o}))
                )
                assert job.result()[0] is session
        assert pool.submit(context.active_session).result() is None  # no request: no session
    finally:
        pool.shutdown()
    for owner, tape in tapes.items():
        assert [event["args"]["document"]["owner"] for event in tape.events] == [owner]


def test_a_thread_started_outside_any_session_is_refused_while_the_process_replays(
    shop_db: Any, tape: Tape, dead_client: Callable[[], Any], dead_mongo_uri: str, connects: Connects
) -> None:
    with tape.record():
        shop_db.users.find_one({"_id": "123"})
    go, done = threading.Event(), threading.Event()
    seen: List[Outcome] = []

    def background(db: Any) -> None:  # e.g. a cache refresher started at import time
        go.wait(10)
        seen.append(outcome(lambda: db.users.find_one({"_id": "123"})))
        done.set()

    with tape.replay():
        db = dead_client()[shop_db.name]
        thread = threading.Thread(target=background, args=(db,))
        with context.active(None):
            thread.start()  # not started inside the replay: it has no session
        go.set()
        assert done.wait(10)
        assert db.users.find_one({"_id": "123"}) == {"_id": "123", "name": "Alice"}
    thread.join()
    ((status, kind, message),) = seen
    assert (status, kind) == ("raised", ReplayUnsupportedError)
    assert "no timetracer session" in message and "thread 'Thread-" in message
    assert connects.to(dead_mongo_uri) == 0


def _read_two(db: Any, method: str) -> List[Any]:
    cursor = _query(db, method)
    try:
        return [next(cursor), next(cursor)]
    finally:
        cursor.close()


def _read_all(db: Any, method: str) -> List[Any]:
    return list(_query(db, method))


def _query(db: Any, method: str) -> Any:
    if method == "find":
        return db.items.find({"in_stock": True}).sort("sku")
    return db.items.aggregate([{"$match": {"in_stock": True}}, {"$sort": {"sku": 1}}])


def _steps(db: Any, method: str, schedule: str) -> Dict[str, Any]:
    """Two threads run the same query; one reads two documents, one reads all.

    ``schedule`` orders their steps with events: "two-first" (the two-document reader runs to the
    end first), "all-first" (the other way round), "interleaved" (the full reader opens its cursor
    first, then the other thread reads its two, then the full reader goes on).
    """
    out: Dict[str, Any] = {}
    opened, partial_done = threading.Event(), threading.Event()

    def partial() -> None:
        if schedule in ("all-first", "interleaved"):
            opened.wait(10)
        out["two"] = outcome(lambda: _read_two(db, method))
        partial_done.set()

    def full() -> None:
        if schedule == "two-first":
            partial_done.wait(10)
        cursor = _query(db, method)

        def read() -> List[Any]:
            first = [next(cursor)]
            opened.set()
            if schedule == "interleaved":
                partial_done.wait(10)
            return first + list(cursor)

        out["all"] = outcome(read)
        opened.set()

    threads = [threading.Thread(target=partial), threading.Thread(target=full)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"two": out["two"], "all": out["all"]}


@pytest.mark.parametrize("method", ["find", "aggregate"])
@pytest.mark.parametrize("replayed_as", ["two-first", "all-first", "interleaved"])
@pytest.mark.parametrize("recorded_as", ["two-first", "all-first"])
def test_identical_queries_from_threads_replay_whatever_the_schedule(
    shop_db: Any,
    tape: Tape,
    dead_client: Callable[[], Any],
    dead_mongo_uri: str,
    connects: Connects,
    method: str,
    recorded_as: str,
    replayed_as: str,
) -> None:
    off = _steps(shop_db, method, recorded_as)
    with tape.record():
        recorded = _steps(shop_db, method, recorded_as)
    assert_same(recorded, off)
    assert len(off["all"][1]) == 9 and off["two"][1] == off["all"][1][:2]
    with tape.replay() as session:
        replayed = _steps(dead_client()[shop_db.name], method, replayed_as)
    assert_same(replayed, off)
    assert session.replayer is not None and session.replayer.unused() == []
    assert connects.to(dead_mongo_uri) == 0


def test_enable_installs_the_thread_hooks_once_and_disable_restores_them() -> None:
    patched_start, patched_submit = threading.Thread.start, ThreadPoolExecutor.submit
    original_start = patched_start.__wrapped__  # type: ignore[attr-defined]
    original_submit = patched_submit.__wrapped__  # type: ignore[attr-defined]
    try:
        disable_pymongo()
        assert not _threads.installed()
        assert threading.Thread.start is original_start
        assert ThreadPoolExecutor.submit is original_submit
    finally:
        enable_pymongo()
        enable_pymongo()
    assert threading.Thread.start.__wrapped__ is original_start  # type: ignore[attr-defined]
    assert ThreadPoolExecutor.submit.__wrapped__ is original_submit  # type: ignore[attr-defined]


def test_a_thread_that_outlives_its_recording_is_reported(
    shop_db: Any, tape: Tape, caplog: pytest.LogCaptureFixture
) -> None:
    go = threading.Event()
    seen: List[Outcome] = []

    def late() -> None:
        go.wait(10)
        seen.append(outcome(lambda: shop_db.users.find_one({"_id": "123"})))

    with caplog.at_level(logging.WARNING, logger="timetracer"):
        with tape.record():
            thread = threading.Thread(target=late, name="fire-and-forget")
            thread.start()  # started in the request, not joined before it ends
        go.set()
        thread.join()
    assert seen == [("returned", {"_id": "123", "name": "Alice"})]  # the app's call is untouched
    assert tape.events == []
    (message,) = [r.getMessage() for r in caplog.records if "after the cassette" in r.getMessage()]
    assert "FIND_ONE" in message and "'fire-and-forget'" in message and str(tape.path) in message


def fan_out_app(db_for: Callable[[], Any], config: TraceConfig) -> Any:
    """A Flask app whose view fans its queries out to a pool made at startup and to a thread."""
    from flask import Flask, jsonify

    from timetracer.integrations.flask import auto_setup

    app = auto_setup(Flask(__name__), config)
    pool = ThreadPoolExecutor(max_workers=2)
    state: Dict[str, Any] = {}

    @app.route("/dashboard")
    def dashboard() -> Any:
        db = state.setdefault("db", db_for())
        counts = list(pool.map(lambda s: db.items.count_documents({"in_stock": s}), [True, False]))
        box: List[Any] = []
        thread = threading.Thread(target=lambda: box.append(db.users.find_one({"_id": "123"})))
        thread.start()
        thread.join()
        cheapest = pool.submit(lambda: list(db.items.find({}, {"_id": 0, "sku": 1}).sort("price").limit(2)))
        return jsonify(counts=counts, user=box[0], cheapest=cheapest.result())

    app.extensions["fan_out_pool"] = pool
    return app


def test_a_flask_view_that_fans_out_to_threads_records_and_replays_through_the_middleware(
    shop_db: Any, tmp_path: Any, dead_mongo_uri: str, connects: Connects
) -> None:
    recording = fan_out_app(lambda: shop_db, TraceConfig.from_env({}, mode="record", cassette_dir=tmp_path))
    live = recording.test_client().get("/dashboard", buffered=True)
    assert live.status_code == 200, live.get_data(as_text=True)
    path = tmp_path / "GET__dashboard.json"
    assert sorted(e["signature"]["method"] for e in read_cassette(path)["events"]) == [
        "COUNT_DOCUMENTS",
        "COUNT_DOCUMENTS",
        "FIND",
        "FIND_ONE",
    ]
    replaying = fan_out_app(
        lambda: pymongo.MongoClient(dead_mongo_uri, serverSelectionTimeoutMS=300)[shop_db.name],
        TraceConfig.from_env({}, mode="replay", cassette=path),
    )
    for _ in range(2):  # the pool's worker threads serve the second request too
        replayed = replaying.test_client().get("/dashboard", buffered=True)
        assert replayed.status_code == 200, replayed.get_data(as_text=True)
        assert replayed.get_json() == live.get_json()
        assert replayed.headers["X-Timetracer-Replay"] == "identical"
    assert connects.to(dead_mongo_uri) == 0
    for app in (recording, replaying):
        app.extensions["fan_out_pool"].shutdown()
