"""Replay matching and diagnostics, against real recordings.

Calls are recorded against the real test server and replayed through a client on a port where
nothing listens: exact matching in order, fallback for values that change between runs (with
aliasing of app-made ids), ignored fields, the mismatch message, strict mode, and the verdict on
the replayed response of a WSGI app.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pymongo
import pytest
from bson import ObjectId
from flask import Flask, jsonify, request
from pymongo.database import Database
from werkzeug.test import Client

import timetracer
from timetracer import context
from timetracer.cassette import cassette_name
from timetracer.config import TraceConfig
from timetracer.errors import ReplayMismatchError
from timetracer.wsgi import REPLAY_HEADER, TimeTracerMiddleware

ALICE = {"_id": "123", "name": "Alice", "email": "alice@example.com", "age": 30}


# -- fixtures --------------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("isolated_pymongo_plugin")


@pytest.fixture
def cassette(tmp_path: Path) -> Path:
    return tmp_path / "cassette.json"


@pytest.fixture
def coll(fresh_db: Database[Any]) -> Any:
    """The live ``users`` collection of a fresh database."""
    return fresh_db.users


def active_replayer() -> Any:
    session = context._active.get()
    assert session is not None and session.replaying
    return session.replayer


def report_lines(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if "calls matched exactly" in r.getMessage()]


# -- exact matching, in order ----------------------------------------------------------------


def test_identical_calls_with_different_results_replay_in_recorded_order(
    cassette: Path, coll: Any, dead_users: Callable[[], Any]
) -> None:
    def scenario(users: Any) -> List[Any]:
        out: List[Any] = [users.count_documents({})]
        users.insert_one({"_id": "u1", "name": "Ann", "visits": 1})
        out.append(users.count_documents({}))
        out.append(users.find_one({"_id": "u1"}))
        users.update_one({"_id": "u1"}, {"$inc": {"visits": 1}})
        out.append(users.find_one({"_id": "u1"}))
        users.insert_one({"_id": "u2", "name": "Bob", "visits": 0})
        out.append(users.count_documents({}))
        return out

    with timetracer.record(cassette):
        live = scenario(coll)
    assert live == [
        0,
        1,
        {"_id": "u1", "name": "Ann", "visits": 1},
        {"_id": "u1", "name": "Ann", "visits": 2},
        2,
    ]
    with timetracer.replay(cassette):
        assert scenario(dead_users()) == live
        replayer = active_replayer()
        assert (replayer.matched_exact, replayer.matched_fallback, replayer.unused()) == (8, 0, [])


# -- fallback: values that change between runs -----------------------------------------------


def test_fresh_datetime_and_app_made_objectid_match_by_fallback_and_the_new_id_is_aliased(
    cassette: Path, coll: Any, dead_users: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    def scenario(users: Any) -> Dict[str, Any]:
        event_id = ObjectId()
        result = users.insert_one({"_id": event_id, "kind": "signup", "at": datetime.now(timezone.utc)})
        assert result.inserted_id == event_id
        found = users.find_one({"_id": event_id})
        return {"id": event_id, "found": found}

    with timetracer.record(cassette):
        recorded = scenario(coll)
    time.sleep(0.01)  # a later millisecond: the replayed datetime differs from the recorded one

    caplog.set_level(logging.INFO, logger="timetracer")
    with timetracer.replay(cassette):
        replayed = scenario(dead_users())
        replayer = active_replayer()
        assert replayer.matched_fallback == 1  # the insert: new _id, new datetime
        assert replayer.matched_exact == 1  # find_one({"_id": new_id}): the alias of the recorded id
    assert replayed["id"] != recorded["id"]
    assert replayed["found"] == recorded["found"]  # the recorded document, as the server returned it
    fallback_logs = [r.getMessage() for r in caplog.records if "by fallback (differs in" in r.getMessage()]
    assert len(fallback_logs) == 1
    assert "INSERT_ONE" in fallback_logs[0]
    assert "document._id" in fallback_logs[0] and "document.at" in fallback_logs[0]
    assert "call #1" in fallback_logs[0] and str(cassette) in fallback_logs[0]
    (line,) = report_lines(caplog)
    assert "1 calls matched exactly, 1 by fallback, 0 unmatched, 0 recorded calls unused" in line


def test_a_different_objectid_in_a_read_filter_is_a_mismatch_not_a_fallback(
    cassette: Path, coll: Any, dead_users: Callable[[], Any]
) -> None:
    recorded_id = ObjectId()
    coll.insert_one({"_id": recorded_id, "name": "Ann"})
    with timetracer.record(cassette):
        assert coll.find_one({"_id": recorded_id})["name"] == "Ann"
    with timetracer.replay(cassette):
        users = dead_users()
        with pytest.raises(ReplayMismatchError, match=r"filter\._id"):
            users.find_one({"_id": ObjectId()})
        assert active_replayer().matched_fallback == 0
        assert users.find_one({"_id": recorded_id})["name"] == "Ann"  # the event is still unused


@pytest.mark.parametrize("ignored", ["meta.ts", "document.meta.ts", "other, meta.ts"])
def test_ignore_fields_lets_a_differing_field_match(
    cassette: Path,
    coll: Any,
    dead_users: Callable[[], Any],
    monkeypatch: pytest.MonkeyPatch,
    ignored: str,
) -> None:
    with timetracer.record(cassette):
        coll.insert_one({"_id": "e1", "meta": {"ts": "2024-01-01T10:00:00", "source": "web"}})
    monkeypatch.setenv("TIMETRACER_IGNORE_FIELDS", ignored)
    with timetracer.replay(cassette):
        users = dead_users()
        result = users.insert_one({"_id": "e1", "meta": {"ts": "2031-07-09T23:59:59", "source": "web"}})
        assert result.inserted_id == "e1"
        assert active_replayer().matched_fallback == 1


def test_without_ignore_fields_a_differing_field_is_a_mismatch(
    cassette: Path, coll: Any, dead_users: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with timetracer.record(cassette):
        coll.insert_one({"_id": "e1", "meta": {"ts": "2024-01-01T10:00:00", "source": "web"}})
    with timetracer.replay(cassette):
        with pytest.raises(ReplayMismatchError, match=r"document\.meta\.ts"):
            dead_users().insert_one({"_id": "e1", "meta": {"ts": "2031-07-09T23:59:59", "source": "web"}})
    # Ignoring one field does not ignore the others.
    monkeypatch.setenv("TIMETRACER_IGNORE_FIELDS", "meta.ts")
    with timetracer.replay(cassette):
        with pytest.raises(ReplayMismatchError, match=r"document\.meta\.source"):
            dead_users().insert_one({"_id": "e1", "meta": {"ts": "2031-07-09T23:59:59", "source": "cli"}})


# -- mismatches ------------------------------------------------------------------------------


def test_a_changed_filter_value_fails_with_a_short_message_naming_the_field(
    cassette: Path, coll: Any, dead_users: Callable[[], Any]
) -> None:
    coll.insert_one(dict(ALICE))
    with timetracer.record(cassette):
        coll.count_documents({})
        assert coll.find_one({"_id": "123"}) == ALICE
    with timetracer.replay(cassette):
        users = dead_users()
        assert users.count_documents({}) == 1
        returned: Optional[Any] = None
        with pytest.raises(ReplayMismatchError) as raised:
            returned = users.find_one({"_id": "1001"})
        assert returned is None, "a mismatched call never returns the recorded document"
        # The recorded call is still there for the call that does match it.
        assert users.find_one({"_id": "123"}) == ALICE
    message = str(raised.value)
    lines = message.splitlines()
    assert len(lines) <= 25, message
    assert "FIND_ONE" in lines[0] and "call #2" in lines[0]
    assert str(cassette) in message
    assert any(line.strip().startswith('filter._id: "1001" != "123"') for line in lines), message
    assert "Alice" not in message, "the message shows arguments, not the recorded result"


def test_the_mismatch_message_stays_short_for_large_arguments(
    cassette: Path, coll: Any, dead_users: Callable[[], Any]
) -> None:
    fields = [f"field_{n}" for n in range(12)]
    with timetracer.record(cassette):
        for variant in range(6):
            coll.find_one({name: f"recorded-{variant}-{name}" for name in fields})
    with timetracer.replay(cassette):
        with pytest.raises(ReplayMismatchError) as raised:
            dead_users().find_one({name: f"live-{name}" for name in fields})
    message = str(raised.value)
    assert len(message.splitlines()) <= 25, message
    assert "filter.field_0" in message
    assert "more differences" in message


def test_a_call_of_another_method_or_collection_is_a_mismatch(
    cassette: Path, coll: Any, dead_users: Callable[[], Any]
) -> None:
    with timetracer.record(cassette):
        coll.find_one({"_id": "123"})
    with timetracer.replay(cassette):
        with pytest.raises(ReplayMismatchError) as raised:
            dead_users().count_documents({"_id": "123"})
    assert "COUNT_DOCUMENTS" in str(raised.value)
    assert "method/namespace differ: FIND_ONE" in str(raised.value)


# -- strict mode -----------------------------------------------------------------------------


def test_strict_mode_has_no_fallback(cassette: Path, coll: Any, dead_users: Callable[[], Any]) -> None:
    with timetracer.record(cassette):
        coll.insert_one({"_id": "e1", "at": datetime.now(timezone.utc)})
    time.sleep(0.01)
    with pytest.raises(ReplayMismatchError, match=r"document\.at"):
        with timetracer.replay(cassette, config=TraceConfig.from_env({}, strict=True)):
            dead_users().insert_one({"_id": "e1", "at": datetime.now(timezone.utc)})
    # The same replay without strict mode matches by fallback.
    with timetracer.replay(cassette):
        dead_users().insert_one({"_id": "e1", "at": datetime.now(timezone.utc)})
        assert active_replayer().matched_fallback == 1


def test_strict_mode_fails_on_recorded_calls_left_unused(
    cassette: Path, coll: Any, dead_users: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    coll.insert_one(dict(ALICE))
    with timetracer.record(cassette):
        coll.find_one({"_id": "123"})
        coll.find_one({"_id": "456"})
        coll.count_documents({})
    # Not strict: unused calls are reported, not raised.
    with timetracer.replay(cassette):
        dead_users().find_one({"_id": "123"})
    monkeypatch.setenv("TIMETRACER_STRICT", "true")
    with pytest.raises(ReplayMismatchError) as raised:
        with timetracer.replay(cassette):
            assert dead_users().find_one({"_id": "123"}) == ALICE
    message = str(raised.value)
    assert "2 recorded calls were never made" in message
    assert f"eid=2 FIND_ONE on {coll.full_name}" in message
    assert f"eid=3 COUNT_DOCUMENTS on {coll.full_name}" in message
    assert str(cassette) in message


def test_strict_mode_lets_the_blocks_own_error_through(
    cassette: Path, coll: Any, dead_users: Callable[[], Any]
) -> None:
    with timetracer.record(cassette):
        coll.find_one({"_id": "123"})
        coll.count_documents({})
    with pytest.raises(LookupError, match="app bug"):
        with timetracer.replay(cassette, config=TraceConfig.from_env({}, strict=True)):
            dead_users().find_one({"_id": "123"})
            raise LookupError("app bug")


# -- the report at the end of a replay -------------------------------------------------------


def test_unused_calls_are_counted_in_the_report_and_listed_at_debug(
    cassette: Path, coll: Any, dead_users: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    with timetracer.record(cassette):
        coll.find_one({"_id": "123"})
        coll.count_documents({"age": {"$gt": 18}})
    caplog.set_level(logging.DEBUG, logger="timetracer")
    with timetracer.replay(cassette):
        dead_users().find_one({"_id": "123"})
    (line,) = report_lines(caplog)
    assert "1 calls matched exactly, 0 by fallback, 0 unmatched, 1 recorded calls unused" in line
    unused = [r for r in caplog.records if "unused recorded call" in r.getMessage()]
    assert len(unused) == 1 and unused[0].levelno == logging.DEBUG
    assert "eid=2 COUNT_DOCUMENTS" in unused[0].getMessage()
    assert "$gt" in unused[0].getMessage()


# -- the replayed response of a WSGI app -----------------------------------------------------


class BufferedClient(Client):
    """werkzeug's test client, reading and closing every response as a server does (so the
    middleware finishes the request before the test looks at the cassette or the log)."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["buffered"] = True
        return super().open(*args, **kwargs)


class AppFactory:
    """Flask apps over one database, wrapped in the WSGI middleware; clients closed at the end.

    :param db_name: the database the routes use.
    :param cassette_dir: where the middleware records and replays.
    """

    def __init__(self, db_name: str, cassette_dir: Path) -> None:
        self.db_name = db_name
        self.cassette_dir = cassette_dir
        self.clients: List[pymongo.MongoClient[Any]] = []

    def __call__(
        self,
        mongo_uri: str,
        mode: str,
        *,
        extra_field: bool = False,
        upper_email: bool = False,
        filter_extra: Optional[Dict[str, Any]] = None,
        count_visits: bool = False,
        **config: Any,
    ) -> BufferedClient:
        mongo: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=300)
        self.clients.append(mongo)
        db = mongo[self.db_name]
        app = Flask(f"tt_matching_{len(self.clients)}")

        @app.route("/v1/users/<user_id>")
        @app.route("/v2/users/<user_id>")
        def get_user(user_id: str) -> Any:
            user = db.users.find_one({"_id": user_id, **(filter_extra or {})})
            if user is None:
                return jsonify({"error": "not found"}), 404
            if extra_field:
                user["extra"] = "added in replay"
            if upper_email:
                user["email"] = user["email"].upper()
            return jsonify(user)

        @app.route("/v1/users/<user_id>/visit", methods=["POST"])
        def visit(user_id: str) -> Any:
            db.visits.insert_one({"user": user_id, "at": datetime.now(timezone.utc)})
            user = db.users.find_one({"_id": user_id})
            if count_visits or request.args.get("count"):
                db.visits.count_documents({"user": user_id})
            return jsonify({"name": user["name"]})

        settings = TraceConfig.from_env({}, mode=mode, cassette_dir=self.cassette_dir, **config)
        app.wsgi_app = TimeTracerMiddleware(app.wsgi_app, settings)  # type: ignore[method-assign]
        return BufferedClient(app)

    def close(self) -> None:
        for mongo in self.clients:
            mongo.close()


@pytest.fixture
def apps(fresh_db: Database[Any], tmp_path: Path) -> Iterator[AppFactory]:
    fresh_db.users.insert_one(dict(ALICE))
    factory = AppFactory(fresh_db.name, tmp_path / "cassettes")
    yield factory
    factory.close()


def test_replayed_response_identical(apps: AppFactory, mongo_uri: str, dead_mongo_uri: str) -> None:
    recorded = apps(mongo_uri, "record").get("/v1/users/123")
    assert recorded.status_code == 200 and recorded.get_json() == ALICE
    assert REPLAY_HEADER not in recorded.headers
    assert (apps.cassette_dir / f"{cassette_name('GET', '/v1/users/123')}.json").is_file()

    replayed = apps(dead_mongo_uri, "replay").get("/v1/users/123")
    assert replayed.headers[REPLAY_HEADER] == "identical"
    assert replayed.get_json() == ALICE


def test_replayed_response_different_names_the_json_field(
    apps: AppFactory, mongo_uri: str, dead_mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    apps(mongo_uri, "record").get("/v1/users/123")
    caplog.set_level(logging.INFO, logger="timetracer")
    replayed = apps(dead_mongo_uri, "replay", extra_field=True).get("/v1/users/123")
    assert replayed.headers[REPLAY_HEADER] == "different"
    assert replayed.get_json()["extra"] == "added in replay"
    (line,) = report_lines(caplog)
    assert "response different" in line
    assert 'body.extra: "added in replay" != <missing>' in line
    assert len(line) < 400, "the diff in the report line is short"


def test_a_changed_body_is_different_even_when_cut_by_the_size_limit(
    apps: AppFactory, mongo_uri: str, dead_mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Only the first 40 bytes are kept: not valid JSON, so the kept bytes themselves are compared.
    recorded = apps(mongo_uri, "record", max_body_bytes=40).get("/v1/users/123")
    assert len(recorded.get_data()) > 40
    same = apps(dead_mongo_uri, "replay", max_body_bytes=40).get("/v1/users/123")
    assert same.headers[REPLAY_HEADER] == "identical"
    caplog.set_level(logging.INFO, logger="timetracer")
    changed = apps(dead_mongo_uri, "replay", max_body_bytes=40, upper_email=True).get("/v1/users/123")
    assert len(changed.get_data()) == len(recorded.get_data())
    assert changed.headers[REPLAY_HEADER] == "different"
    (line,) = report_lines(caplog)
    assert "body: 40 bytes differ from the recorded 40 bytes" in line


def test_replayed_call_without_a_match_gives_mismatch(
    apps: AppFactory, mongo_uri: str, dead_mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    apps(mongo_uri, "record").get("/v1/users/123")
    caplog.set_level(logging.INFO, logger="timetracer")
    replayed = apps(dead_mongo_uri, "replay", filter_extra={"active": True}).get("/v1/users/123")
    assert replayed.status_code == 500  # the app's handler got ReplayMismatchError
    assert replayed.headers[REPLAY_HEADER] == "mismatch"
    (line,) = report_lines(caplog)
    assert "0 calls matched exactly, 0 by fallback, 1 unmatched, 1 recorded calls unused" in line


def test_replaying_another_path_from_a_fixed_cassette_is_allowed_and_reported(
    apps: AppFactory, mongo_uri: str, dead_mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    apps(mongo_uri, "record").get("/v1/users/123")
    fixed = apps.cassette_dir / f"{cassette_name('GET', '/v1/users/123')}.json"
    caplog.set_level(logging.INFO, logger="timetracer")
    replayed = apps(dead_mongo_uri, "replay", cassette=fixed).get("/v2/users/123")
    assert replayed.status_code == 200
    # Every call matched and the body is the same, but the recording is another request's: the
    # verdict says so rather than "identical".
    assert replayed.headers[REPLAY_HEADER] == "different"
    assert replayed.get_json() == ALICE
    (line,) = report_lines(caplog)
    assert "request GET /v2/users/123 replayed from a cassette recorded for GET /v1/users/123" in line
    assert "path '/v2/users/123' != recorded '/v1/users/123'" in line


def test_request_report_counts_exact_fallback_and_unused_calls(
    apps: AppFactory, mongo_uri: str, dead_mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorded = apps(mongo_uri, "record", count_visits=True).post("/v1/users/123/visit")
    assert recorded.get_json() == {"name": "Alice"}
    time.sleep(0.01)
    caplog.set_level(logging.DEBUG, logger="timetracer")
    replayed = apps(dead_mongo_uri, "replay").post("/v1/users/123/visit")  # this version skips the count
    assert replayed.headers[REPLAY_HEADER] == "identical"
    (line,) = report_lines(caplog)
    assert "1 calls matched exactly, 1 by fallback, 0 unmatched, 1 recorded calls unused" in line
    assert "response identical" in line
    (unused,) = [r for r in caplog.records if "unused recorded call" in r.getMessage()]
    assert unused.levelno == logging.DEBUG
    assert "eid=3 COUNT_DOCUMENTS" in unused.getMessage()
