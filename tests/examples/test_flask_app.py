"""``examples/pymongo_flask_app``: record the shop app's requests over HTTP, replay them with the
database stopped, and get byte-identical responses."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict

from timetracer._request import fingerprint

from ._support import (
    EXAMPLES,
    example_env,
    free_port,
    load_example_module,
    methods,
    read_json,
    run_app,
    wait_for_files,
)

APP_DIR = EXAMPLES / "pymongo_flask_app"
REQUESTS = [
    ("GET", "/users/123", None),
    ("GET", "/products", None),
    ("POST", "/products", {"name": "Desk lamp", "price": 24.9}),
]
# A request with a body has the digest of its normalised body in its name (README: "How requests
# are named and matched").
POST_BODY = {"query": "", "headers": {"content-type": "application/json"}, "body": json.dumps(REQUESTS[2][2])}
POST_CASSETTE = f"POST__products~{fingerprint(POST_BODY)}.json"
CASSETTES = ["GET__users_123.json", "GET__products.json", POST_CASSETTE]


def flask_command(port: int) -> list:
    return [sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port)]


def seed(uri: str) -> None:
    load_example_module(APP_DIR / "seed.py").seed(uri)


def test_record_then_replay_with_the_database_stopped(
    tmp_path: Path, mongo_server_factory: Callable[..., Any]
) -> None:
    server = mongo_server_factory()
    seed(server.uri)
    cassettes = tmp_path / "cassettes"
    env: Dict[str, str] = example_env(MONGODB_URI=server.uri, TIMETRACER_CASSETTE_DIR=str(cassettes))

    port = free_port()
    with run_app(
        flask_command(port), APP_DIR, {**env, "TIMETRACER_MODE": "record"}, port, tmp_path / "record.log"
    ) as app:
        recorded = [app.request(method, path, payload) for method, path, payload in REQUESTS]
        wait_for_files(cassettes, CASSETTES)
    assert [r.status for r in recorded] == [200, 200, 201]
    assert recorded[0].json() == {"_id": "123", "name": "Alice", "email": "alice@example.com", "age": 30}
    assert [p["name"] for p in recorded[1].json()["products"]] == ["Keyboard", "Mouse"]
    created = recorded[2].json()
    assert created["created"] is True and len(created["product_id"]) == 24
    assert sorted(p.name for p in cassettes.iterdir()) == sorted(CASSETTES)
    assert methods(read_json(cassettes / "GET__users_123.json")) == ["FIND_ONE"]
    assert methods(read_json(cassettes / POST_CASSETTE)) == ["INSERT_ONE"]

    server.stop()

    port = free_port()
    with run_app(
        flask_command(port), APP_DIR, {**env, "TIMETRACER_MODE": "replay"}, port, tmp_path / "replay.log"
    ) as app:
        replayed = [app.request(method, path, payload) for method, path, payload in REQUESTS]
    for before, after in zip(recorded, replayed):
        assert after.status == before.status
        assert after.body == before.body
        assert after.headers["X-Timetracer-Replay"] == "identical"
    assert replayed[2].json()["product_id"] == created["product_id"]


def test_replay_one_cassette_as_in_the_quick_start(
    tmp_path: Path, mongo_server_factory: Callable[..., Any]
) -> None:
    """``TIMETRACER_MODE=replay TIMETRACER_CASSETTE=./cassettes/GET__users_123.json``, no database."""
    server = mongo_server_factory()
    seed(server.uri)
    env = example_env(MONGODB_URI=server.uri, TIMETRACER_CASSETTE_DIR=str(tmp_path / "cassettes"))
    port = free_port()
    with run_app(
        flask_command(port), APP_DIR, {**env, "TIMETRACER_MODE": "record"}, port, tmp_path / "record.log"
    ) as app:
        recorded = app.request("GET", "/users/123")
        wait_for_files(tmp_path / "cassettes", ["GET__users_123.json"])
    server.stop()

    cassette = str(tmp_path / "cassettes" / "GET__users_123.json")
    env = example_env(MONGODB_URI=server.uri, TIMETRACER_MODE="replay", TIMETRACER_CASSETTE=cassette)
    port = free_port()
    with run_app(flask_command(port), APP_DIR, env, port, tmp_path / "replay.log") as app:
        replayed = app.request("GET", "/users/123")
    assert replayed.status == 200
    assert replayed.body == recorded.body
    assert replayed.headers["X-Timetracer-Replay"] == "identical"
