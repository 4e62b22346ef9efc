"""Fixtures of the ``timetracer`` command tests: cassettes recorded from the example Flask app.

The shop app (``examples/pymongo_flask_app``) runs for real (``flask run`` in a child process) in
record mode against the mongoeco test server; the commands then run as the installed console
script in child processes, as a user would run them.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

_SUPPORT_FILE = Path(__file__).resolve().parent.parent / "examples" / "_support.py"
_spec = importlib.util.spec_from_file_location("timetracer_tests_examples_support", _SUPPORT_FILE)
assert _spec is not None and _spec.loader is not None
_support = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(_support)
EXAMPLES, example_env, free_port = _support.EXAMPLES, _support.example_env, _support.free_port
load_example_module, run_app = _support.load_example_module, _support.run_app

APP_DIR = EXAMPLES / "pymongo_flask_app"
# Requests sent to the app while recording, in order. /users/123 twice: two recordings of one request.
REQUESTS = [
    ("GET", "/users/123", None),
    ("GET", "/users/456", None),
    ("GET", "/products", None),
    ("POST", "/products", {"name": "Desk lamp", "price": 24.9}),
    ("GET", "/users/999", None),
    ("GET", "/users/123", None),
]
SCRIPT = Path(sys.executable).parent / "timetracer"


@dataclass
class Recorded:
    """The cassettes recorded from the shop app, and the app's output while recording."""

    directory: Path
    log: str

    def find(self, prefix: str) -> Path:
        """The one cassette named ``prefix`` + ``~digest`` or the suffix (not ``~2``, a repeat)."""
        matches = [
            p
            for p in sorted(self.directory.glob(prefix + "*.json"))
            if p.name[len(prefix)] == "." or p.name[len(prefix) : len(prefix) + 2] == "~q"
        ]
        assert len(matches) == 1, (prefix, [p.name for p in self.directory.iterdir()])
        return matches[0]

    def document(self, prefix: str) -> Dict[str, Any]:
        return json.loads(self.find(prefix).read_text(encoding="utf-8"))

    @property
    def files(self) -> List[Path]:
        return sorted(self.directory.glob("*.json"))


@pytest.fixture(scope="session")
def recorded_shop(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str) -> Recorded:
    """Cassettes of ``REQUESTS`` recorded over HTTP from the shop app (plain JSON)."""
    root = tmp_path_factory.mktemp("shop")
    cassettes = root / "cassettes"
    load_example_module(APP_DIR / "seed.py").seed(mongo_uri)
    env = example_env(MONGODB_URI=mongo_uri, TIMETRACER_CASSETTE_DIR=str(cassettes), TIMETRACER_MODE="record")
    port = free_port()
    command = [sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port)]
    with run_app(command, APP_DIR, env, port, root / "record.log") as app:
        for method, path, payload in REQUESTS:
            assert app.request(method, path, payload).status in (200, 201)
        wait_for(cassettes, len(REQUESTS))
    return Recorded(cassettes, (root / "record.log").read_text(encoding="utf-8", errors="replace"))


def wait_for(directory: Path, count: int, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while len(list(directory.glob("*.json"))) < count:
        assert time.monotonic() < deadline, sorted(p.name for p in directory.iterdir())
        time.sleep(0.05)


@pytest.fixture
def shop_copy(recorded_shop: Recorded, tmp_path: Path) -> Recorded:
    """A private copy of the recorded cassettes (a test may add or spoil files in it)."""
    target = tmp_path / "cassettes"
    shutil.copytree(recorded_shop.directory, target)
    return Recorded(target, recorded_shop.log)


def cli(
    *args: str,
    cwd: Optional[Path] = None,
    env: Optional[Dict[str, str]] = None,
    module: bool = False,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run the installed ``timetracer`` console script (or ``python -m timetracer``)."""
    command: Sequence[str] = [sys.executable, "-m", "timetracer", *args] if module else [str(SCRIPT), *args]
    return subprocess.run(
        list(command),
        cwd=str(cwd) if cwd else None,
        env=env if env is not None else example_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(run: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 2, exactly one line on stderr holding every needle, no traceback."""
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
