"""``timetracer.record()`` / ``replay()`` and script mode with asyncio: around ``asyncio.run``, as
``async with`` in a coroutine, decorating ``async def``; tasks created inside see the session.
Motor and ``AsyncMongoClient`` against the test server; replay against a dead port."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import timetracer
from timetracer import context
from timetracer.cassette import read_cassette
from timetracer.config import TraceConfig
from timetracer.plugins import disable_motor, enable_motor

motor_asyncio = pytest.importorskip("motor.motor_asyncio")

pytestmark = pytest.mark.usefixtures("isolated_pymongo_plugin")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def motor_plugin() -> Any:
    enable_motor()
    yield
    disable_motor()


def config(tmp_path: Path) -> TraceConfig:
    return TraceConfig.from_env({}, cassette_dir=tmp_path)


@pytest.fixture
def seeded(mongo_client: Any) -> Any:
    name = f"tt_aapi_{uuid.uuid4().hex[:10]}"
    mongo_client[name].items.insert_many([{"_id": i, "n": i * i} for i in range(6)])
    yield name
    mongo_client.drop_database(name)


async def job(uri: str, name: str) -> Dict[str, Any]:
    """Reads and a write through Motor, part of them in tasks of their own."""
    client = motor_asyncio.AsyncIOMotorClient(uri, serverSelectionTimeoutMS=2000)
    db = client[name]

    async def big_ones() -> Any:
        return await db.items.find({"n": {"$gt": 3}}).sort("_id", 1).to_list(None)

    try:
        big, count = await asyncio.gather(asyncio.create_task(big_ones()), db.items.count_documents({}))
        await db.items.update_one({"_id": 0}, {"$set": {"seen": True}})
        return {"big": big, "count": count, "zero": await db.items.find_one({"_id": 0})}
    finally:
        client.close()


def test_record_and_replay_around_asyncio_run(
    tmp_path: Path, mongo_uri: str, dead_mongo_uri: str, seeded: str
) -> None:
    with timetracer.record("nightly", config=config(tmp_path)) as path:
        recorded = asyncio.run(job(mongo_uri, seeded))
    methods = [e["signature"]["method"] for e in read_cassette(path)["events"]]
    assert sorted(methods) == ["COUNT_DOCUMENTS", "FIND", "FIND_ONE", "UPDATE_ONE"]
    with timetracer.replay("nightly", config=config(tmp_path)):
        replayed = asyncio.run(job(dead_mongo_uri, seeded))
    assert replayed == recorded and recorded["zero"]["seen"] is True and recorded["count"] == 6


def test_async_with_inside_a_coroutine(
    tmp_path: Path, mongo_uri: str, dead_mongo_uri: str, seeded: str
) -> None:
    async def main(uri: str, mode: str) -> Any:
        scope = timetracer.record if mode == "record" else timetracer.replay
        async with scope("inner", config=config(tmp_path)):
            assert context.current() is not None
            result = await job(uri, seeded)
        assert context.current() is None
        return result

    recorded = asyncio.run(main(mongo_uri, "record"))
    assert (tmp_path / "inner.json").exists()
    assert asyncio.run(main(dead_mongo_uri, "replay")) == recorded


def test_decorated_coroutine_functions(
    tmp_path: Path, mongo_uri: str, dead_mongo_uri: str, seeded: str
) -> None:
    seen: List[Any] = []

    @timetracer.record("decorated", config=config(tmp_path))
    async def record_it() -> Any:
        seen.append(context.current())
        return await job(mongo_uri, seeded)

    @timetracer.replay("decorated", config=config(tmp_path))
    async def replay_it() -> Any:
        seen.append(context.current())
        return await job(dead_mongo_uri, seeded)

    assert asyncio.iscoroutinefunction(record_it)
    recorded = asyncio.run(record_it())
    replayed = asyncio.run(replay_it())
    assert replayed == recorded
    assert seen[0].recording and seen[1].replaying


SCRIPT = """
import asyncio, json, os, sys
import motor.motor_asyncio
from timetracer.plugins import enable_motor

enable_motor()

async def main():
    client = motor.motor_asyncio.AsyncIOMotorClient(os.environ["MONGODB_URI"], serverSelectionTimeoutMS=2000)
    db = client[os.environ["DB_NAME"]]
    async def top():
        return await db.items.find({}, {"_id": 0}).sort("n", -1).to_list(3)
    docs = await asyncio.create_task(top())
    total = await db.items.count_documents({})
    client.close()
    print(json.dumps({"docs": docs, "total": total}))

asyncio.run(main())
"""


def test_script_mode_with_asyncio(tmp_path: Path, mongo_uri: str, dead_mongo_uri: str, seeded: str) -> None:
    script = tmp_path / "async_job.py"
    script.write_text(textwrap.dedent(SCRIPT))

    def run(mode: str, uri: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETRACER_")}
        env.update(
            PYTHONPATH=str(REPO),
            MONGODB_URI=uri,
            DB_NAME=seeded,
            TIMETRACER_MODE=mode,
            TIMETRACER_CASSETTE_DIR=str(tmp_path / "cassettes"),
        )
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    recorded = run("record", mongo_uri)
    assert '"total": 6' in recorded
    cassette = read_cassette(tmp_path / "cassettes" / "async_job.json")
    assert [e["signature"]["method"] for e in cassette["events"]] == ["FIND", "COUNT_DOCUMENTS"]
    assert run("replay", dead_mongo_uri) == recorded


@pytest.mark.parametrize("make", ["asyncmongoclient"])
def test_async_mongo_client_around_asyncio_run(
    make: str, tmp_path: Path, mongo_uri: str, dead_mongo_uri: str, seeded: str
) -> None:
    pymongo = pytest.importorskip("pymongo")
    if not hasattr(pymongo, "AsyncMongoClient"):
        pytest.skip("this PyMongo has no AsyncMongoClient (4.9+)")

    async def work(uri: str) -> Any:
        client = pymongo.AsyncMongoClient(uri, serverSelectionTimeoutMS=2000)
        try:
            cursor = await client[seeded].items.aggregate(
                [{"$match": {"n": {"$lt": 10}}}, {"$sort": {"_id": -1}}]
            )
            return [doc async for doc in cursor]
        finally:
            await client.close()

    run: Callable[[str], Any] = lambda uri: asyncio.run(work(uri))  # noqa: E731
    with timetracer.record("async_client", config=config(tmp_path)):
        recorded = run(mongo_uri)
    with timetracer.replay("async_client", config=config(tmp_path)):
        assert run(dead_mongo_uri) == recorded
    assert [d["_id"] for d in recorded] == [3, 2, 1, 0]
