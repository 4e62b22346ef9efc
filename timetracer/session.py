"""Sessions: what one request, script or test records, or replays from.

A :class:`Session` is created by whoever owns a unit of work (the WSGI middleware, script mode,
a pytest fixture) and made active with :mod:`timetracer.context`. Plugins add events to a
recording session and ask a replaying session for the recorded answer to a call.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from timetracer import __version__, context
from timetracer.cassette._json import FiniteList, JsonText, materialize
from timetracer.cassette.format import SCHEMA_VERSION
from timetracer.config import Mode, TraceConfig
from timetracer.hashing import body_hash
from timetracer.matching import Replayer

Event = Dict[str, Any]

logger = logging.getLogger("timetracer")

# The clock of event offsets (one monotonic clock, in nanoseconds).
_now_ns = time.perf_counter_ns


class Session:
    """The events of one unit of work, being recorded or replayed.

    :param config: the settings in force.
    :param mode: ``Mode.RECORD`` or ``Mode.REPLAY``.
    :param cassette_path: the file this session writes (record) or was loaded from (replay).
    :param cassette: the parsed cassette to replay from (replay only).
    :param request: the ``request`` section (method, path, query, headers) when there is one.

    Example::

        session = Session(TraceConfig.from_env(), Mode.RECORD, cassette_path=Path("x.json"))
        with timetracer.context.active(session):
            run_job()
        write_cassette(session.cassette_path, session.to_cassette(for_writing=True), config.compression)
    """

    def __init__(
        self,
        config: TraceConfig,
        mode: Mode,
        *,
        cassette_path: Optional[Path] = None,
        cassette: Optional[Dict[str, Any]] = None,
        request: Optional[Dict[str, Any]] = None,
    ) -> None:
        if mode is Mode.OFF:
            raise ValueError("a Session records or replays; mode 'off' needs no session")
        if mode is Mode.REPLAY and cassette is None:
            raise ValueError("a replaying Session needs the cassette it replays")
        self.id = os.urandom(8).hex()  # 16 random hex digits (uuid4 made them 4x slower to get)
        self.config = config
        self.mode = mode
        self.recording = mode is Mode.RECORD
        self.replaying = mode is Mode.REPLAY
        if self.replaying:
            context.replay_started()
        self.cassette_path = cassette_path
        self.request: Dict[str, Any] = dict(request or {})
        self.response: Optional[Dict[str, Any]] = None
        self.error: Optional[Dict[str, Any]] = None
        self.recorded_at = datetime.now(timezone.utc)
        self._t0_ns = _now_ns()
        self._events: List[Event] = []
        self._finalizers: List[Callable[[], None]] = []
        self._eids = itertools.count(1)
        self._lock = threading.Lock()
        # Set once the cassette has been built: a call recorded later (by a thread the request
        # started and did not wait for) cannot be in it, which is worth a warning.
        self._built = False
        self._late_warned = False
        self.cassette = cassette
        self.replayer: Optional[Replayer] = (
            Replayer(cassette, cassette_path, config) if cassette is not None and self.replaying else None
        )

    # -- recording ---------------------------------------------------------------------------

    def offset_ms(self) -> float:
        """Milliseconds since the session started."""
        return (_now_ns() - self._t0_ns) / 1e6

    def start_event(self, signature: Dict[str, Any], args: Any = None) -> Event:
        """Open an event at the call's start; :meth:`end_event` fills its result.

        Events are numbered in the order calls start, whatever thread makes them.
        """
        if args is None:
            event: Event = {
                "eid": 0,
                "event_type": "db.query",
                "start_offset_ms": 0.0,
                "duration_ms": 0.0,
                "signature": signature,
            }
        else:
            event = {
                "eid": 0,
                "event_type": "db.query",
                "start_offset_ms": 0.0,
                "duration_ms": 0.0,
                "signature": signature,
                "args": args,
            }
        # The clock is read under the lock, so eid order and start_offset_ms order agree. Offsets
        # are whole microseconds (rounded half up), written as milliseconds with 3 decimals.
        lock = self._lock
        lock.acquire()
        try:
            event["start_offset_ms"] = ((_now_ns() - self._t0_ns + 500) // 1000) / 1000.0
            event["eid"] = next(self._eids)
            self._events.append(event)
            if not self._built:
                return event
            late = not self._late_warned
            self._late_warned = True
        finally:
            lock.release()
        if late:
            logger.warning(
                "timetracer: %s on %s was called in thread %r after the cassette %s was written, so it "
                "is not in it (a thread started during the request outlived it); replaying that "
                "request will not find this call. Join such threads before the request ends.",
                signature.get("method"),
                signature.get("url"),
                threading.current_thread().name,
                self.cassette_path,
            )
        return event

    def end_event(self, event: Event, result: Dict[str, Any]) -> None:
        """Close an event with its ``result`` and the time it took."""
        # Both ends in whole microseconds of one monotonic clock: never negative, exact.
        started = int(event["start_offset_ms"] * 1000.0 + 0.5)
        event["duration_ms"] = ((_now_ns() - self._t0_ns + 500) // 1000 - started) / 1000.0
        event["result"] = result

    def on_finish(self, finalizer: Callable[[], None]) -> None:
        """Run ``finalizer`` before the cassette is built (e.g. to encode a cursor's documents)."""
        with self._lock:
            self._finalizers.append(finalizer)

    @property
    def events(self) -> List[Event]:
        with self._lock:
            return sorted(self._events, key=lambda e: e["eid"])

    def record_error(self, exc: BaseException) -> None:
        """Note an exception that ended the request or script."""
        self.error = {"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": str(exc)}

    def _run_finalizers(self) -> None:
        # Each finalizer runs once, including ones registered by another finalizer; one that
        # fails is logged and the others still run, so the rest of the cassette is kept.
        while True:
            with self._lock:
                finalizers, self._finalizers = self._finalizers, []
            if not finalizers:
                return
            for finalize in finalizers:
                try:
                    finalize()
                except Exception:
                    logger.exception("timetracer: a session finalizer failed; its event may be incomplete")

    def to_cassette(self, *, for_writing: bool = False) -> Dict[str, Any]:
        """Build the cassette document for this session (record mode).

        Recorded documents are held as JSON written already (``JsonText``); the cassette writers
        take them as they are (``for_writing``), anyone else gets plain values.
        """
        self._run_finalizers()
        session_info: Dict[str, Any] = {
            "id": self.id,
            # isoformat, not strftime: strftime imports a module, impossible at interpreter shutdown.
            "recorded_at": self.recorded_at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z",
            "service": self.config.service,
            "env": self.config.env,
            "timetracer_version": __version__,
            "duration_ms": round(self.offset_ms(), 3),
        }
        document: Dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "session": session_info,
            "request": self.request,
        }
        if self.response is not None:
            document["response"] = self.response
        if self.error is not None:
            document["error"] = self.error
        with self._lock:  # in eid order: eids are given and events appended under the lock
            events = [event for event in self._events if "result" in event]
        # Recorded values are Extended JSON (NaN and infinities marked): the writer need not search them.
        document["events"] = FiniteList(events) if for_writing else events
        for event in events:
            _fill_body_hash(event)
            if not for_writing:
                _materialize(event)
        for check in list(_cassette_checks):
            try:
                check(self.cassette_path, events)
            except Exception:
                logger.exception("timetracer: a cassette check failed")
        with self._lock:
            self._built = True
        return document


# Run on the events of every cassette being built (plugins warn about what it holds).
_cassette_checks: List[Callable[[Optional[Path], List[Event]], None]] = []


def add_cassette_check(check: Callable[[Optional[Path], List[Event]], None]) -> None:
    """Run ``check(cassette_path, events)`` whenever a recorded cassette is built. Idempotent."""
    if check not in _cassette_checks:
        _cassette_checks.append(check)


def _materialize(event: Event) -> None:
    """Replace the JSON fragments among an event's recorded documents by their values."""
    body = (event.get("result") or {}).get("body")
    data = body.get("data") if isinstance(body, dict) else None
    if type(data) is list:
        body["data"] = [materialize(item) for item in data]
    elif type(data) is JsonText:
        body["data"] = materialize(data)


def _fill_body_hash(event: Event) -> None:
    """Hash the normalised arguments of an event recorded with ``body_hash`` left for later."""
    signature = event.get("signature")
    if not isinstance(signature, dict) or signature.get("body_hash") is not None:
        return
    try:
        signature["body_hash"] = body_hash(event.get("args"))
    except (TypeError, ValueError) as exc:
        logger.warning("timetracer: arguments of event eid=%s cannot be hashed: %s", event.get("eid"), exc)
        signature["body_hash"] = "unhashable"
