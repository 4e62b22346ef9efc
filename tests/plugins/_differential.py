"""The differential harness: run one scenario three ways and compare what the app saw.

A :class:`Scenario` is a list of steps an app takes with one collection. :func:`run_three_ways`
runs it with timetracer off, then recording (both against the test server, from the same seed),
then replaying against a dead address with a connection guard, and returns the three
:class:`Outcome` lists. :func:`assert_identical` compares two outcomes recursively, by exact type
and ``repr`` at every level (dict key order included). Results are turned into what an app can
observe of them first (:func:`observe`): result fields, cursor attributes between reads,
exceptions with their class, message, code and details, and the app's own arguments after the
call (PyMongo adds ``_id`` to them).
"""

from __future__ import annotations

import contextlib
import decimal
import math
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import bson.objectid
from bson import Decimal128
from bson.codec_options import TypeCodec, TypeRegistry
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo import results
from pymongo.command_cursor import CommandCursor
from pymongo.cursor import Cursor

# -- the codec the harness seeds with --------------------------------------------------------------


class DecimalCodec(TypeCodec):
    """``decimal.Decimal`` stored as Decimal128 and read back as ``decimal.Decimal``."""

    python_type = decimal.Decimal
    bson_type = Decimal128

    def transform_python(self, value: decimal.Decimal) -> Decimal128:
        return Decimal128(value)

    def transform_bson(self, value: Decimal128) -> decimal.Decimal:
        return value.to_decimal()


REGISTRY = TypeRegistry([DecimalCodec()])

# The plain client that seeds collections can encode every value the scenarios use.
SEED_OPTIONS: Dict[str, Any] = {"uuidRepresentation": "standard", "type_registry": REGISTRY}

_RESULTS = (
    results.InsertOneResult,
    results.InsertManyResult,
    results.UpdateResult,
    results.DeleteResult,
    results.BulkWriteResult,
)


# -- what the app can observe -------------------------------------------------------------------


@dataclass(frozen=True)
class Raised:
    """An exception the app caught: everything it can read from it."""

    kind: type
    message: str
    representation: str
    code: Any
    details: Any
    labels: Tuple[str, ...]

    @classmethod
    def of(cls, exc: BaseException) -> Raised:
        labels = tuple(sorted(getattr(exc, "_error_labels", ()) or ()))
        return cls(
            type(exc), str(exc), repr(exc), getattr(exc, "code", None), getattr(exc, "details", None), labels
        )


@dataclass(frozen=True)
class ServerCursorId:
    """A server cursor id: exact in replay; between two live runs the server numbers differ, so
    transparency compares its type and whether it is 0."""

    value: Any


def cursor_state(cursor: Any) -> Dict[str, Any]:
    """The public attributes of a cursor, as the app can read them at this moment."""
    state: Dict[str, Any] = {
        "alive": cursor.alive,
        "cursor_id": ServerCursorId(cursor.cursor_id),
        "address": cursor.address,
    }
    if isinstance(cursor, Cursor):
        state["retrieved"] = cursor.retrieved
    return state


def result_fields(result: Any) -> Dict[str, Any]:
    """Every public property of a ``pymongo.results`` object (an error reading one included)."""
    fields: Dict[str, Any] = {"class": type(result)}
    for name in dir(type(result)):
        if name.startswith("_"):
            continue
        try:
            fields[name] = getattr(result, name)
        except Exception as exc:  # e.g. InvalidOperation on an unacknowledged result
            fields[name] = Raised.of(exc)
    return fields


def observe(value: Any) -> Any:
    """What an app can see of a value PyMongo returned (cursors are read to the end)."""
    if isinstance(value, (Cursor, CommandCursor)):
        return read_cursor(value)
    if isinstance(value, _RESULTS):
        return result_fields(value)
    if type(value) in (list, tuple):
        return type(value)(observe(item) for item in value)
    return value


def read_cursor(cursor: Any, first: int = 1) -> Dict[str, Any]:
    """Read a cursor as apps do, noting its attributes before, between and after reads."""
    seen: Dict[str, Any] = {"before": cursor_state(cursor)}
    docs: List[Any] = []
    try:
        for _ in range(first):
            docs.append(next(cursor))
        seen["after_first"] = cursor_state(cursor)
        docs.extend(cursor)
    except StopIteration:
        pass
    except Exception as exc:
        seen["raised"] = Raised.of(exc)
    seen["docs"] = docs
    seen["after_all"] = cursor_state(cursor)
    cursor.close()
    seen["after_close"] = cursor_state(cursor)
    return seen


# -- scenarios ----------------------------------------------------------------------------------

Step = Callable[[Any], Any]


@dataclass
class Scenario:
    """What an app does with one collection, step by step.

    :param name: the test id.
    :param steps: ``(label, step)``; ``step(collection)`` returns what the app keeps (observed).
    :param seed: documents in the collection before the run (inserted by a plain client).
    """

    name: str
    steps: List[Tuple[str, Step]]
    seed: List[Dict[str, Any]] = field(default_factory=list)


def run_steps(scenario: Scenario, collection: Any) -> List[Tuple[str, Any]]:
    """Run every step, catching what it raises; the outcome is a list of observations."""
    outcome: List[Tuple[str, Any]] = []
    for label, step in scenario.steps:
        try:
            outcome.append((label, observe(step(collection))))
        except Exception as exc:
            outcome.append((label, Raised.of(exc)))
    return outcome


# -- comparison ---------------------------------------------------------------------------------


def assert_identical(actual: Any, expected: Any, where: str = "outcome", *, live_pair: bool = False) -> None:
    """``actual`` is ``expected``, by exact type and ``repr``, all the way down.

    :param live_pair: comparing two live runs (timetracer off vs recording): server cursor ids
        are then compared by type and zero-ness only.
    """
    assert type(actual) is type(expected), (
        f"{where}: type {type(actual).__name__} != {type(expected).__name__} ({actual!r} vs {expected!r})"
    )
    if isinstance(expected, ServerCursorId):
        a, e = actual.value, expected.value
        assert type(a) is type(e), f"{where}: cursor id type {type(a).__name__} != {type(e).__name__}"
        if live_pair:
            assert bool(a) == bool(e), f"{where}: cursor id {a!r} vs {e!r}"
        else:
            assert a == e, f"{where}: cursor id {a!r} != {e!r}"
        return
    if isinstance(expected, Raised):
        for name in ("kind", "message", "representation", "code", "details", "labels"):
            assert_identical(
                getattr(actual, name), getattr(expected, name), f"{where}.{name}", live_pair=live_pair
            )
        return
    if isinstance(expected, RawBSONDocument):
        assert actual.raw == expected.raw, f"{where}: raw BSON differs: {actual!r} vs {expected!r}"
        return
    if isinstance(expected, dict):
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_identical(actual[key], expected[key], f"{where}[{key!r}]", live_pair=live_pair)
        return
    if isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{where}: length {len(actual)} != {len(expected)}"
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_identical(a, e, f"{where}[{index}]", live_pair=live_pair)
        return
    assert repr(actual) == repr(expected), f"{where}: {actual!r} != {expected!r}"
    if isinstance(expected, float) and math.isnan(expected):
        return
    if isinstance(expected, type):
        assert actual is expected, f"{where}: {actual!r} is not {expected!r}"
        return
    assert actual == expected, f"{where}: {actual!r} != {expected!r}"


# -- determinism and the connection guard -------------------------------------------------------


class _FixedClock:
    """Stands in for the ``time`` module inside ``bson.objectid``: every ObjectId made during a
    run has the same timestamp, so two live runs generate the same ids."""

    @staticmethod
    def time() -> float:
        return 1_700_000_000.0


@contextlib.contextmanager
def same_object_ids() -> Iterator[None]:
    """ObjectIds made inside the block follow one fixed sequence, the same for every run."""
    saved_time, saved_inc = bson.objectid.time, ObjectId._inc  # type: ignore[attr-defined]
    bson.objectid.time = _FixedClock  # type: ignore[assignment]
    ObjectId._inc = 0  # type: ignore[attr-defined]
    try:
        yield
    finally:
        bson.objectid.time = saved_time
        ObjectId._inc = saved_inc  # type: ignore[attr-defined]


class ConnectGuard:
    """Counts socket connection attempts made while it is active.

    Counted: every attempt from the thread that activated it (the replaying code) and every
    attempt, from any thread, to ``dead_address``. Other clients' monitor threads talking to the
    live test server are not counted.

    :param dead_address: the (host, port) replay clients point at.

    Example::

        with ConnectGuard(("127.0.0.1", 9)) as guard:
            ...
        assert guard.attempts == []
    """

    def __init__(self, dead_address: Tuple[str, int]) -> None:
        self.dead = dead_address
        self.attempts: List[Any] = []
        self._thread = threading.get_ident()
        self._saved: Optional[Tuple[Any, Any]] = None

    def _note(self, address: Any) -> None:
        here = threading.get_ident() == self._thread
        target = tuple(address[:2]) if isinstance(address, tuple) else address
        if here or target == self.dead:
            self.attempts.append(address)

    def __enter__(self) -> ConnectGuard:
        self._thread = threading.get_ident()
        connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
        guard = self

        def counted_connect(sock: socket.socket, address: Any) -> Any:
            guard._note(address)
            return connect(sock, address)

        def counted_connect_ex(sock: socket.socket, address: Any) -> Any:
            guard._note(address)
            return connect_ex(sock, address)

        self._saved = (connect, connect_ex)
        socket.socket.connect = counted_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = counted_connect_ex  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._saved is not None
        socket.socket.connect, socket.socket.connect_ex = self._saved  # type: ignore[method-assign]


# -- the three runs -----------------------------------------------------------------------------


@dataclass
class Runs:
    off: List[Tuple[str, Any]]
    recorded: List[Tuple[str, Any]]
    replayed: List[Tuple[str, Any]]
    connects: List[Any]


def reseed(plain_db: Any, scenario: Scenario) -> None:
    """Put the scenario's collection back to its seed (a plain client, no timetracer)."""
    plain_db.drop_collection(scenario.name)
    if scenario.seed:
        plain_db[scenario.name].insert_many([dict(doc) for doc in scenario.seed])


def run_three_ways(
    scenario: Scenario,
    plain_db: Any,
    live_db: Any,
    dead_db: Callable[[], Any],
    tape: Any,
    dead_address: Tuple[str, int],
) -> Runs:
    """Off, recording, replaying (``dead_db()`` is called inside the replay, as apps do)."""
    reseed(plain_db, scenario)
    with same_object_ids():
        off = run_steps(scenario, live_db[scenario.name])
    reseed(plain_db, scenario)
    with same_object_ids(), tape.record():
        recorded = run_steps(scenario, live_db[scenario.name])
    with same_object_ids(), tape.replay(), ConnectGuard(dead_address) as guard:
        replayed = run_steps(scenario, dead_db()[scenario.name])
    return Runs(off, recorded, replayed, guard.attempts)


def check(runs: Runs) -> None:
    """Transparency (off == recording), fidelity (recording == replay), and no connection."""
    assert_identical(runs.recorded, runs.off, "recording vs off", live_pair=True)
    assert_identical(runs.replayed, runs.recorded, "replay vs recording")
    assert runs.connects == [], f"replay attempted connections: {runs.connects}"
