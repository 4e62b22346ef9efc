"""Tests of the pytest plugin, run through ``pytester`` in separate pytest processes.

The plugin is not loaded here by hand: each inner run finds it through the ``pytest11`` entry
point, as a user's test suite does. Cassettes are recorded against the real test server (by this
test, or by the inner run itself); replays use a client on a dead address, or a stopped server.
"""

from __future__ import annotations

import json
import socket
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pymongo
import pytest
from flask import Flask, jsonify
from pymongo.database import Database
from werkzeug.test import Client

import timetracer
from timetracer.config import TraceConfig
from timetracer.wsgi import TimeTracerMiddleware

pytest_plugins = ["pytester"]

ALICE = {"_id": "123", "name": "Alice", "email": "alice@example.com", "age": 30}
INNER_TIMEOUT = 180


# -- fixtures and helpers --------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("isolated_pymongo_plugin")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner pytest run in its own process (the plugin comes from its entry point there)."""
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=INNER_TIMEOUT)


def load(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def methods(path: Path) -> List[str]:
    return [event["signature"]["method"] for event in load(path)["events"]]


@pytest.fixture
def users(fresh_db: Database[Any]) -> Any:
    """The live ``users`` collection of a fresh database, holding Alice."""
    fresh_db.users.insert_one(dict(ALICE))
    return fresh_db.users


@pytest.fixture
def alice_cassette(tmp_path: Path, users: Any) -> Path:
    """A cassette of ``find_one({"_id": "123"})`` on ``users``, recorded against the real server."""
    path = tmp_path / "recorded" / "alice.json"
    with timetracer.record(path):
        assert users.find_one({"_id": "123"}) == ALICE
    return path


# The inner tests read the database settings from these variables.
REPLAY_TEST = textwrap.dedent(
    """
    import os

    from pymongo import MongoClient

    from timetracer.plugins import enable_pymongo


    def test_replay(timetracer_replay):
        enable_pymongo()
        with timetracer_replay(os.environ["TT_CASSETTE"]) as path:
            client = MongoClient(os.environ["TT_URI"], serverSelectionTimeoutMS=500)
            user = client[os.environ["TT_DB"]].users.find_one({"_id": os.environ.get("TT_ID", "123")})
        print("REPLAYED FROM", path)
        assert user == {"_id": "123", "name": "Alice", "email": "alice@example.com", "age": 30}
    """
)


# -- loading ---------------------------------------------------------------------------------


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    found = entry_points()
    group = found.select(group="pytest11") if hasattr(found, "select") else found.get("pytest11", [])  # 3.9
    # (Python 3.9 may list an editable install's entry point twice: compare the set.)
    assert {e.value for e in group if e.name == "timetracer"} == {"timetracer.pytest_plugin"}


def test_inner_runs_load_the_plugin_fixtures_marker_and_options(pytester: pytest.Pytester) -> None:
    fixtures = run(pytester, "--fixtures")
    fixtures.stdout.fnmatch_lines(
        ["*fixtures defined from timetracer.pytest_plugin*", "timetracer_replay*", "*timetracer_record*"]
    )
    run(pytester, "--markers").stdout.fnmatch_lines(
        ["@pytest.mark.timetracer(cassette=None, record_mode=None)*"]
    )
    help_text = run(pytester, "--help").stdout.str()
    assert "--timetracer-record-mode={none,once,all}" in help_text
    assert "timetracer_cassette_dir" in help_text and "timetracer_record_mode" in help_text

    # The entry point's name turns it off, so this is the plugin that was loaded.
    without = run(pytester, "-p", "no:timetracer", "--fixtures")
    assert "timetracer_replay" not in without.stdout.str()


def test_the_marker_passes_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.timetracer("empty.json", record_mode="once")
        def test_nothing_to_record():
            pass
        """
    )
    result = run(pytester, "--strict-markers")
    result.assert_outcomes(passed=1)
    assert load(pytester.path / "cassettes" / "empty.json")["events"] == []


# -- timetracer_replay -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "test_enables", [True, False], ids=["test-enables-pymongo", "fixture-enables-pymongo"]
)
def test_timetracer_replay_answers_from_a_recorded_cassette(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    alice_cassette: Path,
    dead_mongo_uri: str,
    users: Any,
    test_enables: bool,
) -> None:
    source = REPLAY_TEST if test_enables else REPLAY_TEST.replace("    enable_pymongo()\n", "")
    assert test_enables or "enable_pymongo()" not in source
    pytester.makepyfile(test_replay=source)
    monkeypatch.setenv("TT_CASSETTE", str(alice_cassette))
    monkeypatch.setenv("TT_URI", dead_mongo_uri)
    monkeypatch.setenv("TT_DB", users.database.name)
    result = run(pytester, "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*REPLAYED FROM {alice_cassette}"])


def test_a_call_missing_from_the_cassette_fails_with_the_differing_field(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    alice_cassette: Path,
    dead_mongo_uri: str,
    users: Any,
) -> None:
    pytester.makepyfile(test_replay=REPLAY_TEST)
    monkeypatch.setenv("TT_CASSETTE", str(alice_cassette))
    monkeypatch.setenv("TT_URI", dead_mongo_uri)
    monkeypatch.setenv("TT_DB", users.database.name)
    monkeypatch.setenv("TT_ID", "1001")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ReplayMismatchError: no recorded call matches FIND_ONE on *.users (call #1 of this session)",
            f"*cassette: {alice_cassette}",
            '*filter._id: "1001" != "123" (live != recorded)',
        ]
    )


class Places:
    """Copies of one recorded cassette in each place ``timetracer_replay`` looks, told apart by the
    ``where`` field of the recorded document.

    :param recorded: the recorded cassette.
    :param root: the inner run's directory (its working directory).
    """

    def __init__(self, recorded: Path, root: Path) -> None:
        self.recorded = load(recorded)
        self.root = root

    def put(self, folder: Path, where: str, name: str = "probe.json") -> Path:
        document = json.loads(json.dumps(self.recorded))
        document["events"][0]["result"]["body"]["data"]["where"] = where
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        target.write_text(json.dumps(document), encoding="utf-8")
        return target


LOOKUP_TEST = textwrap.dedent(
    """
    import os

    from pymongo import MongoClient

    from timetracer.plugins import enable_pymongo


    def test_lookup(timetracer_replay):
        enable_pymongo()
        with timetracer_replay(os.environ["TT_NAME"]) as path:
            client = MongoClient(os.environ["TT_URI"], serverSelectionTimeoutMS=500)
            probe = client[os.environ["TT_DB"]].probes.find_one({"_id": "probe"})
        print("FOUND", probe["where"], "AT", path)
        assert probe["where"] == os.environ["TT_EXPECT"]
    """
)


def test_cassette_names_resolve_in_order(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    fresh_db: Database[Any],
    dead_mongo_uri: str,
    tmp_path: Path,
) -> None:
    fresh_db.probes.insert_one({"_id": "probe", "where": "server"})
    recorded = tmp_path / "probe_recorded.json"
    with timetracer.record(recorded):
        assert fresh_db.probes.find_one({"_id": "probe"})["where"] == "server"

    root = pytester.path
    (root / "tests").mkdir()
    (root / "tests" / "test_lookup.py").write_text(LOOKUP_TEST, encoding="utf-8")
    monkeypatch.setenv("TT_URI", dead_mongo_uri)
    monkeypatch.setenv("TT_DB", fresh_db.name)
    monkeypatch.setenv("TT_NAME", "probe.json")
    places = Places(recorded, root)
    cwd_copy = places.put(root, "cwd")
    ini_copy = places.put(root / "ini_cassettes", "ini dir")
    env_copy = places.put(root / "env_cassettes", "env dir")
    default_copy = places.put(root / "cassettes", "default dir")
    beside_copy = places.put(root / "tests" / "cassettes", "beside the test")
    absolute_copy = places.put(tmp_path / "far" / "away", "absolute")
    pytester.makeini("[pytest]\ntimetracer_cassette_dir = ini_cassettes\n")
    monkeypatch.setenv("TIMETRACER_CASSETTE_DIR", "env_cassettes")

    def expect(where: str, at: Path) -> None:
        monkeypatch.setenv("TT_EXPECT", where)
        result = run(pytester, "-s", "tests")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"*FOUND {where} AT {at}"])

    expect("cwd", root / "probe.json")
    cwd_copy.unlink()
    expect("ini dir", ini_copy)  # the ini option beats TIMETRACER_CASSETTE_DIR and ./cassettes
    ini_copy.unlink()
    expect("beside the test", beside_copy)  # the cassette dir is the ini option's, not also the others
    ini_copy = places.put(root / "ini_cassettes", "ini dir")
    pytester.makeini("[pytest]\n")
    expect("env dir", env_copy)  # no ini option: TIMETRACER_CASSETTE_DIR
    monkeypatch.delenv("TIMETRACER_CASSETTE_DIR")
    expect("default dir", default_copy)  # no ini option, no variable: ./cassettes
    default_copy.unlink()
    expect("beside the test", beside_copy)
    monkeypatch.setenv("TT_NAME", "probe")  # no suffix: .json is tried
    expect("beside the test", beside_copy)
    monkeypatch.setenv("TT_NAME", str(absolute_copy))
    expect("absolute", absolute_copy)

    # Nowhere: the error lists every place looked, in order.
    beside_copy.unlink()
    ini_copy.unlink()
    monkeypatch.setenv("TT_NAME", "probe.json")
    pytester.makeini("[pytest]\ntimetracer_cassette_dir = ini_cassettes\n")
    result = run(pytester, "tests")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*CassetteNotFoundError: cassette 'probe.json' not found; looked in:",
            f"*  {root / 'probe.json'}",
            f"*  {root / 'ini_cassettes' / 'probe.json'}",
            f"*  {root / 'tests' / 'cassettes' / 'probe.json'}",
        ]
    )
    monkeypatch.setenv("TT_NAME", str(tmp_path / "missing.json"))
    result = run(pytester, "tests")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CassetteNotFoundError: cassette '*missing.json' not found; looked in:"])
    assert "Record it first: the timetracer_record fixture, or @pytest.mark.timetracer with" in result.stdout.str()


# -- timetracer_record -----------------------------------------------------------------------


RECORD_TEST = textwrap.dedent(
    """
    import os

    import pytest
    from pymongo import MongoClient

    from timetracer.plugins import enable_pymongo


    def insert(who):
        client = MongoClient(os.environ["TT_URI"], serverSelectionTimeoutMS=3000)
        return client[os.environ["TT_DB"]].users.insert_one({"name": who})


    @pytest.mark.parametrize("who", ["ann/1", "bob smith", "c[1]"])
    def test_create(timetracer_record, who):
        enable_pymongo()
        with timetracer_record() as cassette_path:
            assert insert(who).inserted_id is not None
        print("SAVED", who, "AT", cassette_path)
        assert cassette_path.is_file()


    class TestGroup:
        def test_member(self, timetracer_record):
            enable_pymongo()
            with timetracer_record() as cassette_path:
                insert("member")
            print("SAVED member AT", cassette_path)


    def test_named(timetracer_record):
        enable_pymongo()
        with timetracer_record("explicit") as cassette_path:
            insert("named")
        print("SAVED named AT", cassette_path)
    """
)


def test_timetracer_record_writes_one_cassette_per_test_named_after_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mongo_uri: str, fresh_db: Database[Any]
) -> None:
    pytester.makepyfile(test_signup=RECORD_TEST)
    monkeypatch.setenv("TT_URI", mongo_uri)
    monkeypatch.setenv("TT_DB", fresh_db.name)
    result = run(pytester, "-s")
    result.assert_outcomes(passed=5)
    folder = pytester.path / "cassettes"
    expected = {
        "ann/1": "test_signup__test_create-ann_1.json",
        "bob smith": "test_signup__test_create-bob_smith.json",
        "c[1]": "test_signup__test_create-c-1.json",
        "member": "test_signup__TestGroup__test_member.json",
        "named": "explicit.json",
    }
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected.values())
    for who, file_name in expected.items():
        assert f"SAVED {who} AT {folder / file_name}" in result.stdout.str()
        (event,) = load(folder / file_name)["events"]
        assert event["signature"]["method"] == "INSERT_ONE"
        assert event["signature"]["url"] == f"{fresh_db.name}.users"
        assert event["args"] == {"document": {"name": who}}
    assert sorted(d["name"] for d in fresh_db.users.find()) == sorted(expected), "recorded for real"


def test_timetracer_record_uses_the_ini_cassette_dir(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mongo_uri: str, fresh_db: Database[Any]
) -> None:
    pytester.makepyfile(test_signup=RECORD_TEST)
    pytester.makeini("[pytest]\ntimetracer_cassette_dir = .\n")
    monkeypatch.setenv("TIMETRACER_CASSETTE_DIR", "not_here")
    monkeypatch.setenv("TT_URI", mongo_uri)
    monkeypatch.setenv("TT_DB", fresh_db.name)
    run(pytester, "-k", "named").assert_outcomes(passed=1, deselected=4)
    assert methods(pytester.path / "explicit.json") == ["INSERT_ONE"]
    assert not (pytester.path / "not_here").exists()
    assert not (pytester.path / "cassettes").exists()


# -- the marker and record modes -------------------------------------------------------------


MARKED_TEST = textwrap.dedent(
    """
    import os

    import pytest
    from pymongo import MongoClient


    @pytest.fixture
    def users():
        client = MongoClient(os.environ["TT_URI"], serverSelectionTimeoutMS=1000)
        return client.shop.users


    @pytest.fixture
    def before(users):
        return users.count_documents({})  # a fixture's calls are part of the test too


    @pytest.mark.timetracer(record_mode=os.environ.get("TT_MARKER_MODE") or None)
    def test_signup(users, before):
        users.insert_one({"_id": "u-%d" % before, "name": "Ann"})
        after = users.count_documents({})
        print("COUNTS", before, after)
        assert after == before + 1
    """
)


@pytest.fixture
def shop_server(mongo_server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """A dedicated server the test can stop; ``TT_URI`` points the inner tests at it."""
    server = mongo_server_factory()
    monkeypatch.setenv("TT_URI", server.uri)
    return server


def test_marker_once_records_then_replays_with_the_database_stopped(
    pytester: pytest.Pytester, shop_server: Any
) -> None:
    pytester.makepyfile(test_shop=MARKED_TEST)
    cassette = pytester.path / "cassettes" / "test_shop__test_signup.json"
    first = run(pytester, "-s", "--timetracer-record-mode=once")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*COUNTS 0 1"])
    assert methods(cassette) == ["COUNT_DOCUMENTS", "INSERT_ONE", "COUNT_DOCUMENTS"]
    written = cassette.read_bytes()

    shop_server.stop()
    second = run(pytester, "-s", "--timetracer-record-mode=once")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["*COUNTS 0 1"])
    assert cassette.read_bytes() == written

    # Without the marker's session the stopped database is really needed.
    third = run(pytester, "-s", "-p", "no:timetracer")
    third.assert_outcomes(errors=1)
    assert "ServerSelectionTimeoutError" in third.stdout.str()


def test_marker_all_re_records_and_none_replays(pytester: pytest.Pytester, shop_server: Any) -> None:
    pytester.makepyfile(test_shop=MARKED_TEST)
    cassette = pytester.path / "cassettes" / "test_shop__test_signup.json"
    run(pytester, "-s", "--timetracer-record-mode=all").stdout.fnmatch_lines(["*COUNTS 0 1"])
    first_id = load(cassette)["session"]["id"]
    again = run(pytester, "-s", "--timetracer-record-mode=all")
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*COUNTS 1 2"])  # it ran against the database again
    assert load(cassette)["session"]["id"] != first_id
    assert load(cassette)["events"][0]["result"]["body"]["data"] == 1

    shop_server.stop()
    replayed = run(pytester, "-s", "--timetracer-record-mode=none")
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["*COUNTS 1 2"])


def test_marker_none_with_a_missing_cassette_fails(pytester: pytest.Pytester, shop_server: Any) -> None:
    pytester.makepyfile(test_shop=MARKED_TEST)
    result = run(pytester)  # the default mode is none
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*CassetteNotFoundError: cassette 'test_shop__test_signup.json' not found; looked in:"]
    )
    assert not (pytester.path / "cassettes").exists()
    # Each place looked is named once (./cassettes is also the test file's cassettes/ here), the
    # way to record it is said, and the plugin's own code is not shown as a traceback.
    out = result.stdout.str()
    # (The error's own report; pytest repeats the whole message in its short summary under CI=true.)
    report = out.split("short test summary info")[0]
    wanted = pytester.path / "cassettes" / "test_shop__test_signup.json"
    assert [line.strip(" E") for line in report.splitlines() if line.strip(" E") == str(wanted)] == [str(wanted)]
    assert (
        "Record mode 'none' (the default) only replays; `pytest --timetracer-record-mode=once` records it "
        f"(into {pytester.path / 'cassettes'})."
    ) in out
    assert "def _timetracer_marker" not in out and "def find_cassette" not in out

    recorded = run(pytester, "--timetracer-record-mode=once")  # as the message says
    recorded.assert_outcomes(passed=1)
    assert wanted.is_file()


MODE_PROBE_TEST = textwrap.dedent(
    """
    import os

    import pytest

    marker_mode = os.environ.get("TT_MARKER_MODE")
    kwargs = {"record_mode": marker_mode} if marker_mode else {}


    @pytest.mark.timetracer("probe.json", **kwargs)
    def test_probe():
        pass
    """
)


@pytest.mark.parametrize(
    ("command_line", "marker", "ini", "expected"),
    [
        pytest.param(None, None, None, "none", id="default-is-none"),
        pytest.param(None, None, "once", "once", id="ini"),
        pytest.param(None, None, "all", "all", id="ini-all"),
        pytest.param(None, "all", "once", "all", id="marker-beats-ini"),
        pytest.param(None, "none", "all", "none", id="marker-none-beats-ini"),
        pytest.param("once", "all", "all", "once", id="command-line-beats-marker-and-ini"),
        pytest.param("none", "once", None, "none", id="command-line-none-beats-marker"),
        pytest.param("all", "none", "none", "all", id="command-line-all"),
    ],
)
def test_record_mode_precedence(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    command_line: Optional[str],
    marker: Optional[str],
    ini: Optional[str],
    expected: str,
) -> None:
    pytester.makepyfile(test_modes=MODE_PROBE_TEST)
    if ini:
        pytester.makeini(f"[pytest]\ntimetracer_record_mode = {ini}\n")
    if marker:
        monkeypatch.setenv("TT_MARKER_MODE", marker)
    args = [f"--timetracer-record-mode={command_line}"] if command_line else []
    cassette = pytester.path / "cassettes" / "probe.json"

    first = run(pytester, *args)  # the cassette is missing
    if expected == "none":
        first.assert_outcomes(errors=1)
        assert "CassetteNotFoundError" in first.stdout.str()
        assert not cassette.exists()
        return
    first.assert_outcomes(passed=1)
    recorded_id = load(cassette)["session"]["id"]
    second = run(pytester, *args)  # the cassette exists: once replays it, all records it again
    second.assert_outcomes(passed=1)
    assert (load(cassette)["session"]["id"] != recorded_id) == (expected == "all")


def test_an_invalid_marker_record_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.timetracer("x.json", record_mode="sometimes")
        def test_x():
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*record_mode 'sometimes' is not valid; use one of none, once, all*"])


# -- the spec's two fixture examples ---------------------------------------------------------

# Verbatim from the spec (docs "Testing with pytest" / "Using Fixtures").
SPEC_TESTS = textwrap.dedent(
    '''
    # test_users.py
    import pytest
    from pymongo import MongoClient
    from timetracer.plugins import enable_pymongo

    def test_get_user_from_cassette(timetracer_replay):
        """Test user retrieval with replayed MongoDB."""
        enable_pymongo()

        # Replay from cassette
        with timetracer_replay("GET__users_123.json"):
            client = MongoClient('mongodb://fake:27017')  # Won't actually connect
            db = client.myapp

            # This returns data from cassette!
            user = db.users.find_one({"_id": "123"})

            assert user['name'] == "Alice"
            assert user['email'] == "alice@example.com"


    def test_create_user_recorded(timetracer_record):
        """Test user creation with recording."""
        enable_pymongo()

        with timetracer_record() as cassette_path:
            client = MongoClient('mongodb://localhost:27017')
            db = client.testdb

            # This is recorded
            result = db.users.insert_one({
                "name": "Bob",
                "email": "bob@example.com"
            })

            assert result.inserted_id is not None

        # Cassette saved at cassette_path
        print(f"Cassette saved: {cassette_path}")
    '''
)


def record_get_user_cassette(mongo_uri: str, cassette_dir: Path) -> Path:
    """``GET /users/123`` of a small Flask app, recorded by the WSGI middleware against ``mongo_uri``."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        client.myapp.users.insert_one(dict(ALICE))
        db = client.myapp
        app = Flask("spec_users")

        @app.route("/users/<user_id>")
        def get_user(user_id: str) -> Any:
            user = db.users.find_one({"_id": user_id})
            return jsonify(user)

        config = TraceConfig.from_env({}, mode="record", cassette_dir=cassette_dir)
        app.wsgi_app = TimeTracerMiddleware(app.wsgi_app, config)  # type: ignore[method-assign]
        response = Client(app).get("/users/123", buffered=True)
        assert response.get_json() == ALICE
    finally:
        client.close()
    return cassette_dir / "GET__users_123.json"


def test_spec_replay_example_with_a_cassette_recorded_by_the_middleware(
    pytester: pytest.Pytester, mongo_server_factory: Callable[..., Any]
) -> None:
    server = mongo_server_factory()  # its own server: the spec's database name is "myapp"
    cassette = record_get_user_cassette(server.uri, pytester.path / "cassettes")
    assert methods(cassette) == ["FIND_ONE"]
    assert load(cassette)["request"]["path"] == "/users/123"
    server.stop()
    pytester.makepyfile(test_users=SPEC_TESTS)
    result = run(pytester, "-k", "test_get_user_from_cassette")
    result.assert_outcomes(passed=1, deselected=1)


def _port_is_free(port: int) -> Optional[str]:
    """``None`` if nothing listens on ``localhost:port`` and 127.0.0.1 can bind it, else why not."""
    try:
        with socket.create_connection(("localhost", port), timeout=1):
            return f"something already listens on localhost:{port}"
    except OSError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return f"127.0.0.1:{port} cannot be bound ({exc})"
    return None


def test_spec_record_example_against_a_server_on_27017(
    pytester: pytest.Pytester, mongo_server_factory: Callable[..., Any]
) -> None:
    busy = _port_is_free(27017)
    if busy is not None:
        pytest.fail(
            f"the spec's test_create_user_recorded connects to mongodb://localhost:27017, so this test "
            f"starts a MongoDB-compatible server there, but {busy}; stop whatever uses the port",
            pytrace=False,
        )
    server = mongo_server_factory(port=27017)
    pytester.makepyfile(test_users=SPEC_TESTS)
    result = run(pytester, "-s", "-k", "test_create_user_recorded")
    result.assert_outcomes(passed=1, deselected=1)
    cassette = pytester.path / "cassettes" / "test_users__test_create_user_recorded.json"
    result.stdout.fnmatch_lines([f"*Cassette saved: {cassette}"])
    (event,) = load(cassette)["events"]
    assert event["signature"]["method"] == "INSERT_ONE"
    assert event["signature"]["url"] == "testdb.users"
    assert event["args"] == {"document": {"name": "Bob", "email": "bob@example.com"}}
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000)
    try:
        stored = client.testdb.users.find_one({"name": "Bob"})
    finally:
        client.close()
    assert stored is not None
    assert event["result"]["body"]["data"]["inserted_id"] == {"$oid": str(stored["_id"])}
