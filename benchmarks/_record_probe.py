"""What recording adds to one ``find_one``, measured with no I/O.

A network round trip's client CPU varies from round to round by more than the 10 µs target, so the
paired figure of real calls cannot settle it. Here PyMongo's network step (``Cursor._send_message``)
is replaced by one that hands the cursor a freshly decoded reply document, as the real one does
after the server answers; everything else (PyMongo's ``find_one``, cursor and session handling,
and all of timetracer's recording, the cassette document built at the end of each round included)
runs as usual, and so does encoding that cassette as a plain (indented) file. Recording against the
plugin disabled, rounds interleaved: the difference is what timetracer adds per call. Writing the
file is left out: it is paid once per request (the no-database request row), whatever it holds.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Any, Dict, Iterator

import bson

from benchmarks import _workload as work
from benchmarks._timing import interleave, paired_difference, timed


@contextlib.contextmanager
def _no_network(document: Dict[str, Any]) -> Iterator[None]:
    from pymongo.cursor import Cursor

    raw = bson.encode(document)
    original = Cursor._send_message  # type: ignore[attr-defined]

    def send(self: Any, operation: Any) -> None:
        self._address = ("localhost", 27017)
        self._id = 0
        self._data = deque([bson.decode(raw, self._codec_options)])
        self._retrieved += 1
        self.close()

    Cursor._send_message = send  # type: ignore[attr-defined]
    try:
        yield
    finally:
        Cursor._send_message = original  # type: ignore[attr-defined]


def find_one_recording(db: Any, rounds: int, scale: float) -> Dict[str, Any]:
    """CPU of ``find_one`` by ``_id`` with the network stubbed: plugin disabled, and recording (the
    cassette built and encoded)."""
    from timetracer import context
    from timetracer.cassette import storage
    from timetracer.config import Compression, Mode, TraceConfig
    from timetracer.plugins import disable_pymongo, enable_pymongo
    from timetracer.session import Session

    collection = db[work.SMALL]
    count = max(200, int(1_000 * scale))
    settings = TraceConfig.from_env(environ={})

    def calls() -> None:
        for i in range(count):
            collection.find_one({"_id": i})

    def disabled() -> tuple[float, float]:
        disable_pymongo()
        return timed(calls)

    def recording() -> tuple[float, float]:
        enable_pymongo()

        def run() -> None:
            session = Session(settings, Mode.RECORD)
            token = context.activate(session)
            try:
                calls()
            finally:
                context.deactivate(token)
            storage.encode(session.to_cassette(for_writing=True), Compression.NONE)

        return timed(run)

    floor = _least_recording(collection, calls)

    with _no_network(work.small_docs()[1]):
        if collection.find_one({"_id": 1}) is None:  # pragma: no cover - another PyMongo layout
            raise RuntimeError("this PyMongo's cursor keeps its documents elsewhere: no probe")
        series = interleave(
            rounds,
            {"disabled": (disabled, count), "recording": (recording, count), "floor": (floor, count)},
        )
    enable_pymongo()
    return {
        "disabled_us": series["disabled"].summary()["cpu_us"],
        "recording_us": series["recording"].summary()["cpu_us"],
        "added_us": paired_difference(series["recording"], series["disabled"]),
        "floor_added_us": paired_difference(series["floor"], series["disabled"]),
    }


def _least_recording(collection: Any, calls: Any) -> Any:
    """A round of the least recording ``find_one`` can cost: per call, only what a recording
    cannot skip (its filter and its result snapshotted by the same C calls timetracer uses, two
    clock reads, one tuple kept), and per call at the end one event with its body hash, encoded.
    No wrapper, no session, no error handling: a floor, not a recorder."""
    import time

    from pymongo.collection import Collection

    from timetracer.cassette import _json, storage
    from timetracer.config import Compression
    from timetracer.hashing import body_hash
    from timetracer.plugins import disable_pymongo
    from timetracer.plugins.pymongo._normalize import stored
    from timetracer.plugins.pymongo._values import stored_json

    disable_pymongo()
    own = Collection.find_one  # PyMongo's own method
    now = time.perf_counter_ns
    kept: list = []

    def find_one(self: Any, filter: Any = None, *args: Any, **kwargs: Any) -> Any:
        started = now()
        codec = self.codec_options
        normal = stored(filter, codec)
        result = own(self, filter, *args, **kwargs)
        kept.append((started, now(), normal, stored_json(result, codec)))
        return result

    def cassette() -> None:
        events = []
        for eid, (started, ended, normal, data) in enumerate(kept, 1):
            args = {"filter": normal}
            signature = {
                "lib": "pymongo",
                "method": "FIND_ONE",
                "url": collection.full_name,
                "query": {"filter_keys": list(normal)},
                "body_hash": body_hash(args),
            }
            events.append(
                {
                    "eid": eid,
                    "event_type": "db.query",
                    "start_offset_ms": started / 1e6,
                    "duration_ms": (ended - started) / 1e6,
                    "signature": signature,
                    "args": args,
                    "result": {"status": 0, "body": {"captured": True, "data": data}},
                }
            )
        kept.clear()
        storage.encode({"schema_version": "1.0", "events": _json.FiniteList(events)}, Compression.NONE)

    def run() -> None:
        Collection.find_one = find_one  # type: ignore[method-assign]
        try:
            calls()
        finally:
            Collection.find_one = own  # type: ignore[method-assign]
        cassette()

    def one_round() -> tuple[float, float]:
        disable_pymongo()
        return timed(run)

    return one_round
