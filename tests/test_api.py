"""Tests of ``timetracer.record`` and ``timetracer.replay``: context managers and decorators.

Every recording runs against the real test server; every replay uses a client on a port where
nothing listens, created inside the replay (as an app running in replay mode creates it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import pymongo
import pytest
from pymongo.database import Database

import timetracer
from timetracer import context
from timetracer.cassette import read_cassette
from timetracer.config import TraceConfig
from timetracer.errors import CassetteNotFoundError, TimeTracerError

ALICE = {"_id": "123", "name": "Alice", "email": "alice@example.com"}


# -- fixtures --------------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("isolated_pymongo_plugin")


@pytest.fixture
def cassette_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``TIMETRACER_CASSETTE_DIR`` for the test (it does not exist yet)."""
    directory = tmp_path / "cassette_dir"
    monkeypatch.setenv("TIMETRACER_CASSETTE_DIR", str(directory))
    return directory


@pytest.fixture
def users(fresh_db: Database[Any]) -> pymongo.collection.Collection[Any]:
    """The live ``users`` collection, holding Alice."""
    fresh_db.users.insert_one(dict(ALICE))
    return fresh_db.users


def active_session() -> Any:
    """The explicitly activated session (never script mode's)."""
    return context._active.get()


def load(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def methods(path: Path) -> List[str]:
    return [event["signature"]["method"] for event in load(path)["events"]]


# -- record ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "file_name"),
    [
        pytest.param("nightly", "nightly.json", id="bare-name-gets-suffix"),
        pytest.param("nightly.json", "nightly.json", id="bare-name-with-suffix"),
        pytest.param("nightly.json.gz", "nightly.json.gz", id="compressed-suffix-kept"),
    ],
)
def test_record_resolves_a_name_in_the_cassette_dir_and_yields_the_path(
    cassette_dir: Path, users: Any, name: str, file_name: str
) -> None:
    with timetracer.record(name) as path:
        assert isinstance(path, Path)
        assert path == cassette_dir / file_name
        assert not path.exists(), "the cassette is written when the block exits, not before"
        assert users.find_one({"_id": "123"}) == ALICE
    assert path.is_file()
    document = read_cassette(path)
    assert [e["signature"]["method"] for e in document["events"]] == ["FIND_ONE"]
    assert document["events"][0]["result"]["body"]["data"] == ALICE


def test_record_takes_the_cassette_dir_from_an_explicit_config(tmp_path: Path, users: Any) -> None:
    config = TraceConfig.from_env({}, cassette_dir=tmp_path / "explicit")
    with timetracer.record("job", config=config) as path:
        users.count_documents({})
    assert path == tmp_path / "explicit" / "job.json"
    assert methods(path) == ["COUNT_DOCUMENTS"]


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("./here.json", id="dot-relative"),
        pytest.param("sub/dir/here.json", id="relative-with-folders"),
        pytest.param("ABSOLUTE", id="absolute"),
    ],
)
def test_record_uses_a_path_as_given(
    tmp_path: Path, cassette_dir: Path, monkeypatch: pytest.MonkeyPatch, users: Any, given: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    target = tmp_path / "abs" / "here.json" if given == "ABSOLUTE" else work / given
    with timetracer.record(str(target) if given == "ABSOLUTE" else given) as path:
        users.find_one({"_id": "123"})
    assert path.resolve() == target.resolve()
    assert methods(target) == ["FIND_ONE"]
    assert not cassette_dir.exists(), "a path must not be moved into the cassette dir"


def test_record_writes_the_cassette_when_the_block_raises(cassette_dir: Path, users: Any) -> None:
    with pytest.raises(KeyError, match="no-such-field") as raised:
        with timetracer.record("failing") as path:
            user = users.find_one({"_id": "123"})
            user["no-such-field"]
    assert isinstance(raised.value, KeyError), "the block's own exception is re-raised unchanged"
    document = load(path)
    assert document["error"] == {"type": "builtins.KeyError", "message": "'no-such-field'"}
    assert [e["signature"]["method"] for e in document["events"]] == ["FIND_ONE"]


def test_a_successful_block_stores_no_error(cassette_dir: Path, users: Any) -> None:
    with timetracer.record("fine") as path:
        users.find_one({"_id": "123"})
    assert "error" not in load(path)


# -- replay ----------------------------------------------------------------------------------


def test_replay_context_manager_answers_from_the_cassette_by_name_and_by_path(
    cassette_dir: Path, users: Any, dead_users: Callable[[], Any]
) -> None:
    with timetracer.record("lookup") as path:
        live = [users.find_one({"_id": "123"}), users.count_documents({})]
    for cassette in ("lookup", "lookup.json", str(path), path):
        with timetracer.replay(cassette) as replayed_from:
            assert replayed_from == path
            coll = dead_users()
            assert [coll.find_one({"_id": "123"}), coll.count_documents({})] == live


def test_replay_never_reaches_the_database(
    cassette_dir: Path, users: Any, dead_users: Callable[[], Any]
) -> None:
    with timetracer.record("lookup"):
        users.find_one({"_id": "123"})
    with timetracer.replay("lookup"):
        coll = dead_users()
        assert coll.find_one({"_id": "123"}) == ALICE
    # Outside the replay the same client is a plain client on a dead port: the answer above can
    # only have come from the cassette.
    with pytest.raises(pymongo.errors.ServerSelectionTimeoutError):
        coll.find_one({"_id": "123"})


def test_replay_of_a_missing_cassette_names_the_file(cassette_dir: Path) -> None:
    with pytest.raises(CassetteNotFoundError) as raised:
        with timetracer.replay("never_recorded"):
            pytest.fail("the block must not run without its cassette")
    assert str(cassette_dir / "never_recorded.json") in str(raised.value)
    assert isinstance(raised.value, FileNotFoundError)
    assert isinstance(raised.value, TimeTracerError)


def test_replay_of_a_missing_path_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "gone.json"
    with pytest.raises(CassetteNotFoundError, match=str(missing).replace("\\", "\\\\")):
        with timetracer.replay(missing):
            pass


# -- decorators ------------------------------------------------------------------------------


def test_decorators_record_then_replay(cassette_dir: Path, users: Any, dead_users: Callable[[], Any]) -> None:
    def load_profile(coll: Any) -> Dict[str, Any]:
        user = coll.find_one({"_id": "123"})
        return {"name": user["name"], "total": coll.count_documents({})}

    @timetracer.record("profile")
    def recorded() -> Dict[str, Any]:
        return load_profile(users)

    @timetracer.replay("profile")
    def replayed() -> Dict[str, Any]:
        return load_profile(dead_users())

    assert recorded.__name__ == "recorded", "functools.wraps keeps the function's identity"
    expected = recorded()
    assert expected == {"name": "Alice", "total": 1}
    assert methods(cassette_dir / "profile.json") == ["FIND_ONE", "COUNT_DOCUMENTS"]
    assert replayed() == expected
    assert replayed() == expected, "each call of a decorated function replays from the start"


def test_decorated_record_writes_and_reraises_on_error(cassette_dir: Path, users: Any) -> None:
    @timetracer.record("crashing")
    def job() -> None:
        users.find_one({"_id": "123"})
        raise RuntimeError("job failed")

    with pytest.raises(RuntimeError, match="job failed"):
        job()
    document = load(cassette_dir / "crashing.json")
    assert document["error"] == {"type": "builtins.RuntimeError", "message": "job failed"}
    assert len(document["events"]) == 1


def test_decorated_replay_of_a_missing_cassette_does_not_run_the_function(cassette_dir: Path) -> None:
    ran = []

    @timetracer.replay("absent")
    def job() -> None:
        ran.append(True)

    with pytest.raises(CassetteNotFoundError, match=r"absent\.json"):
        job()
    assert ran == []


# -- nesting and recursion -------------------------------------------------------------------


def test_nested_scopes_each_get_their_own_calls(
    cassette_dir: Path, users: Any, dead_users: Callable[[], Any]
) -> None:
    with timetracer.record("outer") as outer:
        outer_session = active_session()
        users.find_one({"_id": "123"})
        with timetracer.record("inner") as inner:
            assert active_session() is not outer_session
            users.count_documents({})
        assert active_session() is outer_session
        users.find_one({"_id": "missing"})
    assert active_session() is None
    assert methods(outer) == ["FIND_ONE", "FIND_ONE"]
    assert methods(inner) == ["COUNT_DOCUMENTS"]

    # A replay nested in a recording answers its calls; the recording does not see them.
    with timetracer.record("around") as around:
        users.find_one({"_id": "123"})
        with timetracer.replay(inner):
            assert dead_users().count_documents({}) == 1
    assert methods(around) == ["FIND_ONE"]


def test_recursive_decorated_replay(cassette_dir: Path, users: Any, dead_users: Callable[[], Any]) -> None:
    with timetracer.record("one_lookup"):
        users.find_one({"_id": "123"})
    sessions = []

    @timetracer.replay("one_lookup")
    def walk(depth: int) -> List[str]:
        session = active_session()
        sessions.append(session)
        name = dead_users().find_one({"_id": "123"})["name"]  # each level: a fresh replay
        deeper = walk(depth - 1) if depth else []
        assert active_session() is session, "the inner level restored this level's session"
        return [name, *deeper]

    assert walk(3) == ["Alice"] * 4
    assert len({id(s) for s in sessions}) == 4
    assert active_session() is None


def test_recursive_decorated_record(cassette_dir: Path, users: Any) -> None:
    @timetracer.record("levels")
    def walk(depth: int) -> int:
        users.count_documents({"level": depth})
        return 1 + (walk(depth - 1) if depth else 0)

    assert walk(2) == 3
    assert active_session() is None
    # Each level is its own session; the outermost one exits (and writes the file) last.
    events = load(cassette_dir / "levels.json")["events"]
    assert [e["args"] for e in events] == [{"filter": {"level": 2}}]


def test_one_scope_object_can_be_reentered(
    cassette_dir: Path, users: Any, dead_users: Callable[[], Any]
) -> None:
    with timetracer.record("twice"):
        users.find_one({"_id": "123"})
    scope = timetracer.replay("twice")
    with scope:
        first = active_session()
        with scope:
            assert active_session() is not first
            assert dead_users().find_one({"_id": "123"}) == ALICE
        assert active_session() is first
        assert dead_users().find_one({"_id": "123"}) == ALICE
    assert active_session() is None
    with scope:  # and used again afterwards
        assert dead_users().find_one({"_id": "123"}) == ALICE
