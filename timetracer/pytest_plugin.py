"""pytest plugin: the ``timetracer_record`` and ``timetracer_replay`` fixtures and the
``@pytest.mark.timetracer`` marker.

Loaded automatically through the ``pytest11`` entry point. Heavy imports wait for the fixtures.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, List, Optional

import pytest

RECORD_MODES = ("none", "once", "all")
DEFAULT_RECORD_MODE = "none"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("timetracer")
    group.addoption(
        "--timetracer-record-mode",
        action="store",
        default=None,
        choices=RECORD_MODES,
        help="none: replay only, never touch the database; once: record missing cassettes, "
        "replay the rest; all: always re-record",
    )
    group.addoption(
        "--timetracer-cassette-dir",
        action="store",
        default=None,
        help="where cassettes are looked up and recorded (default: TIMETRACER_CASSETTE_DIR or cassettes)",
    )
    parser.addini("timetracer_cassette_dir", "where cassettes are looked up and recorded", default=None)
    parser.addini("timetracer_record_mode", "default record mode: none, once or all", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "timetracer(cassette=None, record_mode=None): run the whole test recording or replaying the "
        "named cassette (default: named after the test)",
    )


def _cassette_dir(config: pytest.Config) -> Any:
    # Precedence: command line > ini > TIMETRACER_CASSETTE_DIR > "cassettes".
    value = config.getoption("--timetracer-cassette-dir") or config.getini("timetracer_cassette_dir")
    text = str(value or os.environ.get("TIMETRACER_CASSETTE_DIR") or "")
    if text.startswith("s3://"):  # a shared folder in S3 (timetracer[s3])
        from timetracer._s3path import S3Path

        return S3Path.parse(text, "timetracer cassette dir")
    # Absolute (relative ones are relative to the working directory), so timetracer.record() and
    # timetracer.replay() use the file as found here and never re-read it as a bare cassette name
    # (which they would put in TIMETRACER_CASSETTE_DIR): "." as the dir gave "x.json", a bare name.
    return Path(value or os.environ.get("TIMETRACER_CASSETTE_DIR") or "cassettes").absolute()


def _record_mode(config: pytest.Config, marker: Optional[pytest.Mark]) -> str:
    # Precedence: command line > marker > ini > default ("none").
    mode = config.getoption("--timetracer-record-mode")
    if mode is None and marker is not None:
        mode = marker.kwargs.get("record_mode")
    if mode is None:
        mode = config.getini("timetracer_record_mode") or DEFAULT_RECORD_MODE
    if mode not in RECORD_MODES:
        raise pytest.UsageError(
            f"timetracer record_mode {mode!r} is not valid; use one of {', '.join(RECORD_MODES)}"
        )
    return str(mode)


def default_name(node: pytest.Item) -> str:
    """A file name for a test: ``tests/test_users.py::test_x[a/b]`` → ``test_users__test_x-a_b.json``."""
    module = Path(node.nodeid.split("::", 1)[0]).stem
    name = node.name.replace("[", "-").replace("]", "")
    parts = [module, *node.nodeid.split("::")[1:-1], name]
    stem = _UNSAFE.sub("_", "__".join(parts)).strip("._") or "test"
    return f"{stem}.json"


def candidates(name: str, node: pytest.Item) -> List[Any]:
    """Where a cassette name is looked for, in order."""
    if name.startswith("s3://"):
        from timetracer._s3path import S3Path

        return [S3Path.parse(name)]
    path = Path(name)
    if path.is_absolute():
        return [path]
    return [
        Path.cwd() / path,
        _cassette_dir(node.config) / path,
        Path(str(node.fspath)).parent / "cassettes" / path,
    ]


def find_cassette(name: str, node: pytest.Item, hint: str = "") -> Path:
    """The first existing file among :func:`candidates`; else :class:`CassetteNotFoundError`
    listing each place looked once, then ``hint`` (how to record it)."""
    __tracebackhide__ = True
    from timetracer.api import has_cassette_suffix
    from timetracer.errors import CassetteNotFoundError

    looked: List[Path] = []
    for base in candidates(name, node):
        options = (
            [base]
            if has_cassette_suffix(base.name)
            else [base.with_name(base.name + s) for s in (".json", ".json.gz", ".json.zst")]
        )
        for option in options:
            if option in looked:  # e.g. ./cassettes is also the test file's cassettes/ folder
                continue
            looked.append(option)
            if option.is_file():
                return option
    listing = "\n".join(f"  {p}" for p in looked)
    raise CassetteNotFoundError(f"cassette {name!r} not found; looked in:\n{listing}{hint}")


def _record_hint(name: str, node: pytest.Item) -> str:
    target = _record_path(name, node)
    return (
        f"\nRecord mode 'none' (the default) only replays; "
        f"`pytest --timetracer-record-mode=once` records it (into {target.parent})."
    )


def _enable_pymongo() -> None:
    """Install the PyMongo wrappers (idempotent): without them a session sees no call, and a test
    meant to replay would quietly reach the real database. Script mode is not turned on."""
    try:
        from timetracer.plugins.pymongo import enable
    except ImportError:  # PyMongo not installed: there is nothing to record or replay
        return
    enable()


def _record_path(name: Optional[str], node: pytest.Item) -> Any:
    if name and name.startswith("s3://"):
        return candidates(name, node)[0]
    path = Path(name or default_name(node))
    return path if path.is_absolute() else _cassette_dir(node.config) / path


@pytest.fixture
def timetracer_replay(request: pytest.FixtureRequest) -> Callable[..., ContextManager[Any]]:
    """``with timetracer_replay("GET__users_123.json"):`` answers PyMongo calls from the cassette."""
    from timetracer.api import replay

    def open_replay(name: str, **kwargs: Any) -> ContextManager[Any]:
        __tracebackhide__ = True
        _enable_pymongo()
        hint = (
            "\nRecord it first: the timetracer_record fixture, or @pytest.mark.timetracer with "
            "`pytest --timetracer-record-mode=once`."
        )
        return replay(find_cassette(str(name), request.node, hint), **kwargs)

    return open_replay


@pytest.fixture
def timetracer_record(request: pytest.FixtureRequest) -> Callable[..., ContextManager[Path]]:
    """``with timetracer_record() as cassette_path:`` records into a cassette named after the test."""
    from timetracer.api import record

    def open_record(name: Optional[str] = None, **kwargs: Any) -> ContextManager[Path]:
        _enable_pymongo()
        return record(_record_path(name, request.node), **kwargs)

    return open_record


@pytest.fixture(autouse=True)
def _timetracer_marker(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("timetracer")
    if marker is None:
        yield
        return
    from timetracer.api import record, replay
    from timetracer.errors import CassetteNotFoundError

    name = marker.args[0] if marker.args else marker.kwargs.get("cassette") or default_name(request.node)
    mode = _record_mode(request.config, marker)
    _enable_pymongo()
    existing: Optional[Path]
    try:
        existing = find_cassette(str(name), request.node, _record_hint(str(name), request.node))
    except CassetteNotFoundError as exc:
        if mode == "none":
            __tracebackhide__ = True
            raise exc.with_traceback(None) from None
        existing = None
    if mode == "all" or existing is None:
        with record(existing or _record_path(str(name), request.node)):
            yield
    else:
        with replay(existing):
            yield
