"""Per-call measurements: raw PyMongo, mongomock, and PyMongo under timetracer's four modes.

:func:`raw` and :func:`mongomock_calls` never import timetracer (the raw worker checks it). The
timetracer modes share one process and run interleaved, round by round:

- ``disabled``: ``disable_pymongo()``, PyMongo's own methods (a same-process reference);
- ``enabled``: ``enable_pymongo()``, no active session;
- ``record``: a recording session; the timed round includes building the cassette document
  (``Session.to_cassette()``, where cursor documents are converted), not writing the file;
- ``replay``: replaying sessions over the cassette the record round just made, against a client
  pointed at a port where nothing listens. The sessions are built outside the timed part.

Besides, :mod:`benchmarks._wrappers` costs the wrappers with no session, with no I/O.
"""

from __future__ import annotations

import socket
import sys
from typing import Any, Dict

from benchmarks import _workload as work
from benchmarks._record_probe import find_one_recording
from benchmarks._timing import Series, interleave, paired_difference, timed
from benchmarks._wrappers import wrapper_costs

# Replay rounds replay the round's recording this many times (see Modes.replay).
REPLAY_SESSIONS = 8


def _client(uri: str) -> Any:
    import pymongo

    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000)


def _rows(series: Dict[str, Series]) -> Dict[str, Any]:
    return {name: s.summary() for name, s in series.items()}


def _simple(db: Any, rounds: int, scale: float, mode: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, (_, call, per) in work.CALLS.items():
        count = max(3, int(per * scale))
        run = work.batch(db, call, count)

        def one_round(run: Any = run, name: str = name) -> tuple[float, float]:
            work.reset(db, name)
            return timed(run)

        out[name] = _rows(interleave(rounds, {mode: (one_round, count)}))
    return out


def raw(config: Dict[str, Any]) -> Dict[str, Any]:
    """PyMongo alone, in a process where timetracer is never imported."""
    client = _client(config["uri"])
    db = client[work.DATABASE]
    db.drop_collection(work.WRITES)
    results = _simple(db, config["rounds"], config["scale"], "raw")
    client.close()
    if "timetracer" in sys.modules:
        raise RuntimeError("the raw PyMongo worker imported timetracer; its numbers would be wrong")
    return {"calls": results, "timetracer_imported": False}


def mongomock_calls(config: Dict[str, Any]) -> Dict[str, Any]:
    """mongomock on the same data and calls: what users would otherwise pick for offline tests."""
    import mongomock

    db = mongomock.MongoClient()[work.DATABASE]
    work.seed(db)
    return {"calls": _simple(db, config["rounds"], config["scale"], "mongomock")}


def dead_port() -> int:
    """A local port with nothing listening on it (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stopped_database_client() -> Any:
    """A client for a database that is not running; replay must never reach it."""
    import pymongo

    uri = f"mongodb://127.0.0.1:{dead_port()}/?directConnection=true"
    return pymongo.MongoClient(uri, connect=False, serverSelectionTimeoutMS=300)


class Modes:
    """The four timetracer modes for one call, as rounds ready for :func:`interleave`."""

    def __init__(self, live_db: Any, dead_db: Any, name: str, call: Any, count: int) -> None:
        from timetracer.cassette.storage import decode, encode
        from timetracer.config import Compression, Mode, TraceConfig
        from timetracer.session import Session

        self._Session, self._Mode = Session, Mode
        self._encode = lambda doc: encode(doc, Compression.NONE)
        self._decode = lambda data: decode(data, "<bench>")
        self.config = TraceConfig.from_env(environ={})
        self.reset = lambda: work.reset(live_db, name)
        self.live = work.batch(live_db, call, count)
        self.dead = work.batch(dead_db, call, count)
        self.count = count
        self.cassette = b""  # the last recording, as the bytes of a plain cassette file

    def _plugin(self, on: bool) -> None:
        from timetracer.plugins import disable_pymongo, enable_pymongo

        enable_pymongo() if on else disable_pymongo()

    def disabled(self) -> tuple[float, float]:
        self._plugin(False)
        self.reset()
        return timed(self.live)

    def enabled(self) -> tuple[float, float]:
        self._plugin(True)
        self.reset()
        return timed(self.live)

    def record(self) -> tuple[float, float]:
        from timetracer import context

        self._plugin(True)
        self.reset()
        session = self._Session(self.config, self._Mode.RECORD)
        built: Dict[str, Any] = {}

        def run() -> None:
            token = context.activate(session)
            try:
                self.live()
            finally:
                context.deactivate(token)
            built["doc"] = session.to_cassette(for_writing=True)

        cost = timed(run)
        self.cassette = self._encode(built["doc"])
        return cost

    def replay(self) -> tuple[float, float]:
        """``REPLAY_SESSIONS`` replays of the last recording in one timed round (sessions built first).

        A replayed call is ~10x cheaper than a network call, so one recording's worth of calls is
        too short a round to time well; each session can answer each recorded call once. Each
        session gets a cassette document parsed for it: the first replay of a loaded cassette, with
        nothing converted by an earlier one.
        """
        from timetracer import context

        self._plugin(True)
        sessions = [
            self._Session(self.config, self._Mode.REPLAY, cassette=self._decode(self.cassette))
            for _ in range(REPLAY_SESSIONS)
        ]

        def run() -> None:
            for session in sessions:
                token = context.activate(session)
                try:
                    self.dead()
                finally:
                    context.deactivate(token)

        cost = timed(run)
        for session in sessions:
            replayer = session.replayer
            if replayer is None or replayer.matched_exact != self.count or replayer.mismatches:
                raise RuntimeError("replay did not match every recorded call exactly")
        return cost


def timetracer_calls(config: Dict[str, Any]) -> Dict[str, Any]:
    """The timetracer modes, interleaved per call; plus the no-I/O wrapper cost."""
    from timetracer.plugins import enable_pymongo

    enable_pymongo()
    live = _client(config["uri"])
    dead = stopped_database_client()
    live_db, dead_db = live[work.DATABASE], dead[work.DATABASE]
    live_db.drop_collection(work.WRITES)
    rounds, scale = config["rounds"], config["scale"]
    # First, while nothing has replayed in this process (as in production): replay-only guards
    # are installed when a process first replays.
    before_replay = wrapper_costs(live, live_db, rounds, scale)
    find_one_no_io = find_one_recording(live_db, rounds, scale)
    results: Dict[str, Any] = {}
    for name, (_, call, per) in work.CALLS.items():
        count = max(3, int(per * scale))
        modes = Modes(live_db, dead_db, name, call, count)
        series = interleave(
            rounds,
            {
                "disabled": (modes.disabled, count),
                "enabled": (modes.enabled, count),
                "record": (modes.record, count),
                "replay": (modes.replay, count * REPLAY_SESSIONS),
            },
        )
        rows = _rows(series)
        for mode in ("enabled", "record", "replay"):
            rows[mode]["paired_added_us"] = paired_difference(series[mode], series["disabled"])
        results[name] = rows
    after_replay = wrapper_costs(live, live_db, rounds, scale)
    dead.close()
    live.close()
    return {
        "calls": results,
        "wrappers": before_replay,
        "wrappers_after_replay": after_replay,
        "find_one_recording_no_io": find_one_no_io,
    }
