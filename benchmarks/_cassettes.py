"""Cassette costs: file size and write/read time per compression, and replay lookup scaling.

The Mongo-heavy request is a WSGI request whose app reads 1,000 documents of ~1 KB with one
``find``, recorded through the middleware and the plugin. For lookup scaling, 100 ``find_one`` calls are recorded for real; cassettes of 100 and of
10,000 events are then built from the first of them by changing ``_id`` and recomputing
``body_hash``, and checked against the real recordings, so both are valid cassettes.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any, Dict, List

from benchmarks import _workload as work
from benchmarks._calls import _client, stopped_database_client
from benchmarks._timing import Series, interleave, timed
from benchmarks._wsgi import drive

SCALING_SIZES = (100, 10_000)
SCALING_CALLS = 100
SCALING_SESSIONS = 4  # sessions per timed round, each answering the same 100 calls


def _record(db: Any, action: Any) -> Dict[str, Any]:
    """The cassette document of a recording session around ``action(db)``."""
    from timetracer import context
    from timetracer.config import Mode, TraceConfig
    from timetracer.session import Session

    session = Session(TraceConfig.from_env(environ={}), Mode.RECORD)
    token = context.activate(session)
    try:
        action(db)
    finally:
        context.deactivate(token)
    return session.to_cassette()


def _replay_session(document: Dict[str, Any], path: Any = None) -> Any:
    from timetracer.config import Mode, TraceConfig
    from timetracer.session import Session

    return Session(TraceConfig.from_env(environ={}), Mode.REPLAY, cassette=document, cassette_path=path)


def _in_session(session: Any, run: Any) -> Any:
    from timetracer import context

    token = context.activate(session)
    try:
        return run()
    finally:
        context.deactivate(token)


def _heavy_request(live_db: Any, folder: Path) -> Dict[str, Any]:
    """Record ``GET /customers`` (all 1,000 big documents, answered with their count); its cassette."""
    from timetracer.cassette import storage
    from timetracer.config import TraceConfig
    from timetracer.wsgi import TimeTracerMiddleware

    def customers(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        body = str(len(list(live_db[work.BIG].find()))).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    recorded = folder / "recorded"
    settings = TraceConfig.from_env(environ={}, mode="record", cassette_dir=recorded)
    drive(TimeTracerMiddleware(customers, settings), "/customers")
    return storage.read_cassette(recorded / "GET__customers.json")


def compression(live_db: Any, dead_db: Any, folder: Path, rounds: int) -> Dict[str, Any]:
    from timetracer.cassette import storage
    from timetracer.config import Compression

    document = _heavy_request(live_db, folder)
    events = document["events"]
    assert len(events) == 1 and len(events[0]["result"]["body"]["data"]) == work.BIG_COUNT
    out: Dict[str, Any] = {}
    for kind in Compression:
        target = folder / f"heavy{kind.suffix}"
        write, read = Series(1), Series(1)
        for cycle in range(rounds + 1):
            cost = timed(lambda kind=kind, target=target: storage.write_cassette(target, document, kind))
            storage._cache.clear()  # a cold read: no parse cache
            read_cost = timed(lambda target=target: storage.read_cassette(target))
            if cycle:
                write.add(*cost)
                read.add(*read_cost)
        out[kind.value] = {
            "bytes": target.stat().st_size,
            "write": write.summary(),
            "read": read.summary(),
        }
    # The ratio targets were set when plain cassettes were indented all the way down; plain files
    # now hold each document compact on one line, so the ratios are also taken against that form.
    out["indented"] = {"bytes": len(json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")) + 1}
    # Replaying the heavy request: the cost of reading all of it, and of reading one document.
    # Each replay from a freshly parsed document: nothing converted by an earlier replay.
    data = (folder / "heavy.json").read_bytes()
    collection = dead_db[work.BIG]
    replay_all, replay_one = Series(1), Series(1)
    for cycle in range(rounds + 1):
        session = _replay_session(storage.decode(data, "heavy.json"))
        all_cost = timed(lambda session=session: _in_session(session, lambda: list(collection.find())))
        session = _replay_session(storage.decode(data, "heavy.json"))
        one_cost = timed(lambda session=session: _in_session(session, lambda: next(collection.find())))
        if cycle:
            replay_all.add(*all_cost)
            replay_one.add(*one_cost)
    out["replay_find_1000"] = {"read_all": replay_all.summary(), "read_first": replay_one.summary()}
    return out


def _clone(template: Dict[str, Any], number: int) -> Dict[str, Any]:
    """The event of ``find_one({"_id": number})``, made from the recorded one of ``_id`` 0."""
    from timetracer.hashing import body_hash

    event = copy.deepcopy(template)
    event["eid"] = number + 1
    event["start_offset_ms"] = round(template["start_offset_ms"] + number * 0.5, 3)
    event["args"]["filter"]["_id"] = number
    event["signature"]["body_hash"] = body_hash(event["args"])
    data = event["result"]["body"]["data"]
    data["_id"] = number
    data["name"] = f"user{number:04d}"
    return event


def _spread(size: int) -> List[int]:
    """The ``_id``s of the timed calls: spread evenly over the cassette, the last one included."""
    return [round(k * (size - 1) / (SCALING_CALLS - 1)) for k in range(SCALING_CALLS)]


def scaling(live_db: Any, dead_db: Any, folder: Path, rounds: int) -> Dict[str, Any]:
    from timetracer.cassette import storage
    from timetracer.config import Compression

    recorded = _record(live_db, lambda db: [db[work.SMALL].find_one({"_id": k}) for k in range(100)])
    recorded = storage.decode(storage.encode(recorded, Compression.NONE), "<bench>")
    template = recorded["events"][0]
    for real in recorded["events"]:
        clone = _clone(template, real["args"]["filter"]["_id"])
        if (clone["signature"], clone["args"]) != (real["signature"], real["args"]):
            raise RuntimeError(f"a built event differs from the recorded one: {real['signature']}")
    out: Dict[str, Any] = {}
    runs: Dict[str, Any] = {}
    setups: Dict[str, Series] = {}
    for size in SCALING_SIZES:
        document = dict(recorded, events=[_clone(template, k) for k in range(size)])
        path = folder / f"scaling-{size}.json"
        storage.write_cassette(path, document, Compression.NONE)
        storage._cache.clear()
        parse = timed(lambda path=path: storage.read_cassette(path))
        parsed = storage.read_cassette(path)
        ids = _spread(size)
        setups[str(size)] = Series(1)

        def run(parsed: Any = parsed, ids: List[int] = ids, size: int = size) -> tuple[float, float]:
            sessions: List[Any] = []
            for _ in range(SCALING_SESSIONS):  # each session built (and timed) on its own
                setups[str(size)].add(*timed(lambda: sessions.append(_replay_session(parsed))))
            collection = dead_db[work.SMALL]

            def calls() -> None:
                for session in sessions:
                    _in_session(session, lambda: [collection.find_one({"_id": i}) for i in ids])

            cost = timed(calls)
            for session in sessions:
                replayer = session.replayer
                if replayer.matched_exact != len(ids) or replayer.mismatches:
                    raise RuntimeError("the scaling replay did not match every call exactly")
            return cost

        runs[str(size)] = (run, len(ids) * SCALING_SESSIONS)
        out[str(size)] = {
            "bytes": path.stat().st_size,
            "parse_ms": parse[0] * 1e3,
            "parse_wall_ms": parse[1] * 1e3,
        }
    series = interleave(rounds, runs)
    for size, s in series.items():
        out[size]["replay"] = s.summary()
        setup = setups[size]
        # drop the warm-up cycle's sessions
        setup.cpu, setup.wall = setup.cpu[SCALING_SESSIONS:], setup.wall[SCALING_SESSIONS:]
        out[size]["session_setup"] = setup.summary()
    return out


def cassettes(config: Dict[str, Any]) -> Dict[str, Any]:
    from timetracer.plugins import enable_pymongo

    enable_pymongo()
    live = _client(config["uri"])
    dead = stopped_database_client()
    live_db, dead_db = live[work.DATABASE], dead[work.DATABASE]
    rounds = config["rounds"]
    with tempfile.TemporaryDirectory(prefix="timetracer-bench-") as name:
        folder = Path(name)
        result = {
            "compression": compression(live_db, dead_db, folder, min(7, max(3, rounds // 3))),
            "scaling": scaling(live_db, dead_db, folder, rounds),
        }
    dead.close()
    live.close()
    return result
