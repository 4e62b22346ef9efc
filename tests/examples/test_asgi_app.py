"""``examples/asgi_app``: the Starlette + Motor + AsyncMongoClient shop under a real uvicorn process.
Record every route against the test server, stop the database, replay: byte-identical responses."""

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

APP_DIR = EXAMPLES / "asgi_app"
REQUESTS = [
    ("GET", "/users/123", None),
    ("GET", "/users/999", None),
    ("GET", "/products", None),
    ("POST", "/products", {"name": "Desk lamp", "price": 24.9}),
    ("GET", "/stats", None),
    ("POST", "/orders", {"order_id": "A-1", "user_id": "456"}),
]


def _named(body: Dict[str, Any]) -> str:
    """The digest a request with this JSON body has in its name, as for WSGI (README: "How
    requests are named and matched")."""
    return fingerprint({"query": "", "headers": {"content-type": "application/json"}, "body": json.dumps(body)})


POST_PRODUCTS = f"POST__products~{_named(REQUESTS[3][2])}.json"
POST_ORDERS = f"POST__orders~{_named(REQUESTS[5][2])}.json"
CASSETTES = [
    "GET__users_123.json",
    "GET__users_999.json",
    "GET__products.json",
    POST_PRODUCTS,
    "GET__stats.json",
    POST_ORDERS,
]


def uvicorn_command(port: int) -> list:
    return [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port), "--log-level", "warning"]


def test_record_then_replay_with_the_database_stopped(
    tmp_path: Path, mongo_server_factory: Callable[..., Any]
) -> None:
    server = mongo_server_factory()
    load_example_module(APP_DIR / "seed.py").seed(server.uri)
    cassettes = tmp_path / "cassettes"
    env: Dict[str, str] = example_env(MONGODB_URI=server.uri, TIMETRACER_CASSETTE_DIR=str(cassettes))

    port = free_port()
    with run_app(
        uvicorn_command(port), APP_DIR, {**env, "TIMETRACER_MODE": "record"}, port, tmp_path / "record.log"
    ) as app:
        recorded = [app.request(method, path, payload) for method, path, payload in REQUESTS]
        wait_for_files(cassettes, CASSETTES)
    assert [r.status for r in recorded] == [200, 404, 200, 201, 200, 409], app.output()
    assert recorded[0].json() == {"_id": "123", "name": "Alice", "email": "alice@example.com", "age": 30}
    assert [p["name"] for p in recorded[2].json()["products"]] == ["Mouse", "Keyboard"]
    assert recorded[4].json() == {
        "products_by_stock": [{"_id": False, "n": 1}, {"_id": True, "n": 3}],
        "users": 2,
    }
    assert recorded[5].json() == {"error": "DuplicateKeyError", "code": 11000}
    assert sorted(p.name for p in cassettes.iterdir()) == sorted(CASSETTES)
    assert methods(read_json(cassettes / "GET__products.json")) == ["FIND"]
    assert sorted(methods(read_json(cassettes / "GET__stats.json"))) == ["AGGREGATE", "COUNT_DOCUMENTS"]
    assert methods(read_json(cassettes / POST_ORDERS)) == ["INSERT_ONE"]

    server.stop()

    port = free_port()
    with run_app(
        uvicorn_command(port), APP_DIR, {**env, "TIMETRACER_MODE": "replay"}, port, tmp_path / "replay.log"
    ) as app:
        replayed = [app.request(method, path, payload) for method, path, payload in REQUESTS]
    for (method, path, _), before, after in zip(REQUESTS, recorded, replayed):
        assert after.status == before.status, (method, path, app.output())
        assert after.body == before.body, (method, path)
        headers = {name.lower(): value for name, value in after.headers.items()}  # ASGI: lower-case
        assert headers["x-timetracer-replay"] == "identical", (method, path)
