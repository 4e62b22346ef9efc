"""Shared pytest fixtures for timetracer's test suite.

Sections (append new ones at the end, each under its own banner):

1. MongoDB-compatible test server -- a real server over real TCP for real
   PyMongo: mongoeco's wire server, run by ``scripts/mongo_server.py`` in its
   own Python >= 3.13 venv and process.  Set ``TIMETRACER_TEST_MONGODB_URI``
   to use an existing server (e.g. a real mongod) for ``mongo_uri`` instead.
   If the server cannot start, tests needing it are skipped -- except when
   ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, NoReturn

import pytest

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.database import Database

REPO_ROOT = Path(__file__).resolve().parent.parent


# =============================================================================
# 1. MongoDB-compatible test server
# =============================================================================

_MONGO_SERVER_SCRIPT = REPO_ROOT / "scripts" / "mongo_server.py"
_MONGO_SERVER_MODULE_NAME = "timetracer_tests_mongo_server"


def _load_mongo_server_module() -> ModuleType:
    """Import ``scripts/mongo_server.py`` by path (``scripts`` is no package)."""
    module = sys.modules.get(_MONGO_SERVER_MODULE_NAME)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(_MONGO_SERVER_MODULE_NAME, _MONGO_SERVER_SCRIPT)
    assert spec is not None and spec.loader is not None, _MONGO_SERVER_SCRIPT
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MONGO_SERVER_MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def _mongo_server_unavailable(reason: str) -> NoReturn:
    """Skip the test -- or, in CI, fail it: CI must never silently skip these."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"MongoDB test server unavailable (CI=true, so this fails):\n{reason}", pytrace=False)
    pytest.skip(f"MongoDB test server unavailable: {reason}")


@pytest.fixture(scope="session")
def mongo_server_module() -> ModuleType:
    """The ``scripts/mongo_server.py`` module (``start_server``, ``MongoServer``, ...)."""
    return _load_mongo_server_module()


@pytest.fixture(scope="session")
def mongoeco_python(mongo_server_module: ModuleType) -> Path:
    """The server venv's python, created on first use (skip/fail if impossible)."""
    try:
        return mongo_server_module.ensure_venv()
    except (mongo_server_module.MongoServerError, OSError) as exc:
        _mongo_server_unavailable(str(exc))


@pytest.fixture(scope="session")
def mongo_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """URI of the session's MongoDB server: ``$TIMETRACER_TEST_MONGODB_URI`` or mongoeco's."""
    configured = os.environ.get("TIMETRACER_TEST_MONGODB_URI")
    if configured:
        yield configured
        return
    module: ModuleType = request.getfixturevalue("mongo_server_module")
    request.getfixturevalue("mongoeco_python")
    try:
        server = module.start_server()
    except (module.MongoServerError, OSError) as exc:
        _mongo_server_unavailable(str(exc))
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def mongo_server_factory(
    mongo_server_module: ModuleType, mongoeco_python: Path
) -> Iterator[Callable[..., Any]]:
    """Start extra mongoeco servers: ``start(port=0, timeout=60) -> MongoServer``.

    For tests that stop a database and start another, e.g. on the same port
    (``server.stop()``; ``start(port=server.port)``).  Each server has its own
    empty in-memory data; all still running are stopped after the test.
    Always mongoeco, even when ``TIMETRACER_TEST_MONGODB_URI`` is set.
    """
    servers: list[Any] = []

    def start(port: int = 0, timeout: float = 60) -> Any:
        try:
            server = mongo_server_module.start_server(port=port, timeout=timeout)
        except (mongo_server_module.MongoServerError, OSError) as exc:
            _mongo_server_unavailable(str(exc))
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def mongo_client(mongo_uri: str) -> Iterator[MongoClient[Any]]:
    """A ``pymongo.MongoClient`` on ``mongo_uri`` (5 s server selection), closed after."""
    import pymongo

    client: MongoClient[Any] = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def fresh_db(mongo_client: MongoClient[Any]) -> Iterator[Database[Any]]:
    """A uniquely named, initially empty database, dropped after the test."""
    from pymongo.errors import PyMongoError

    name = f"tt_test_{uuid.uuid4().hex[:12]}"
    try:
        yield mongo_client[name]
    finally:
        with contextlib.suppress(PyMongoError):
            mongo_client.drop_database(name)


@pytest.fixture
def dead_mongo_uri() -> str:
    """``mongodb://127.0.0.1:PORT`` where nothing listens on PORT (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"mongodb://127.0.0.1:{port}"


@pytest.fixture
def dead_users(dead_mongo_uri: str, fresh_db: Database[Any]) -> Iterator[Callable[[], Any]]:
    """``dead_users()``: ``fresh_db.users`` through a client on a dead port (call it in replay)."""
    import pymongo

    clients: List[MongoClient[Any]] = []

    def make() -> Any:
        client: MongoClient[Any] = pymongo.MongoClient(dead_mongo_uri, serverSelectionTimeoutMS=300)
        clients.append(client)
        return client[fresh_db.name].users

    yield make
    for client in clients:
        client.close()


# ==========================================================================================
# timetracer's process-wide state, isolated per test
# ==========================================================================================


@pytest.fixture
def isolated_pymongo_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The PyMongo plugin enabled for one test, with no ``TIMETRACER_*`` variable inherited from
    the shell and timetracer's process-wide state (script mode, middleware flags) put back after.

    Use it with ``pytestmark = pytest.mark.usefixtures("isolated_pymongo_plugin")``.
    """
    from timetracer import context, script
    from timetracer.plugins import disable_pymongo, enable_pymongo
    from timetracer.plugins.pymongo import is_enabled

    for name in list(os.environ):
        if name.startswith("TIMETRACER_"):
            monkeypatch.delenv(name)
    was_enabled = is_enabled()
    fallback, script_session = context._fallback, script._session
    monkeypatch.setattr(context, "middleware_installed", context.middleware_installed)
    monkeypatch.setattr(context, "replay_configured", context.replay_configured)
    enable_pymongo()
    yield
    context.set_fallback(fallback)
    script._session = script_session
    if not was_enabled:
        disable_pymongo()


# ==========================================================================================
# Oldest supported web frameworks (the CI step "oldest Flask/Werkzeug/Django")
# ==========================================================================================


def _werkzeug_test_client_returns_responses() -> None:
    """Werkzeug < 2.0's test ``Client`` returns ``(app_iter, status, headers)`` unless it is given
    a response class; the tests are written against the response objects every later version
    returns, so give it one. Nothing of timetracer's own code is changed by this."""
    try:
        from importlib.metadata import version

        major = int(version("werkzeug").split(".")[0])
    except Exception:  # werkzeug not installed: nothing to adapt
        return
    if major >= 2:
        return
    from werkzeug.test import Client

    try:  # Flask's has get_json() and .json, like werkzeug's own from 2.0 on
        from flask import Response
    except ImportError:
        from werkzeug.wrappers import Response  # type: ignore[assignment]

    original = Client.__init__

    def __init__(self: Any, application: Any, response_wrapper: Any = None, *args: Any, **kwargs: Any) -> None:
        original(self, application, response_wrapper or Response, *args, **kwargs)

    Client.__init__ = __init__  # type: ignore[method-assign]


_werkzeug_test_client_returns_responses()


# ==========================================================================================
# A replay middleware made by a test does not make its teardown (or the next test) "replaying"
# ==========================================================================================


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: Any) -> None:
    """Forget a replay-mode middleware before the test's fixtures are torn down.

    A process with a replay-mode middleware refuses PyMongo calls made outside any session (replay
    never reaches a server); a test's live cleanup (dropping its database) is not the replaying
    app, and each test is its own "process" in that respect.
    """
    from timetracer import context

    context.replay_configured = False


# ==========================================================================================
# S3 API server on loopback (s3:// cassette locations)
# ==========================================================================================


class S3Server:
    """moto's S3 API server on 127.0.0.1 (dummy credentials, no real account): its endpoint, the
    environment that points boto3 at it, and a client to make buckets and look at objects."""

    def __init__(self, endpoint: str, home: Path) -> None:
        self.endpoint = endpoint
        # Every AWS setting a shell may carry is replaced, so nothing reaches a real account.
        self.env = {
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        }
        self._buckets = 0

    def client(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client("s3", endpoint_url=self.endpoint)

    def bucket(self) -> str:
        """A new empty bucket."""
        self._buckets += 1
        name = f"tt-{uuid.uuid4().hex[:12]}-{self._buckets}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> List[str]:
        reply = self.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for item in reply.get("Contents", ()))

    def get(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def _s3_server_unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"S3 test server unavailable (CI=true, so this fails):\n{reason}", pytrace=False)
    pytest.skip(f"S3 test server unavailable: {reason}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 API (``moto[server]``'s ThreadedMotoServer) on a free loopback port."""
    try:
        import boto3  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        _s3_server_unavailable(f"{exc}; install the test extra: pip install -e '.[test]'")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
    except Exception as exc:
        _s3_server_unavailable(f"moto server did not start on 127.0.0.1:{port}: {exc}")
    try:
        yield S3Server(f"http://127.0.0.1:{port}", tmp_path_factory.mktemp("aws-home"))
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """``s3_server`` with its AWS settings in this process's environment (for in-process tests)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server
