"""Helpers for the PyMongo plugin tests: record a block to a cassette file and replay it.

:class:`Tape` drives the real :class:`timetracer.session.Session` the way a middleware does;
:func:`assert_same` compares what replay returned with what the live server returned, value
*and* type, all the way down.
"""

from __future__ import annotations

import contextlib
import datetime
import math
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from bson.raw_bson import RawBSONDocument
from bson.regex import Regex
from jsonschema import Draft202012Validator
from pymongo import results
from pymongo.command_cursor import CommandCursor
from pymongo.cursor import Cursor

from timetracer import context
from timetracer.cassette import load_schema, read_cassette, write_cassette
from timetracer.config import Compression, Mode, TraceConfig
from timetracer.session import Session

_VALIDATOR: Optional[Draft202012Validator] = None
_RESULTS = (
    results.InsertOneResult,
    results.InsertManyResult,
    results.UpdateResult,
    results.DeleteResult,
    results.BulkWriteResult,
)


def validate_against_schema(document: Dict[str, Any]) -> None:
    """Fail the test if ``document`` does not conform to the cassette JSON Schema."""
    global _VALIDATOR
    if _VALIDATOR is None:
        schema = load_schema()
        Draft202012Validator.check_schema(schema)
        _VALIDATOR = Draft202012Validator(schema)
    errors = sorted(_VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "cassette does not match the schema:\n" + "\n".join(
        f"  {list(e.absolute_path)}: {e.message}" for e in errors[:10]
    )


def config(mode: str) -> TraceConfig:
    """Settings for a test session, independent of any ``TIMETRACER_*`` in the environment."""
    return TraceConfig.from_env({}, mode=mode)


class Tape:
    """One cassette file: record a block into it, then replay blocks from it.

    :param path: the cassette file.

    Example::

        tape = Tape(tmp_path / "c.json")
        with tape.record():
            live = coll.find_one({"a": 1})
        with tape.replay():
            assert dead_coll.find_one({"a": 1}) == live
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.document: Optional[Dict[str, Any]] = None

    @contextlib.contextmanager
    def record(self) -> Iterator[Session]:
        """Record the block; the cassette is written, read back and schema-checked after it."""
        session = Session(config("record"), Mode.RECORD, cassette_path=self.path)
        with context.active(session):
            yield session
        self.save(session)

    def save(self, session: Session) -> Dict[str, Any]:
        # As the middleware writes it: recorded documents as JSON text, events not searched for NaN.
        write_cassette(self.path, session.to_cassette(for_writing=True), Compression.NONE)
        self.document = read_cassette(self.path)
        validate_against_schema(self.document)
        return self.document

    def session(self) -> Session:
        """A fresh replaying session over the written cassette (not yet active)."""
        document = read_cassette(self.path)
        return Session(config("replay"), Mode.REPLAY, cassette_path=self.path, cassette=document)

    @contextlib.contextmanager
    def replay(self) -> Iterator[Session]:
        """Replay the block from the cassette written by :meth:`record`."""
        with context.active(self.session()) as session:
            assert session is not None
            yield session

    @property
    def events(self) -> List[Dict[str, Any]]:
        assert self.document is not None, "record() first"
        return list(self.document["events"])

    def methods(self) -> List[str]:
        return [event["signature"]["method"] for event in self.events]


def assert_same(replayed: Any, live: Any, where: str = "result") -> None:
    """``replayed == live`` with the same type at every level (dict order included)."""
    assert type(replayed) is type(live), f"{where}: {type(replayed).__name__} != {type(live).__name__}"
    if isinstance(live, RawBSONDocument):
        assert replayed.raw == live.raw, f"{where}: raw BSON differs"
        return
    if isinstance(live, dict):
        assert list(replayed) == list(live), f"{where}: keys {list(replayed)} != {list(live)}"
        for key in live:
            assert_same(replayed[key], live[key], f"{where}[{key!r}]")
        return
    if isinstance(live, (list, tuple)):
        assert len(replayed) == len(live), f"{where}: length {len(replayed)} != {len(live)}"
        for index, (a, b) in enumerate(zip(replayed, live)):
            assert_same(a, b, f"{where}[{index}]")
        return
    if isinstance(live, float) and math.isnan(live):
        assert math.isnan(replayed), f"{where}: {replayed!r} is not NaN"
        return
    if isinstance(live, datetime.datetime):
        assert replayed.utcoffset() == live.utcoffset(), f"{where}: tz {replayed.tzinfo} != {live.tzinfo}"
    assert replayed == live, f"{where}: {replayed!r} != {live!r}"


def observe(value: Any) -> Any:
    """What a user can see of a PyMongo return value: documents of a cursor, fields of a result."""
    if isinstance(value, (Cursor, CommandCursor)):
        return list(value)
    if isinstance(value, _RESULTS):
        return result_fields(value)
    return value


def result_fields(result: Any) -> Dict[str, Any]:
    """Every public property of a ``pymongo.results`` object, plus its class name."""
    fields: Dict[str, Any] = {"class": type(result).__name__}
    for name in dir(type(result)):
        if not name.startswith("_"):
            fields[name] = getattr(result, name)
    return fields


def record_then_replay(
    tape: Tape, live_db: Any, dead_client: Callable[..., Any], work: Callable[[Any], Any]
) -> Any:
    """Run ``work(db)`` recorded on ``live_db``, then replayed on a dead client's database.

    Returns ``(live, replayed)``; the dead client is made inside the replay, as an app started
    in replay mode makes it.
    """
    with tape.record():
        live = work(live_db)
    with tape.replay():
        replayed = work(dead_client()[live_db.name])
    return live, replayed


def change_everything(value: Any) -> None:
    """What an app may do to the documents it got: change every dict, list and ``Regex`` in them
    (a replay must never hand a later replay anything changed this way)."""
    if isinstance(value, dict):
        for item in list(value.values()):
            change_everything(item)
        value["changed by the app"] = True
    elif isinstance(value, list):
        for item in list(value):
            change_everything(item)
        value.append("changed by the app")
    elif isinstance(value, Regex):
        value.pattern = "changed by the app"
