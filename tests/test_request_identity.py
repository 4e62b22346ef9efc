"""Many requests to one route: each recorded request keeps its recording and replays its own response.

A Flask + PyMongo app runs a script of requests against the real test server through the WSGI
middleware: paginated GETs, repeated GETs around POSTs, PUTs to one path with different bodies.
Replayed with the database gone, every step gets its own recorded response byte for byte with
``X-Timetracer-Replay: identical``; a request never recorded gets a 500 naming what was looked
for and no other request's data; mismatches the app swallows still make the verdict ``mismatch``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pymongo
import pytest
from flask import Flask, jsonify, request
from pymongo.database import Database
from werkzeug.test import Client

from timetracer.cassette import read_cassette
from timetracer.cassette.naming import RecordingFolder
from timetracer.config import TraceConfig
from timetracer.wsgi import REPLAY_HEADER, TimeTracerMiddleware

pytestmark = pytest.mark.usefixtures("isolated_pymongo_plugin")

Step = Tuple[str, str, Optional[Dict[str, Any]]]

# The script: (method, url, JSON body). Identical requests recur with different answers.
SCRIPT: List[Step] = [
    ("GET", "/items?page=1&size=2", None),
    ("GET", "/items?page=2&size=2", None),
    ("GET", "/items?size=2&page=1", None),  # page 1 again, parameters in another order
    ("GET", "/items", None),  # before the POSTs
    ("POST", "/items", {"name": "d", "price": 4}),
    ("POST", "/items", {"name": "e", "price": 5}),
    ("POST", "/items", {"name": "f", "price": 6}),
    ("GET", "/items", None),  # after them: another answer for the same request
    ("GET", "/items?page=2&size=2", None),  # page 2 has changed too
    ("PUT", "/items/a", {"price": 10}),
    ("PUT", "/items/a", {"price": 20}),
    ("PUT", "/items/a", {"price": 10}),  # the first body again: a repeat of the first PUT
    ("GET", "/items/a", None),
]


class Apps:
    """Flask apps over one database, wrapped in the middleware, recording into one folder."""

    def __init__(self, db_name: str, cassette_dir: Path) -> None:
        self.db_name = db_name
        self.cassette_dir = cassette_dir
        self.clients: List[pymongo.MongoClient[Any]] = []

    def __call__(self, mongo_uri: str, mode: str, *, version: int = 1, **settings: Any) -> Client:
        mongo: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=300)
        self.clients.append(mongo)
        db = mongo[self.db_name]
        app = Flask(f"tt_identity_{len(self.clients)}")

        @app.route("/items", methods=["GET"])
        def list_items() -> Any:
            page = int(request.args.get("page", 1))
            size = int(request.args.get("size", 100))
            cursor = db.items.find({}, {"_id": 0}).sort("name", 1).skip((page - 1) * size).limit(size)
            return jsonify({"page": list(cursor), "total": db.items.count_documents({})})

        @app.route("/items", methods=["POST"])
        def create_item() -> Any:
            data = request.get_json()
            inserted = db.items.insert_one({"name": data["name"], "price": data["price"]})
            return jsonify({"id": str(inserted.inserted_id)}), 201

        @app.route("/items/<name>", methods=["PUT"])
        def update_item(name: str) -> Any:
            result = db.items.update_one({"name": name}, {"$set": {"price": request.get_json()["price"]}})
            return jsonify({"matched": result.matched_count, "modified": result.modified_count})

        @app.route("/items/<name>", methods=["GET"])
        def get_item(name: str) -> Any:
            return jsonify(db.items.find_one({"name": name}, {"_id": 0}))

        @app.route("/items/<name>/touch", methods=["POST"])
        def touch(name: str) -> Any:
            # Version 2 of the app changed its filter; a failed bookkeeping write is swallowed.
            query: Dict[str, Any] = {"name": name} if version == 1 else {"name": name, "archived": False}
            try:
                db.items.update_one(query, {"$inc": {"touched": 1}})
            except Exception:
                pass
            return jsonify({"ok": True})

        @app.route("/items/report", methods=["GET"])
        def report() -> Any:
            # Version 2 also makes sure of an index, and carries on if that fails.
            if version == 2:
                try:
                    db.items.create_index("name")
                except Exception:
                    pass
            return jsonify({"count": db.items.count_documents({})})

        @app.route("/login", methods=["POST"])
        def login() -> Any:
            token = uuid.uuid4().hex  # fresh on every run
            db.users.update_one({"name": request.get_json()["user"]}, {"$set": {"jwt": token}})
            user = db.users.find_one({"name": request.get_json()["user"]}, {"_id": 0, "jwt": 0})
            return jsonify({"user": user, "jwt": token})

        config = TraceConfig.from_env({}, mode=mode, cassette_dir=self.cassette_dir, **settings)
        app.wsgi_app = TimeTracerMiddleware(app.wsgi_app, config)  # type: ignore[method-assign]
        return Client(app)

    def close(self) -> None:
        for mongo in self.clients:
            mongo.close()


@pytest.fixture
def apps(fresh_db: Database[Any], tmp_path: Path) -> Iterator[Apps]:
    fresh_db.items.insert_many([{"name": n, "price": p} for n, p in (("a", 1), ("b", 2), ("c", 3))])
    fresh_db.users.insert_one({"name": "ann", "role": "admin"})
    factory = Apps(fresh_db.name, tmp_path / "cassettes")
    yield factory
    factory.close()


def run(client: Client, step: Step) -> Any:
    method, url, body = step
    return client.open(url, method=method, json=body, buffered=True)


def cassettes(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir())


def test_every_step_of_a_script_replays_its_own_response_byte_for_byte(
    apps: Apps, mongo_uri: str, dead_mongo_uri: str
) -> None:
    recorder = apps(mongo_uri, "record")
    recorded = [run(recorder, step) for step in SCRIPT]
    assert [r.status_code for r in recorded] == [200] * 4 + [201] * 3 + [200] * 6
    # The script does see different answers to identical requests (or this test would prove nothing).
    assert recorded[3].data != recorded[7].data and recorded[1].data != recorded[8].data
    assert recorded[0].data == recorded[2].data

    # One file per request: 13 requests, 13 cassettes, named readably.
    names = cassettes(apps.cassette_dir)
    assert len(names) == len(SCRIPT)
    assert {"GET__items.json", "GET__items~2.json", "GET__items_a.json"} <= set(names)
    page_one = [n for n in names if n.startswith("GET__items~q")]
    assert len(page_one) == 4  # page 1 (x2, one identity), page 2 (x2)
    assert sum(n.endswith("~2.json") for n in page_one) == 2
    puts = [n for n in names if n.startswith("PUT__items_a")]
    assert len(puts) == 3 and sum(n.endswith("~2.json") for n in puts) == 1
    for name in names:
        request = read_cassette(apps.cassette_dir / name)["request"]
        assert name.startswith(f"{request['method']}__")

    replayer = apps(dead_mongo_uri, "replay")
    for step, live in zip(SCRIPT, recorded):
        replayed = run(replayer, step)
        assert (step, replayed.status_code) == (step, live.status_code)
        assert replayed.data == live.data, step
        assert replayed.headers[REPLAY_HEADER] == "identical", step


def test_a_request_never_recorded_gets_a_500_naming_what_was_looked_for_and_no_other_data(
    apps: Apps, mongo_uri: str, dead_mongo_uri: str
) -> None:
    recorder = apps(mongo_uri, "record")
    for step in SCRIPT[:4]:
        run(recorder, step)
    replayer = apps(dead_mongo_uri, "replay")

    missing = run(replayer, ("GET", "/items?page=9&size=2", None))
    assert missing.status_code == 500
    text = missing.get_data(as_text=True)
    assert "no recording of GET /items?page=9&size=2" in text
    assert "looked for" in text and "GET__items~q" in text
    assert '"name"' not in text and "price" not in text  # no other request's data

    assert run(replayer, ("GET", "/items", None)).status_code == 200
    again = run(replayer, ("GET", "/items", None))  # recorded once, asked twice
    assert again.status_code == 500
    assert "the 2nd request like it in this replay, but only 1 were recorded" in again.get_data(as_text=True)


def test_a_swallowed_mismatch_gives_mismatch_and_logs_the_diff_naming_the_field(
    apps: Apps, mongo_uri: str, dead_mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorded = run(apps(mongo_uri, "record"), ("POST", "/items/a/touch", None))
    caplog.set_level(logging.INFO, logger="timetracer")
    replayed = run(apps(dead_mongo_uri, "replay", version=2), ("POST", "/items/a/touch", None))
    assert replayed.status_code == 200 and replayed.data == recorded.data  # the app hid the error
    assert replayed.headers[REPLAY_HEADER] == "mismatch"
    (warning,) = [r for r in caplog.records if "replay mismatch" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "UPDATE_ONE" in warning.getMessage().upper()
    assert "filter.archived: false != <missing>" in warning.getMessage()


def test_a_swallowed_call_that_replay_cannot_answer_gives_mismatch(
    apps: Apps, mongo_uri: str, dead_mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorded = run(apps(mongo_uri, "record"), ("GET", "/items/report", None))
    caplog.set_level(logging.INFO, logger="timetracer")
    replayed = run(apps(dead_mongo_uri, "replay", version=2), ("GET", "/items/report", None))
    assert replayed.data == recorded.data  # the app hid the ReplayUnsupportedError
    assert replayed.headers[REPLAY_HEADER] == "mismatch"
    (warning,) = [r for r in caplog.records if "replay mismatch" in r.getMessage()]
    assert "Collection.create_index() is not replayed" in warning.getMessage()


@pytest.mark.parametrize("ignore, verdict", [("jwt", "identical"), ("", "mismatch")])
def test_a_plain_ignored_name_covers_set_operators_and_the_response(
    apps: Apps, mongo_uri: str, dead_mongo_uri: str, ignore: str, verdict: str
) -> None:
    login = ("POST", "/login", {"user": "ann", "password": "hunter2"})
    recorded = run(apps(mongo_uri, "record"), login)
    replayed = run(apps(dead_mongo_uri, "replay", ignore_fields=ignore), login)
    # $set.jwt differs (a fresh token), and so does the response's "jwt": both ignored, or not.
    assert replayed.headers[REPLAY_HEADER] == verdict
    if ignore:
        assert replayed.status_code == 200
        assert json.loads(replayed.data)["user"] == json.loads(recorded.data)["user"]
        assert json.loads(replayed.data)["jwt"] != json.loads(recorded.data)["jwt"]


def test_an_ignored_response_field_alone_keeps_the_verdict_identical(
    apps: Apps, mongo_uri: str, dead_mongo_uri: str, tmp_path: Path
) -> None:
    recorded = run(apps(mongo_uri, "record"), ("GET", "/items/a", None))
    # Change what was recorded, as a response carrying now() or a token would differ between runs.
    (path,) = apps.cassette_dir.iterdir()
    document = json.loads(path.read_text())
    body = json.loads(document["response"]["body"]["data"])
    body["price"] = 999
    document["response"]["body"]["data"] = json.dumps(body)
    path.write_text(json.dumps(document))

    different = run(apps(dead_mongo_uri, "replay"), ("GET", "/items/a", None))
    assert different.headers[REPLAY_HEADER] == "different"
    for ignore in ("price", "body.price"):
        same = run(apps(dead_mongo_uri, "replay", ignore_fields=ignore), ("GET", "/items/a", None))
        assert same.data == recorded.data
        assert same.headers[REPLAY_HEADER] == "identical", ignore


def test_a_route_keeps_at_most_its_limit_of_recordings(
    apps: Apps, mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = apps(mongo_uri, "record", max_recordings_per_route=3)
    caplog.set_level(logging.WARNING, logger="timetracer")
    responses = [run(recorder, ("GET", f"/items?page={n}&size=1", None)) for n in range(1, 6)]
    assert all(r.status_code == 200 for r in responses)  # the app answers every request
    assert len(cassettes(apps.cassette_dir)) == 3
    (warning,) = [r for r in caplog.records if "runs unrecorded" in r.getMessage()]
    assert "TIMETRACER_MAX_RECORDINGS_PER_ROUTE=3" in warning.getMessage()


def _claim_many(folder: str, count: int, start: Any) -> List[str]:
    """One recording process: its own RecordingFolder, claiming and writing ``count`` names."""
    from timetracer.cassette.naming import RecordingFolder

    recorder = RecordingFolder(Path(folder))
    start.wait()
    names = []
    for _ in range(count):
        claim = recorder.claim("GET", "/items", None, ".json", 0)
        assert claim is not None
        claim.target.write_text("{}")
        claim.release()
        names.append(claim.target.name)
    return names


def test_concurrent_recording_processes_never_share_a_name(tmp_path: Path) -> None:
    # Names are claimed with O_EXCL in the folder, so processes recording into one folder (gunicorn
    # workers) never overwrite each other, and the numbers stay 1..N with no gap.
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(4) as pool:
            results = [pool.apply_async(_claim_many, (str(tmp_path), 20, start)) for _ in range(4)]
            start.set()
            names = [name for result in results for name in result.get(timeout=120)]
    assert len(names) == len(set(names)) == 80
    expected = ["GET__items.json"] + [f"GET__items~{n}.json" for n in range(2, 81)]
    assert sorted(cassettes(tmp_path)) == sorted(expected)


def test_threads_of_one_recorder_never_share_a_name(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    names: List[str] = []
    lock = threading.Lock()
    folder = RecordingFolder(tmp_path)

    def record() -> None:
        barrier.wait()
        for _ in range(10):
            claim = folder.claim("GET", "/items", None, ".json", 50)
            if claim is None:
                continue
            claim.target.write_text("{}")
            claim.release()
            with lock:
                names.append(claim.target.name)

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(names) == len(set(names)) == 50  # the route limit holds under concurrency too
    assert sorted(cassettes(tmp_path)) == sorted(
        ["GET__items.json"] + [f"GET__items~{n}.json" for n in range(2, 51)]
    )


def test_errors_only_recordings_are_numbered_without_gaps(tmp_path: Path) -> None:
    # In errors-only mode a request that ends well gives its name back: the failing ones are 1, 2...
    calls: List[int] = []

    def flaky(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        calls.append(1)
        failing = len(calls) % 2 == 0
        start_response("500 Internal Server Error" if failing else "200 OK", [("Content-Type", "text/plain")])
        return [f"call {len(calls)}".encode()]

    config = TraceConfig.from_env({}, mode="record", cassette_dir=tmp_path, errors_only=True)
    client = Client(TimeTracerMiddleware(flaky, config))
    statuses = [client.get("/flaky", buffered=True).status_code for _ in range(5)]
    assert statuses == [200, 500, 200, 500, 200]
    assert cassettes(tmp_path) == ["GET__flaky.json", "GET__flaky~2.json"]
    assert read_cassette(tmp_path / "GET__flaky~2.json")["response"]["body"]["data"] == "call 4"


def test_a_cassette_recorded_before_bodies_were_stored_still_answers_its_own_query(tmp_path: Path) -> None:
    # Earlier versions named a cassette after the route alone and stored no body: it answers the
    # request whose query string it was recorded for, and no other.
    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"page": 2}']

    recorder = Client(
        TimeTracerMiddleware(app, TraceConfig.from_env({}, mode="record", cassette_dir=tmp_path))
    )
    recorder.get("/items?page=2&token=abc", buffered=True)
    (recorded,) = tmp_path.iterdir()
    document = json.loads(recorded.read_text())
    del document["request"]["body"]  # as an older timetracer wrote it
    document["request"]["query"] = "page=2&token=abc"  # verbatim, before query redaction
    recorded.unlink()
    (tmp_path / "GET__items.json").write_text(json.dumps(document))

    replayer = Client(
        TimeTracerMiddleware(app, TraceConfig.from_env({}, mode="replay", cassette_dir=tmp_path))
    )
    same = replayer.get("/items?token=xyz&page=2", buffered=True)
    assert (same.status_code, same.headers[REPLAY_HEADER]) == (200, "identical")
    other = replayer.get("/items?page=3", buffered=True)
    assert other.status_code == 500 and "no recording of GET /items?page=3" in other.get_data(as_text=True)
