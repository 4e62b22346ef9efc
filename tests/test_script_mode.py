"""Script mode and the ``timetracer`` command, run as real Python processes against the real server.

Each test writes a small script and runs it with ``subprocess``: recorded against a MongoDB
server, then replayed with that server stopped, so a replay that reached the database would fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pymongo
import pytest

# The spec's ETL shape: enable_pymongo() and import timetracer first, the TIMETRACER_* settings
# after (with setdefault, so the environment can still say replay or off).
ETL_SCRIPT = textwrap.dedent(
    """
    import os
    import sys

    import timetracer
    from timetracer.plugins import enable_pymongo

    enable_pymongo()
    os.environ.setdefault("TIMETRACER_MODE", "record")
    os.environ.setdefault("TIMETRACER_CASSETTE_DIR", "./etl_cassettes")

    from pymongo import MongoClient

    client = MongoClient(os.environ["APP_MONGO_URI"], serverSelectionTimeoutMS=1500)
    db = client[os.environ["APP_DB"]]

    users = list(db.users.find({"active": True}).sort("_id", 1))
    print("users:", [u["email"] for u in users])
    result = db.migrated.insert_one({"emails": [u["email"] for u in users]})
    print("inserted:", result.inserted_id)
    db.users.update_one({"_id": users[0]["_id"]}, {"$set": {"migrated": True}})
    print("first:", db.users.find_one({"_id": users[0]["_id"]}))
    print("migrated:", db.migrated.count_documents({}))
    expected = os.environ.get("APP_EXPECTED_CASSETTE")
    if expected:
        print("cassette exists before exit:", os.path.exists(expected), file=sys.stderr)
    """
)

SEED = [
    {"_id": 1, "email": "ann@example.com", "active": True},
    {"_id": 2, "email": "bob@example.com", "active": False},
    {"_id": 3, "email": "cyd@example.com", "active": True},
]

EXPECTED_OUTPUT_START = [
    "users: ['ann@example.com', 'cyd@example.com']",
]


# -- helpers ---------------------------------------------------------------------------------


class Runner:
    """Runs Python in a subprocess from ``cwd`` with a clean ``TIMETRACER_*`` environment.

    :param cwd: the working directory (the test's temporary directory).
    :param base_env: variables every run gets (the app's database settings).
    """

    def __init__(self, cwd: Path, base_env: Dict[str, str]) -> None:
        self.cwd = cwd
        self.base_env = base_env

    def __call__(
        self, *args: str, env: Optional[Dict[str, str]] = None, expect_rc: Optional[int] = 0
    ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMETRACER_", "APP_"))}
        full_env.update(self.base_env)
        full_env.update(env or {})
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"
        done = subprocess.run(
            [sys.executable, *args],
            cwd=self.cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if expect_rc is not None:
            assert done.returncode == expect_rc, (
                f"exit code {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done


@pytest.fixture
def database(mongo_server_factory: Callable[..., Any]) -> Any:
    """A dedicated server (so a test can stop it) with the seed users in ``etl.users``."""
    server = mongo_server_factory()
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000)
    client.etl.users.insert_many([dict(doc) for doc in SEED])
    client.close()
    return server


@pytest.fixture
def run(tmp_path: Path, database: Any) -> Runner:
    (tmp_path / "etl_job.py").write_text(ETL_SCRIPT, encoding="utf-8")
    return Runner(tmp_path, {"APP_MONGO_URI": database.uri, "APP_DB": "etl"})


def cassette_methods(path: Path) -> List[str]:
    return [event["signature"]["method"] for event in json.loads(path.read_text("utf-8"))["events"]]


def assert_ran_against_the_database(stdout: str) -> None:
    lines = stdout.splitlines()
    assert lines[0] == "users: ['ann@example.com', 'cyd@example.com']"
    assert lines[1].startswith("inserted: ")
    assert lines[2] == "first: {'_id': 1, 'email': 'ann@example.com', 'active': True, 'migrated': True}"
    assert lines[3] == "migrated: 1"


RECORDED_METHODS = ["FIND", "INSERT_ONE", "UPDATE_ONE", "FIND_ONE", "COUNT_DOCUMENTS"]


# -- script mode -----------------------------------------------------------------------------


def test_script_records_at_exit_then_replays_with_the_server_stopped(
    run: Runner, tmp_path: Path, database: Any
) -> None:
    cassette = tmp_path / "etl_cassettes" / "etl_job.json"
    recorded = run("etl_job.py", env={"APP_EXPECTED_CASSETTE": str(cassette)})
    assert_ran_against_the_database(recorded.stdout)
    assert "cassette exists before exit: False" in recorded.stderr
    assert cassette_methods(cassette) == RECORDED_METHODS
    written = cassette.read_bytes()

    database.stop()
    replayed = run("etl_job.py", env={"TIMETRACER_MODE": "replay"})
    assert replayed.stdout == recorded.stdout
    assert cassette.read_bytes() == written, "replay never rewrites the cassette"

    # The same run without replay really needs the (stopped) server.
    off = run("etl_job.py", env={"TIMETRACER_MODE": "off"}, expect_rc=None)
    assert off.returncode != 0 and "ServerSelectionTimeoutError" in off.stderr


def test_timetracer_cassette_overrides_the_path(run: Runner, tmp_path: Path, database: Any) -> None:
    custom = tmp_path / "elsewhere" / "nightly.json"
    recorded = run("etl_job.py", env={"TIMETRACER_CASSETTE": str(custom)})
    assert cassette_methods(custom) == RECORDED_METHODS
    assert not (tmp_path / "etl_cassettes").exists()

    database.stop()
    replayed = run("etl_job.py", env={"TIMETRACER_MODE": "replay", "TIMETRACER_CASSETTE": str(custom)})
    assert replayed.stdout == recorded.stdout


def test_mode_off_writes_nothing(run: Runner, tmp_path: Path) -> None:
    done = run("etl_job.py", env={"TIMETRACER_MODE": "off"})
    assert_ran_against_the_database(done.stdout)
    assert not (tmp_path / "etl_cassettes").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etl_job.py"]


def test_a_bad_mode_is_a_config_error_naming_the_variable(run: Runner, tmp_path: Path) -> None:
    done = run("etl_job.py", env={"TIMETRACER_MODE": "recrod"}, expect_rc=None)
    assert done.returncode != 0
    assert "timetracer.errors.ConfigError: TIMETRACER_MODE='recrod' is not valid" in done.stderr
    assert "'off', 'record', 'replay'" in done.stderr
    assert not (tmp_path / "etl_cassettes").exists()


MIDDLEWARE_SCRIPT = textwrap.dedent(
    """
    import os

    import timetracer
    from timetracer.plugins import enable_pymongo
    from timetracer.wsgi import TimeTracerMiddleware

    enable_pymongo()
    os.environ["TIMETRACER_MODE"] = "record"
    os.environ["TIMETRACER_CASSETTE_DIR"] = "./cassettes"

    from pymongo import MongoClient
    from werkzeug.test import Client

    def connect():
        uri = os.environ["APP_MONGO_URI"]
        return MongoClient(uri, serverSelectionTimeoutMS=1500)[os.environ["APP_DB"]]

    def app(environ, start_response):
        count = db.users.count_documents({"active": True})
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(count).encode()]

    if os.environ["APP_CLIENT_FIRST"] == "1":  # a module-level client made before the app is wrapped
        db = connect()
        wrapped = TimeTracerMiddleware(app)
    else:
        wrapped = TimeTracerMiddleware(app)
        db = connect()
    print("outside:", db.users.count_documents({}))  # belongs to no request: not recorded
    response = Client(wrapped).get("/stats", buffered=True)
    print("request:", response.get_data(as_text=True))
    print("outside again:", db.users.find_one({"_id": 2})["email"])
    """
)


@pytest.mark.parametrize("client_first", ["1", "0"], ids=["client-before-middleware", "middleware-first"])
def test_with_a_middleware_calls_outside_requests_are_not_recorded(
    run: Runner, tmp_path: Path, client_first: str
) -> None:
    (tmp_path / "web_app.py").write_text(MIDDLEWARE_SCRIPT, encoding="utf-8")
    done = run("web_app.py", env={"APP_CLIENT_FIRST": client_first})
    assert done.stdout.splitlines() == ["outside: 3", "request: 2", "outside again: bob@example.com"]
    written = sorted(p.name for p in (tmp_path / "cassettes").iterdir())
    assert written == ["GET__stats.json"], "only the request is recorded, no web_app.json"
    assert cassette_methods(tmp_path / "cassettes" / "GET__stats.json") == ["COUNT_DOCUMENTS"]


# -- the timetracer command ------------------------------------------------------------------

# Sets TIMETRACER_MODE itself, unconditionally, as the spec's ETL script does: under the command
# the command's session wins. Imports a module next to it, and ends with sys.exit().
CLI_SCRIPT = textwrap.dedent(
    """
    import os
    import sys

    from timetracer.plugins import enable_pymongo

    enable_pymongo()
    os.environ["TIMETRACER_MODE"] = "record"

    from pymongo import MongoClient

    import job_helpers

    db = MongoClient(os.environ["APP_MONGO_URI"], serverSelectionTimeoutMS=1500)[os.environ["APP_DB"]]
    print("argv:", sys.argv[1:])
    print("emails:", job_helpers.emails(db))
    print("inserted:", db.reports.insert_one({"total": 2}).inserted_id)
    sys.exit(int(os.environ.get("APP_EXIT", "0")))
    """
)

CLI_HELPERS = textwrap.dedent(
    """
    def emails(db):
        return [u["email"] for u in db.users.find({"active": True}).sort("_id", 1)]
    """
)


@pytest.fixture
def cli_job(tmp_path: Path) -> Path:
    """``jobs/report_job.py`` and its sibling module ``jobs/job_helpers.py``."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "report_job.py").write_text(CLI_SCRIPT, encoding="utf-8")
    (folder / "job_helpers.py").write_text(CLI_HELPERS, encoding="utf-8")
    return folder / "report_job.py"


def test_cli_record_then_replay_with_the_server_stopped(
    run: Runner, tmp_path: Path, cli_job: Path, database: Any
) -> None:
    recorded = run(
        "-m", "timetracer", "record", "--cassette", "out/report.json", "jobs/report_job.py", "--day", "7"
    )
    lines = recorded.stdout.splitlines()
    assert lines[:2] == ["argv: ['--day', '7']", "emails: ['ann@example.com', 'cyd@example.com']"]
    assert recorded.stderr.splitlines() == ["timetracer: recorded 2 calls → out/report.json"]
    cassette = tmp_path / "out" / "report.json"
    document = json.loads(cassette.read_text("utf-8"))
    assert [e["signature"]["method"] for e in document["events"]] == ["FIND", "INSERT_ONE"]
    assert "error" not in document, "sys.exit(0) is a normal end of the script"
    assert not (tmp_path / "cassettes").exists(), "script mode stays off under the command"

    database.stop()
    replayed = run("-m", "timetracer", "replay", "out/report.json", "jobs/report_job.py", "--day", "7")
    assert replayed.stdout == recorded.stdout


def test_cli_record_default_name_and_failing_exit_code(run: Runner, tmp_path: Path, cli_job: Path) -> None:
    failed = run("-m", "timetracer", "record", "jobs/report_job.py", env={"APP_EXIT": "3"}, expect_rc=3)
    cassette = tmp_path / "cassettes" / "report_job.json"
    document = json.loads(cassette.read_text("utf-8"))
    assert document["error"] == {"type": "builtins.SystemExit", "message": "3"}
    assert [e["signature"]["method"] for e in document["events"]] == ["FIND", "INSERT_ONE"]
    assert "emails:" in failed.stdout


def test_cli_replay_of_a_missing_cassette_fails(run: Runner, cli_job: Path) -> None:
    done = run("-m", "timetracer", "replay", "nope.json", "jobs/report_job.py", expect_rc=None)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["timetracer replay: cassette cassettes/nope.json does not exist"]
    assert "emails:" not in done.stdout
