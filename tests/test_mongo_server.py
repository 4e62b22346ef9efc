"""Tests of the MongoDB-compatible test server (``scripts/mongo_server.py``) and its fixtures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional

import pytest

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.database import Database


def _connects(host: str, port: int) -> Optional[bool]:
    """True if a connection is accepted, False if refused, None if neither (reset, timeout).

    A server that is dying can accept a connection and reset it, or reset it mid-handshake:
    that is "not refused yet", not an error of the test.
    """
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return False
    except OSError:
        return None
    return True


def _refuses_connections(host: str, port: int) -> bool:
    return _connects(host, port) is False


def _wait_until_refused(host: str, port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _refuses_connections(host, port):
            return True
        time.sleep(0.1)
    return False


def test_server_answers_ping(mongo_client: MongoClient[Any]) -> None:
    assert mongo_client.admin.command("ping")["ok"] == 1


def test_insert_find_roundtrip(fresh_db: Database[Any]) -> None:
    coll = fresh_db["things"]
    result = coll.insert_many([{"name": "a", "n": 1}, {"name": "b", "n": 2}, {"name": "c", "n": 3}])
    assert len(result.inserted_ids) == 3
    found = list(coll.find({"n": {"$gte": 2}}, {"_id": 0}).sort("n", -1))
    assert found == [{"name": "c", "n": 3}, {"name": "b", "n": 2}]
    assert coll.count_documents({}) == 3


def test_fresh_db_is_uniquely_named_and_empty(fresh_db: Database[Any]) -> None:
    assert fresh_db.name.startswith("tt_test_")
    assert fresh_db.list_collection_names() == []


def test_dead_mongo_uri_refuses_connections(dead_mongo_uri: str) -> None:
    import pymongo
    from pymongo.errors import ServerSelectionTimeoutError

    hostport = dead_mongo_uri.split("//", 1)[1]
    host, port = hostport.rsplit(":", 1)
    assert _refuses_connections(host, int(port))
    client: MongoClient[Any] = pymongo.MongoClient(dead_mongo_uri, serverSelectionTimeoutMS=300)
    try:
        with pytest.raises(ServerSelectionTimeoutError):
            client.admin.command("ping")
    finally:
        client.close()


def test_stopped_server_refuses_and_new_one_starts_on_same_port(
    mongo_server_factory: Callable[..., Any],
) -> None:
    import pymongo
    from pymongo.errors import ServerSelectionTimeoutError

    first = mongo_server_factory()
    client: MongoClient[Any] = pymongo.MongoClient(first.uri, serverSelectionTimeoutMS=5000)
    client["db"]["c"].insert_one({"x": 1})
    assert client["db"]["c"].count_documents({}) == 1
    # Close before stopping: a client with pooled sessions waits
    # serverSelectionTimeoutMS in close() when its server is gone.
    client.close()
    first.stop()
    assert not first.running
    assert _refuses_connections(first.host, first.port)
    client = pymongo.MongoClient(first.uri, serverSelectionTimeoutMS=300)
    try:
        with pytest.raises(ServerSelectionTimeoutError):
            client.admin.command("ping")
    finally:
        client.close()

    second = mongo_server_factory(port=first.port)
    assert (second.host, second.port) == (first.host, first.port)
    assert second.uri == first.uri
    client = pymongo.MongoClient(second.uri, serverSelectionTimeoutMS=5000)
    try:
        assert client.admin.command("ping")["ok"] == 1
        # A new mongoeco server starts with empty, in-memory data.
        assert client["db"]["c"].count_documents({}) == 0
    finally:
        client.close()


def test_start_on_busy_port_reports_the_server_error(
    mongo_server_module: ModuleType, mongoeco_python: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(mongo_server_module.MongoServerError, match="address already in use"):
            mongo_server_module.start_server(port=port, timeout=30)


def test_server_context_manager_and_idempotent_stop(mongo_server_factory: Callable[..., Any]) -> None:
    server = mongo_server_factory()
    assert server.uri == f"mongodb://{server.host}:{server.port}/?directConnection=true"
    with server as entered:
        assert entered is server
        assert server.running
    assert not server.running
    server.stop()  # again: no error
    assert _refuses_connections(server.host, server.port)


@pytest.mark.skipif(os.name != "posix", reason="uses SIGKILL")
def test_server_dies_with_its_parent(mongo_server_module: ModuleType, mongoeco_python: Path) -> None:
    script = Path(mongo_server_module.__file__)
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(script.parent)!r})\n"
        "import mongo_server\n"
        "server = mongo_server.start_server()\n"
        "print(server.host, server.port, flush=True)\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    words = parent.stdout.readline().split()
    reachable = len(words) == 2 and _connects(words[0], int(words[1])) is True
    parent.send_signal(signal.SIGKILL)
    _, errors = parent.communicate(timeout=30)
    assert len(words) == 2, f"the parent process failed to start a server:\n{errors}"
    assert reachable
    host, port = words[0], int(words[1])
    assert _wait_until_refused(host, port), "the server outlived its parent"
