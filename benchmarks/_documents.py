"""Issue #13's workload: ``find`` returning 100 documents of ~1 KB, recorded and replayed end to end.

All modes run in one process, interleaved round by round, one call per session:

- ``raw``: ``disable_pymongo()``, PyMongo's own methods;
- ``record`` / ``record_gzip`` / ``record_zstd``: a recording session, the call, and the cassette
  built, encoded and written (``write_cassette``: temp file, fsync, rename): everything recording
  costs the process;
- ``replay_first``: the first use of that cassette file: read and parse (parse cache cleared),
  schema check, session, the call answered (documents converted for the live codec options);
- ``replay_second``: a new session over the same loaded cassette, the second use (its documents
  are built again and kept as templates then, for every later use);
- ``replay_again``: a later use (many tests sharing one cassette);
- ``mongomock``: the same call on mongomock;
- ``floor_*``: the least any way of doing a step costs on this machine, timed in the same rounds
  (see :func:`_floors`).
"""

from __future__ import annotations

import tempfile
from collections import deque
from pathlib import Path
from typing import Any, Dict

from benchmarks import _workload as work
from benchmarks._calls import _client, _rows, stopped_database_client
from benchmarks._timing import interleave, paired_difference, timed

DOCS = work.BIG_COUNT // work.BUCKETS  # 100 per call


def documents(config: Dict[str, Any]) -> Dict[str, Any]:
    import mongomock

    from timetracer import context
    from timetracer.cassette import storage
    from timetracer.config import Compression, Mode, TraceConfig
    from timetracer.plugins import disable_pymongo, enable_pymongo
    from timetracer.session import Session

    config_ = TraceConfig.from_env(environ={})
    live = _client(config["uri"])
    dead = stopped_database_client()
    live_big = live[work.DATABASE][work.BIG]
    dead_big = dead[work.DATABASE][work.BIG]
    mock_db = mongomock.MongoClient()[work.DATABASE]
    mock_db[work.BIG].insert_many(work.big_docs())
    mock_big = mock_db[work.BIG]
    folder = Path(tempfile.mkdtemp(prefix="timetracer-bench-docs-"))
    paths = {c: folder / f"find{c.suffix}" for c in Compression}
    shared: Dict[str, Any] = {}

    def query(collection: Any) -> None:
        docs = list(collection.find({"bucket": 3}))
        assert len(docs) == DOCS

    def raw() -> tuple[float, float]:
        disable_pymongo()
        return timed(lambda: query(live_big))

    def mock() -> tuple[float, float]:
        return timed(lambda: query(mock_big))

    def recorder(compression: Compression) -> Any:
        def run() -> None:
            session = Session(config_, Mode.RECORD)
            token = context.activate(session)
            try:
                query(live_big)
            finally:
                context.deactivate(token)
            storage.write_cassette(paths[compression], session.to_cassette(for_writing=True), compression)

        def one_round() -> tuple[float, float]:
            enable_pymongo()
            return timed(run)

        return one_round

    def replay(document: Any) -> None:
        session = Session(config_, Mode.REPLAY, cassette=document)
        token = context.activate(session)
        try:
            query(dead_big)
        finally:
            context.deactivate(token)
        replayer = session.replayer
        if replayer is None or replayer.matched_exact != 1 or replayer.mismatches:
            raise RuntimeError("replay did not match the recorded call exactly")

    def replay_first() -> tuple[float, float]:
        enable_pymongo()
        with storage._cache_lock:
            storage._cache.clear()
        shared.pop("doc", None)  # freeing the last round's cassette is not part of a first use

        def run() -> None:
            shared["doc"] = storage.read_cassette(paths[Compression.NONE])
            replay(shared["doc"])

        return timed(run)

    def replay_second() -> tuple[float, float]:
        enable_pymongo()
        return timed(lambda: replay(shared["doc"]))

    def replay_again() -> tuple[float, float]:
        enable_pymongo()
        return timed(lambda: replay(shared["doc"]))

    floors = _floors(live_big, dead_big, folder, recorder(Compression.NONE), paths[Compression.NONE])
    rounds = max(5, int(config["rounds"] * 2))
    series = interleave(
        rounds,
        {
            "raw": (raw, 1),
            "record": (recorder(Compression.NONE), 1),
            "record_gzip": (recorder(Compression.GZIP), 1),
            "record_zstd": (recorder(Compression.ZSTD), 1),
            "replay_first": (replay_first, 1),
            "replay_second": (replay_second, 1),
            "replay_again": (replay_again, 1),
            "mongomock": (mock, 1),
            **{name: (run, 1) for name, run in floors.items()},
        },
    )
    rows = _rows(series)
    for mode in ("record", "record_gzip", "record_zstd"):
        rows[mode]["paired_added_us"] = paired_difference(series[mode], series["raw"])
    sizes = {c.value: paths[c].stat().st_size for c in Compression}
    live.close()
    dead.close()
    return {"docs": DOCS, "modes": rows, "sizes": sizes}


def _floors(collection: Any, dead: Any, folder: Path, record: Any, cassette: Path) -> Dict[str, Any]:
    """What the steps recording and replay cannot avoid cost here, with no timetracer code:

    - ``floor_decode``: ``bson.decode_all`` of the 100 documents (raw PyMongo's own decode: making
      the app's objects, in C);
    - ``floor_again``: a later replay reduced to what any replay that hands the app its own
      documents must do: PyMongo's ``find`` cursor (no session, nothing matched) filled with fresh
      copies of the 100 documents kept in memory (new dicts and lists, the same immutable values:
      a copy written for this exact shape), and read to the end by PyMongo's own ``next``;
    - ``floor_dump``: ``orjson.dumps`` of each decoded document, dates and ids left to orjson's
      own formats (the least writing the documents as JSON can cost; the stored form needs more);
    - ``floor_parse``: ``orjson.loads`` of the plain cassette file's bytes (the least reading it
      can cost);
    - ``floor_walk``: a Python walk that only visits every value of the parsed documents (one
      type test each, nothing built; timetracer's search for NaN, which finds none here): the
      least a first replay adds to the parse to find the dates and ids it must rebuild, with no C
      walker for Extended JSON to call;
    - ``floor_write``: those bytes written to a temp file, fsynced and renamed (the least a
      durable cassette write can cost); ``floor_write_small``: the same for 2 KB, about the
      cassette of a request with no database call.
    """
    import os

    import bson
    import orjson
    from pymongo.cursor import Cursor

    from timetracer.cassette._json import has_nonfinite

    record()  # a cassette to read and write
    data = cassette.read_bytes()
    docs = list(collection.find({"bucket": 3}))
    kept = list(collection.find({"bucket": 3}))
    stored = [event["result"]["body"]["data"] for event in orjson.loads(data)["events"]]
    raw = b"".join(bson.encode(doc) for doc in docs)
    temp = folder / "floor.tmp"

    def write(data: bytes = data) -> None:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, folder / "floor.json")

    def fresh(doc: Dict[str, Any]) -> Dict[str, Any]:
        out = doc.copy()
        out["address"] = doc["address"].copy()
        out["tags"] = doc["tags"].copy()
        out["history"] = list(map(dict.copy, doc["history"]))
        return out

    class Least(Cursor):  # reads with one Python call per document (PyMongo's next), not two
        __next__ = Cursor.next

    def again() -> None:  # no session is active: the wrappers pass every call straight on
        cursor = dead.find({"bucket": 3})
        cursor.__class__ = Least
        cursor._data = deque([fresh(doc) for doc in kept])  # PyMongo 4.9+ field names
        cursor._id = 0
        cursor._killed = True
        if len(list(cursor)) != DOCS:
            raise RuntimeError("the floor cursor did not hand out the documents")

    return {
        "floor_decode": lambda: timed(lambda: bson.decode_all(raw)),
        "floor_again": lambda: timed(again),
        "floor_dump": lambda: timed(lambda: [orjson.dumps(doc) for doc in docs]),
        "floor_parse": lambda: timed(lambda: orjson.loads(data)),
        "floor_walk": lambda: timed(lambda: has_nonfinite(stored)),
        "floor_write": lambda: timed(write),
        "floor_write_small": lambda: timed(lambda: write(data[:2048])),
    }
