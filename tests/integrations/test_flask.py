"""Tests of the Flask adapter: ``auto_setup`` wraps ``app.wsgi_app`` once and records requests."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path
from typing import Any, Dict

import pytest

flask = pytest.importorskip("flask")

from timetracer import context  # noqa: E402
from timetracer.config import TraceConfig  # noqa: E402
from timetracer.integrations.flask import auto_setup  # noqa: E402
from timetracer.wsgi import SESSION_KEY, TimeTracerMiddleware  # noqa: E402

USERS: Dict[str, Dict[str, Any]] = {"123": {"_id": "123", "name": "Alice"}}


def quick_start_app(config: Any = None) -> Any:
    """The spec's Quick Start app, with a dict standing in for the database."""
    app = auto_setup(flask.Flask(__name__), config)

    @app.route("/users/<user_id>")
    def get_user(user_id: str) -> Any:
        session = flask.request.environ.get(SESSION_KEY)
        user = dict(USERS.get(user_id, {}))
        user["traced"] = session is not None and context.current() is session
        return flask.jsonify(user)

    @app.route("/fail")
    def fail() -> Any:
        raise LookupError("no such thing")

    return app


def test_auto_setup_returns_the_app_and_registers_the_middleware() -> None:
    app = flask.Flask(__name__)
    original = app.wsgi_app
    assert auto_setup(app, TraceConfig.from_env({})) is app
    middleware = app.extensions["timetracer"]
    assert isinstance(middleware, TimeTracerMiddleware)
    assert app.wsgi_app is middleware
    assert middleware.app == original


def test_a_second_auto_setup_is_refused() -> None:
    app = auto_setup(flask.Flask(__name__), TraceConfig.from_env({}))
    with pytest.raises(RuntimeError, match=r"already set up.*once per app"):
        auto_setup(app, TraceConfig.from_env({}))


def test_auto_setup_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMETRACER_MODE", "recrod")
    with pytest.raises(ValueError, match="TIMETRACER_MODE"):
        auto_setup(flask.Flask(__name__))


def test_the_app_is_not_kept_alive_by_timetracer() -> None:
    app = auto_setup(flask.Flask(__name__), TraceConfig.from_env({}))
    ref = weakref.ref(app)
    del app
    gc.collect()
    assert ref() is None


def test_quick_start_records_the_spec_cassette(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("TIMETRACER_CASSETTE", "TIMETRACER_CASSETTE_DIR", "TIMETRACER_SAMPLE_RATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TIMETRACER_MODE", "record")
    app = quick_start_app()
    response = app.test_client().get("/users/123", buffered=True)
    assert response.get_json() == {"_id": "123", "name": "Alice", "traced": True}

    document = json.loads((tmp_path / "cassettes" / "GET__users_123.json").read_text())
    assert document["request"]["method"] == "GET" and document["request"]["path"] == "/users/123"
    assert document["response"]["status"] == 200
    assert json.loads(document["response"]["body"]["data"])["name"] == "Alice"
    assert document["events"] == []


def test_record_then_replay_with_a_fixed_cassette(tmp_path: Path) -> None:
    recording = quick_start_app(TraceConfig.from_env({}, mode="record", cassette_dir=tmp_path))
    recording.test_client().get("/users/123", buffered=True)
    path = tmp_path / "GET__users_123.json"

    replaying = quick_start_app(TraceConfig.from_env({}, mode="replay", cassette=path))
    response = replaying.test_client().get("/users/123", buffered=True)
    assert response.status_code == 200
    assert response.get_json()["traced"] is True


def test_view_errors_become_500s_that_errors_only_records(tmp_path: Path) -> None:
    app = quick_start_app(TraceConfig.from_env({}, mode="record", cassette_dir=tmp_path, errors_only=True))
    client = app.test_client()
    assert client.get("/users/123", buffered=True).status_code == 200
    assert client.get("/fail", buffered=True).status_code == 500
    assert [p.name for p in tmp_path.iterdir()] == ["GET__fail.json"]
