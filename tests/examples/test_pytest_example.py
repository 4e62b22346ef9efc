"""``examples/pytest_example``: the spec's tests, run by pytest as a user would run them.

``test_get_user_from_cassette`` replays the committed cassette with no server at all;
``test_create_user_recorded`` records against a server on localhost:27017.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ._support import EXAMPLES, REPO_ROOT, example_env, methods, read_json, run_python

EXAMPLE = EXAMPLES / "pytest_example"
COMMITTED = EXAMPLE / "cassettes" / "GET__users_123.json"


def pytest_args(*extra: str) -> list:
    return ["-m", "pytest", "examples/pytest_example", "-p", "no:cacheprovider", "-q", *extra]


def test_replays_the_committed_cassette_offline(tmp_path: Path, dead_mongo_uri: str) -> None:
    env = example_env(TIMETRACER_CASSETTE_DIR=str(tmp_path), MONGODB_URI=dead_mongo_uri)
    run = run_python(pytest_args("-k", "from_cassette"), REPO_ROOT, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 deselected" in run.stdout
    assert list(tmp_path.iterdir()) == []  # replay wrote nothing


def test_runs_both_spec_tests_with_a_server_on_the_default_port(
    tmp_path: Path, mongo_on_default_port: Any
) -> None:
    env = example_env(TIMETRACER_CASSETTE_DIR=str(tmp_path))
    run = run_python(pytest_args("-s"), REPO_ROOT, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
    match = re.search(r"Cassette saved: (.+)$", run.stdout, re.MULTILINE)
    assert match, run.stdout
    cassette = Path(match.group(1))
    assert cassette == tmp_path / "test_users__test_create_user_recorded.json"
    document = read_json(cassette)
    assert methods(document) == ["INSERT_ONE"]
    assert document["events"][0]["signature"]["url"] == "testdb.users"


def test_record_cassette_script_reproduces_the_committed_cassette(
    tmp_path: Path, mongoeco_python: Path
) -> None:
    run = run_python([str(EXAMPLE / "record_cassette.py"), "--out", str(tmp_path)], REPO_ROOT, example_env())
    assert run.returncode == 0, run.stdout + run.stderr
    fresh, committed = read_json(tmp_path / "GET__users_123.json"), read_json(COMMITTED)
    for document in (fresh, committed):
        for event in document["events"]:
            del event["start_offset_ms"], event["duration_ms"]
    assert fresh["events"] == committed["events"]
    assert fresh["request"]["path"] == committed["request"]["path"] == "/users/123"
    assert fresh["response"]["body"] == committed["response"]["body"]
