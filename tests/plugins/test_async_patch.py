"""Installing the async wrappers: ``enable_motor()`` / ``disable_motor()`` and ``AsyncMongoClient``.

Idempotent, exact restore, Motor imported before or after ``enable_*``, one event per call (never
recorded twice through Motor and the PyMongo wrappers), and in replay no server is reached: an
unsupported call fails at once with :class:`ReplayUnsupportedError`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import pymongo
import pytest

from timetracer.errors import ReplayMismatchError, ReplayUnsupportedError
from timetracer.plugins import disable_motor, disable_pymongo, enable_motor, enable_pymongo
from timetracer.plugins import motor as motor_plugin
from timetracer.plugins import pymongo as pymongo_plugin
from timetracer.plugins.pymongo import _async

from ._support import Tape

motor_asyncio = pytest.importorskip("motor.motor_asyncio")
needs_async_client = pytest.mark.skipif(not _async.AVAILABLE, reason="this PyMongo has no AsyncMongoClient")

REPO = Path(__file__).resolve().parents[2]


def motor_attributes() -> Dict[Any, Any]:
    classes = [
        motor_asyncio.AsyncIOMotorCollection,
        motor_asyncio.AsyncIOMotorDatabase,
        motor_asyncio.AsyncIOMotorCursor,
        motor_asyncio.AsyncIOMotorCommandCursor,
        motor_asyncio.AsyncIOMotorLatentCommandCursor,
    ]
    return {cls: dict(cls.__dict__) for cls in classes}


def test_enable_motor_is_idempotent_and_disable_restores_exactly() -> None:
    # The session fixture enabled the PyMongo plugin; Motor is patched on top and taken off again.
    before = motor_attributes()
    enable_motor()
    patched = motor_attributes()
    enable_motor()
    assert motor_attributes() == patched
    assert motor_plugin.is_enabled() and pymongo_plugin.is_enabled()
    assert (
        patched[motor_asyncio.AsyncIOMotorCollection]["find_one"]
        is not (before[motor_asyncio.AsyncIOMotorCollection]["find_one"])
    )
    disable_motor()
    disable_motor()
    assert motor_attributes() == before
    assert pymongo_plugin.is_enabled(), "enable_pymongo() was called by name: disable_motor() leaves it on"


def test_disable_motor_turns_off_the_pymongo_plugin_it_turned_on() -> None:
    from pymongo.collection import Collection

    disable_pymongo()
    original = Collection.__dict__["find_one"]
    try:
        enable_motor()
        assert Collection.__dict__["find_one"] is not original
        disable_motor()
        assert Collection.__dict__["find_one"] is original
        assert not pymongo_plugin.is_enabled()
    finally:
        enable_pymongo()


@needs_async_client
def test_enable_pymongo_covers_async_mongo_client_and_disable_restores_it() -> None:
    from pymongo.asynchronous.collection import AsyncCollection
    from pymongo.asynchronous.mongo_client import AsyncMongoClient

    patched = dict(AsyncCollection.__dict__), AsyncMongoClient.__dict__["__init__"]
    disable_pymongo()
    try:
        assert AsyncCollection.__dict__["find_one"] is not patched[0]["find_one"]
        assert "find_one" in AsyncCollection.__dict__  # PyMongo's own, put back
        original = AsyncCollection.__dict__["find_one"]
        enable_pymongo()
        enable_pymongo()
        assert AsyncCollection.__dict__["find_one"].__wrapped__ is original
    finally:
        enable_pymongo()


SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from timetracer import context
from timetracer.config import Mode, TraceConfig
from timetracer.session import Session
from timetracer.plugins import enable_motor, enable_pymongo

ORDER = sys.argv[1]
if ORDER == "motor-first":
    import motor.motor_asyncio
    enable_pymongo()
    enable_motor()
elif ORDER == "pymongo-then-motor-import":
    enable_pymongo()
    import motor.motor_asyncio
    enable_motor()
else:  # enable_motor() alone imports Motor itself
    enable_motor()
    import motor.motor_asyncio

async def main():
    client = motor.motor_asyncio.AsyncIOMotorClient(sys.argv[2])
    session = Session(TraceConfig.from_env({}, mode="record"), Mode.RECORD, cassette_path=Path("x.json"))
    with context.active(session):
        db = client[sys.argv[3]]
        await db.c.insert_one({"_id": 1, "a": 1})
        await db.c.find_one({"_id": 1})
        await db.c.aggregate([{"$match": {}}]).to_list(None)
        await db.c.find({}).to_list(None)
    await db.c.drop()
    client.close()
    cassette = session.to_cassette()
    print(json.dumps([[e["signature"]["method"], len(e["result"]["body"]["data"] or [])
                      if isinstance(e["result"]["body"]["data"], list) else -1] for e in cassette["events"]]))

asyncio.run(main())
"""


@pytest.mark.parametrize("order", ["motor-first", "pymongo-then-motor-import", "enable-motor-only"])
def test_every_import_order_records_each_call_once(order: str, mongo_uri: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETRACER_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), order, mongo_uri, f"tt_order_{tmp_path.name[-8:]}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout.strip().splitlines()[-1])
    assert events == [["INSERT_ONE", -1], ["FIND_ONE", -1], ["AGGREGATE", 1], ["FIND", 1]]


@pytest.fixture
def motor_enabled() -> Any:
    enable_motor()
    yield
    disable_motor()


@pytest.mark.usefixtures("motor_enabled")
def test_replay_refuses_unsupported_motor_calls_without_reaching_the_server(
    tape: Tape, blackhole: Any, mongo_client: pymongo.MongoClient
) -> None:
    with tape.record():
        pass

    async def main() -> None:
        client = motor_asyncio.AsyncIOMotorClient(blackhole.uri, serverSelectionTimeoutMS=30000)
        with pytest.raises(ReplayUnsupportedError):
            await client.db.c.create_index("a")
        with pytest.raises(ReplayUnsupportedError):
            await client.db.c.drop()
        with pytest.raises(ReplayUnsupportedError):
            await client.db.aggregate([{"$currentOp": {}}]).to_list(None)
        client.close()

    with tape.replay():
        asyncio.run(asyncio.wait_for(main(), 10))
    blackhole.assert_untouched()


@needs_async_client
def test_replay_refuses_unsupported_async_client_calls_without_reaching_the_server(
    tape: Tape, blackhole: Any
) -> None:
    with tape.record():
        pass

    async def main() -> None:
        client = pymongo.AsyncMongoClient(blackhole.uri, serverSelectionTimeoutMS=30000)
        with pytest.raises(ReplayUnsupportedError):
            await client.db.c.create_index("a")
        with pytest.raises(ReplayUnsupportedError):
            await client.list_database_names()
        with pytest.raises(ReplayMismatchError):
            await client.db.c.insert_one({"a": 1})  # not recorded: a mismatch, never a connection
        await client.close()

    with tape.replay():
        asyncio.run(asyncio.wait_for(main(), 10))
    blackhole.assert_untouched()


def test_enable_motor_without_motor_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "motor.motor_asyncio", None)  # an import of it now fails
    with pytest.raises(ImportError, match=r"pip install 'timetracer\[motor\]'"):
        enable_motor()
    assert not motor_plugin.is_enabled()
