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

    with _no_network(work.small_docs()[1]):
        if collection.find_one({"_id": 1}) is None:  # pragma: no cover - another PyMongo layout
            raise RuntimeError("this PyMongo's cursor keeps its documents elsewhere: no probe")
        series = interleave(rounds, {"disabled": (disabled, count), "recording": (recording, count)})
    enable_pymongo()
    return {
        "disabled_us": series["disabled"].summary()["cpu_us"],
        "recording_us": series["recording"].summary()["cpu_us"],
        "added_us": paired_difference(series["recording"], series["disabled"]),
    }
