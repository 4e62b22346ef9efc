"""Helpers for the end-to-end tests of ``examples/``: run an example's server or script for real.

Each example runs in a child process, as a user would run it, against the mongoeco test server
(``mongo_server_factory`` from ``tests/conftest.py``); nothing is mocked.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
# The ETL script and the spec's pytest example hardcode mongodb://localhost:27017.
DEFAULT_MONGO_PORT = 27017


def example_env(**values: str) -> Dict[str, str]:
    """This process's environment without ``TIMETRACER_*`` / ``MONGODB_URI``, plus ``values``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("TIMETRACER_") and name not in ("MONGODB_URI", "DJANGO_SETTINGS_MODULE")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(values)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Response:
    status: int
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class AppProcess:
    """A web server child process; its output goes to ``log``."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def request(self, method: str, path: str, payload: Any = None) -> Response:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {} if payload is None else {"Content-Type": "application/json"}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as reply:
                return Response(reply.status, dict(reply.headers.items()), reply.read())
        except urllib.error.HTTPError as error:
            with error:
                return Response(error.code, dict(error.headers.items()), error.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def run_app(
    command: Sequence[str], cwd: Path, env: Dict[str, str], port: int, log: Path
) -> Iterator[AppProcess]:
    """Start ``command`` (a server listening on ``port``), wait until it listens, stop it after."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            list(command), cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    app = AppProcess(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            if process.poll() is not None:
                pytest.fail(f"{' '.join(command)} exited with {process.returncode}:\n{app.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{' '.join(command)} did not listen on port {port}:\n{app.output()}")
            time.sleep(0.05)
        yield app
    finally:
        app.stop()


def wait_for_files(directory: Path, names: List[str], timeout: float = 15.0) -> None:
    """Wait until ``names`` exist in ``directory``: a cassette is written once the server closes
    the response, which may be just after the client has read all of it."""
    deadline = time.monotonic() + timeout
    while not all((directory / name).exists() for name in names):
        if time.monotonic() > deadline:
            found = sorted(p.name for p in directory.glob("*")) if directory.exists() else []
            pytest.fail(f"cassettes {names} not all written in {directory}; found {found}")
        time.sleep(0.05)


def read_json(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def methods(cassette: Dict[str, Any]) -> List[str]:
    """The PyMongo methods a cassette recorded, in order."""
    return [event["signature"]["method"] for event in cassette["events"]]


def run_python(
    args: Sequence[str], cwd: Path, env: Dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run ``python args...`` to the end; return it with text stdout/stderr."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=str(cwd),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def mongo_client(uri: str) -> Any:
    import pymongo

    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)


def load_example_module(path: Path) -> ModuleType:
    """Import an example's file (e.g. ``examples/django_app/seed.py``) under a name of its own."""
    name = "timetracer_example_" + "_".join(path.relative_to(EXAMPLES).with_suffix("").parts)
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return module
