"""Fixtures for the PyMongo plugin tests.

The plugin is enabled once for the whole run (as an app does at startup); the wrappers act only
while a test activates a session. Replay tests point their clients at a :class:`Blackhole`: a
socket that listens but never accepts, so a test can prove no connection was attempted.
"""

from __future__ import annotations

import contextlib
import select
import socket
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pymongo
import pytest
from pymongo.errors import PyMongoError

from timetracer import context
from timetracer.plugins import disable_pymongo, enable_pymongo

from ._differential import SEED_OPTIONS, Scenario, check, run_three_ways
from ._support import Tape


@pytest.fixture(scope="session", autouse=True)
def pymongo_plugin() -> Iterator[None]:
    """``enable_pymongo()`` for the run, as an app does at startup; restored at the end."""
    enable_pymongo()
    yield
    disable_pymongo()


@pytest.fixture(autouse=True)
def no_timetracer_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test makes its own sessions: ``TIMETRACER_*`` settings of the shell must not leak in."""
    from timetracer import config

    for name in dir(config):
        if name.startswith("ENV_"):
            monkeypatch.delenv(getattr(config, name), raising=False)
    # Nor a replay middleware created by an earlier test in this process.
    monkeypatch.setattr(context, "replay_configured", False)


@pytest.fixture
def tape(tmp_path: Path) -> Tape:
    """A cassette file in the test's temporary directory (record into it, replay from it)."""
    return Tape(tmp_path / "c.json")


class Blackhole:
    """A TCP port that listens but never accepts: any connection attempt stays queued there.

    :param sock: the listening socket.

    Example::

        client = pymongo.MongoClient(blackhole.uri)
        ...
        blackhole.assert_untouched()
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        host, port = sock.getsockname()[:2]
        self.uri = f"mongodb://{host}:{port}"

    def attempted(self, wait: float) -> bool:
        """Whether a connection is queued (waiting up to ``wait`` seconds for a late one)."""
        select.select([self.sock], [], [], wait)
        self.sock.setblocking(False)
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def assert_untouched(self) -> None:
        """Fail if anything connected (or connects within a short grace period)."""
        assert not self.attempted(wait=0.2), f"a connection to {self.uri} was attempted during replay"


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    """A :class:`Blackhole` on 127.0.0.2, closed after the test.

    Not 127.0.0.1, where the test servers live: a client left behind by another test (a monitor
    retrying a server that was stopped) could reach a reused port number there and look like a
    connection made by replay. Only the replaying client is ever pointed at 127.0.0.2.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.2", 0))
    sock.listen(64)
    try:
        yield Blackhole(sock)
    finally:
        sock.close()


@pytest.fixture
def make_client() -> Iterator[Callable[..., pymongo.MongoClient]]:
    """``make_client(uri, **options)``: a ``MongoClient`` closed after the test.

    Replay clients must be made inside the replaying session (as an app started with
    ``TIMETRACER_MODE=replay`` makes them), so they never start background monitoring.
    """
    clients: List[pymongo.MongoClient] = []

    def make(uri: str, **options: Any) -> pymongo.MongoClient:
        options.setdefault("serverSelectionTimeoutMS", 500)
        client: pymongo.MongoClient = pymongo.MongoClient(uri, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        with contextlib.suppress(PyMongoError):
            client.close()


@pytest.fixture
def dead_client(blackhole: Blackhole, make_client: Callable[..., pymongo.MongoClient]) -> Callable[..., Any]:
    """``dead_client(**options)``: a client on the :class:`Blackhole` (make it inside replay)."""

    def make(**options: Any) -> pymongo.MongoClient:
        return make_client(blackhole.uri, **options)

    return make


@pytest.fixture
def live_client(mongo_uri: str, make_client: Callable[..., pymongo.MongoClient]) -> Callable[..., Any]:
    """``live_client(**options)``: a client on the test server with extra options (codecs...)."""

    def make(**options: Any) -> pymongo.MongoClient:
        options.setdefault("serverSelectionTimeoutMS", 5000)
        return make_client(mongo_uri, **options)

    return make


@pytest.fixture
def myapp_db(mongo_client: pymongo.MongoClient) -> Iterator[Any]:
    """The database ``myapp`` (the spec's example name), empty, dropped after the test."""
    with contextlib.suppress(PyMongoError):
        mongo_client.drop_database("myapp")
    try:
        yield mongo_client["myapp"]
    finally:
        with contextlib.suppress(PyMongoError):
            mongo_client.drop_database("myapp")


@pytest.fixture(scope="module")
def differential_clients(mongo_uri: str) -> Iterator[Dict[str, Any]]:
    """Live clients, one per option set, plus the plain seeding client (kept for the module)."""
    made: Dict[str, Any] = {}

    def get(key: str, **options: Any) -> Any:
        if key not in made:
            made[key] = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, **options)
        return made[key]

    yield {"get": get}
    for client in made.values():
        client.close()


@pytest.fixture
def differential(
    differential_clients: Dict[str, Any], blackhole: Any, make_client: Callable[..., Any], tape: Tape
) -> Callable[[Scenario, Dict[str, Any]], None]:
    """``differential(scenario, options)``: run a scenario off, recording and replaying with a
    client made with ``options``, and check transparency, fidelity and zero connections
    (see ``_differential.py``)."""
    host, port = blackhole.sock.getsockname()[:2]

    def run(scenario: Scenario, options: Dict[str, Any]) -> None:
        db_name = "tt_differential"
        plain = differential_clients["get"]("plain", **SEED_OPTIONS)[db_name]
        live = differential_clients["get"](repr(sorted(options.items(), key=str)), **options)[db_name]
        runs = run_three_ways(
            scenario,
            plain,
            live,
            lambda: make_client(blackhole.uri, **options)[db_name],
            tape,
            (host, port),
        )
        check(runs)
        assert not blackhole.attempted(wait=0), f"a connection to {blackhole.uri} was queued during replay"

    return run
