"""``examples/django_app``: record the blog's views under ``manage.py runserver``, replay them with
the database stopped, and get byte-identical responses."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

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

APP_DIR = EXAMPLES / "django_app"
PATHS = ["/posts/", "/posts/hello-world/", "/posts/no-such-post/"]
CASSETTES = ["GET__posts.json", "GET__posts_hello-world.json", "GET__posts_no-such-post.json"]


def runserver(port: int) -> list:
    return [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]


def test_record_then_replay_with_the_database_stopped(
    tmp_path: Path, mongo_server_factory: Callable[..., Any]
) -> None:
    server = mongo_server_factory()
    load_example_module(APP_DIR / "seed.py").seed(server.uri)
    cassettes = tmp_path / "cassettes"
    env = example_env(MONGODB_URI=server.uri, TIMETRACER_CASSETTE_DIR=str(cassettes))

    port = free_port()
    with run_app(
        runserver(port), APP_DIR, {**env, "TIMETRACER_MODE": "record"}, port, tmp_path / "record.log"
    ) as app:
        recorded = [app.request("GET", path) for path in PATHS]
        wait_for_files(cassettes, CASSETTES)
    assert [r.status for r in recorded] == [200, 200, 404], app.output()
    posts = recorded[0].json()["posts"]
    assert [p["_id"] for p in posts] == ["hello-world", "replay-without-a-database"]
    assert recorded[1].json()["title"] == "Hello, world"
    assert recorded[1].json()["published_at"] == "2026-01-22T14:00:00"
    assert recorded[2].json() == {"error": "Not found"}
    assert sorted(p.name for p in cassettes.iterdir()) == sorted(CASSETTES)  # no script-mode cassette
    assert methods(read_json(cassettes / "GET__posts.json")) == ["FIND"]
    assert methods(read_json(cassettes / "GET__posts_hello-world.json")) == ["FIND_ONE"]

    server.stop()

    port = free_port()
    with run_app(
        runserver(port), APP_DIR, {**env, "TIMETRACER_MODE": "replay"}, port, tmp_path / "replay.log"
    ) as app:
        replayed = [app.request("GET", path) for path in PATHS]
    for before, after in zip(recorded, replayed):
        assert after.status == before.status
        assert after.body == before.body
        assert after.headers["X-Timetracer-Replay"] == "identical"
