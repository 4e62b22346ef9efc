"""Cursors that record the documents an app reads, and replay them with no I/O.

``find()`` returns a :class:`TracedCursor` (a real ``pymongo.cursor.Cursor`` subclass) when a
session is active. Its query is identified when it is first fetched, so chained ``sort``/``skip``/
``limit`` calls count. ``aggregate()`` and the other command cursors use
:class:`TracedCommandCursor`. PyMongo's private cursor fields are reached through
:class:`_Fields`, which knows the 4.6-4.8 (name-mangled) and 4.9+ spellings.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from pymongo.command_cursor import CommandCursor
from pymongo.cursor import Cursor

from timetracer import context
from timetracer.errors import ReplayMismatchError
from timetracer.plugins.pymongo import _claims
from timetracer.plugins.pymongo import _normalize as norm
from timetracer.plugins.pymongo._errors import capture_error_safely
from timetracer.plugins.pymongo._failures import capture_failed
from timetracer.plugins.pymongo._guard import bad_value, guard, passes_through, recorded_error
from timetracer.plugins.pymongo._signature import signature_for
from timetracer.plugins.pymongo._values import capture_document, decode_cached, stored_document

if TYPE_CHECKING:
    from timetracer.session import Session

logger = logging.getLogger("timetracer")


class _Fields:
    """Names of a PyMongo cursor class's private fields in the installed version."""

    def __init__(self, cls: type, probe: str) -> None:
        names = set()
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is not None and hasattr(init, "__code__"):
                names.update(init.__code__.co_names)
        mangled = f"_{cls.__name__}__{probe}" in names
        self.prefix = f"_{cls.__name__}__" if mangled else "_"

    def get(self, obj: Any, name: str, default: Any = None) -> Any:
        return getattr(obj, self.prefix + name, default)

    def set(self, obj: Any, name: str, value: Any) -> None:
        setattr(obj, self.prefix + name, value)


CURSOR = _Fields(Cursor, "spec")
# Recorded documents are decoded for the app this many at a time, as it reads them.
REPLAY_BATCH = 100
COMMAND_CURSOR = _Fields(CommandCursor, "data")


class _State:
    """What one traced cursor has recorded or is replaying."""

    __slots__ = (
        "docs",
        "event",
        "exhausted",
        "failed",
        "raised_past_end",
        "served",
        "server_done",
        "session",
    )

    def __init__(self, session: Session, event: Dict[str, Any]) -> None:
        self.session = session
        self.event = event
        self.docs: List[Any] = []  # what capture_document returned, per document read
        self.server_done = False
        self.exhausted = False
        self.failed: Optional[Dict[str, Any]] = None
        self.raised_past_end = False
        self.served = 0  # replay: how many recorded documents the cursor has handed out

    def finish(self) -> None:
        """Write the recorded documents into the event (runs when the cassette is built)."""
        result: Dict[str, Any] = {"status": 0, "body": {"captured": True, "data": []}}
        lost = next((doc.error for doc in self.docs if isinstance(doc, _Lost)), None)
        try:
            if lost is None:
                result["body"]["data"] = [stored_document(doc) for doc in self.docs]
        except Exception as exc:  # never break the app's request over a value we cannot store
            capture_failed("the documents of a cursor", exc)
            lost = exc
        if lost is not None:
            result["body"] = {"captured": False, "data": None, "reason": f"{type(lost).__name__}: {lost}"}
        result["exhausted"] = self.exhausted
        if self.failed is not None:
            result["status"] = 1
            result["error"] = self.failed
        self.session.end_event(self.event, result)


class _Lost:
    """Stands in the recorded documents for one that could not be captured: the cursor's result
    is then stored as not captured, and replaying it raises a clear error, never fewer documents."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _uncaptured(session: Session, event: Dict[str, Any]) -> ReplayMismatchError:
    sig = event["signature"]
    body = event["result"].get("body") or {}
    return ReplayMismatchError(
        f"the documents of the recorded cursor of {sig.get('method')} on {sig.get('url')} (eid={event['eid']}) "
        f"were not captured ({body.get('reason', 'no reason stored')}), so replay cannot return them; "
        f"re-record the cassette {session.cassette_path}"
    )


def _lost_in_recording(event: Dict[str, Any]) -> bool:
    result = event["result"]
    return (result.get("body") or {}).get("captured") is False and not result.get("error")


def _recorded_docs(event: Dict[str, Any]) -> List[Any]:
    body = event["result"].get("body") or {}
    return body.get("data") or []


def _past_end(session: Session, event: Dict[str, Any], count: int) -> ReplayMismatchError:
    sig = event["signature"]
    message = (
        f"the app read more documents from the cursor of {sig.get('method')} on {sig.get('url')} "
        f"(recorded call eid={event['eid']}) than were recorded: the recording read {count} and "
        f"stopped before the cursor was exhausted\n  cassette: {session.cassette_path}"
    )
    if session.replayer is not None:  # counted and logged: the verdict is mismatch even if caught
        return session.replayer.miss(message)
    return ReplayMismatchError(message)


def _find_arguments(cursor: Cursor) -> Dict[str, Any]:
    """The final query of a find cursor, at its first fetch, in normal form."""
    get = CURSOR.get
    args: Dict[str, Any] = {}
    spec = get(cursor, "spec")
    if spec:
        args["filter"] = spec
    for field, name in (
        ("projection", "projection"),
        ("ordering", "sort"),
        ("hint", "hint"),
        ("collation", "collation"),
        ("max", "max"),
        ("min", "min"),
        ("let", "let"),
    ):
        value = get(cursor, field)
        if value:
            args[name] = value
    for field in ("skip", "limit"):
        value = get(cursor, field)
        if value:
            args[field] = value
    for field in ("return_key", "show_record_id", "explain"):
        if get(cursor, field):
            args[field] = True
    return norm.shape(args, get(cursor, "codec_options"))


# What the app reads from a traced cursor: while recording, every document it receives is
# captured (before the app can change it), and reaching the end marks the cursor exhausted.
# Plain functions, not a mixin class: a live cursor's class is swapped for a traced one, which
# Python allows only when the new class adds no base of its own.


def _capture(cursor: Any, doc: Any) -> None:
    state = cursor._tt_state
    if state is not None and state.session.recording:
        try:
            state.docs.append(capture_document(doc, cursor._tt_codec()))
        except Exception as exc:  # never break the app's read over our snapshot
            capture_failed("a document read from a cursor", exc)
            state.docs.append(_Lost(exc))
        if state.server_done and not len(cursor._tt_fields.get(cursor, "data")):
            state.exhausted = True


def _read_next(cursor: Any, base_next: Any) -> Any:
    try:
        doc = base_next(cursor)
    except StopIteration:
        if cursor._tt_state is not None:
            cursor._tt_state.exhausted = True
        raise
    _capture(cursor, doc)
    return doc


def _read_batch(cursor: Any, base_batch: Any, result: List[Any], total: Optional[int]) -> bool:
    before = len(result)
    more: bool = base_batch(cursor, result, total)
    for doc in result[before:]:
        _capture(cursor, doc)
    if not more and cursor._tt_state is not None:
        cursor._tt_state.exhausted = True
    return more


class TracedCursor(Cursor):
    """A find cursor that records what the app reads, or replays it from the cassette."""

    _tt_session: Optional[Session] = None
    _tt_state: Optional[_State] = None
    _tt_fields = CURSOR

    def _tt_codec(self) -> Any:
        return CURSOR.get(self, "codec_options")

    def _tt_bind(self) -> Optional[Session]:
        session = self._tt_session
        if session is None:
            session = context.current()
            self._tt_session = session
        return session

    def _refresh(self) -> int:
        session = self._tt_bind()
        if session is None:
            return super()._refresh()
        data = CURSOR.get(self, "data")
        if len(data) or CURSOR.get(self, "killed"):
            return len(data)
        if session.replaying:
            return self._tt_replay(session)
        return self._tt_record(session)

    # -- record ------------------------------------------------------------------------------

    def _tt_record(self, session: Session) -> int:
        state = self._tt_state
        if state is None:
            try:
                args = _find_arguments(self)
                method = "EXPLAIN" if CURSOR.get(self, "explain") else "FIND"
                signature = signature_for(method, self.collection.full_name, args, hashed=False)
                state = self._tt_state = _State(session, session.start_event(signature, args))
                session.on_finish(state.finish)
            except Exception as exc:  # not recorded: from now on an ordinary cursor, untouched
                capture_failed("the arguments of find", exc)
                self.__class__ = Cursor
                return Cursor._refresh(self)  # type: ignore[attr-defined,no-any-return]
        try:
            count = super()._refresh()
        except Exception as exc:
            state.failed = capture_error_safely(exc)
            raise
        state.server_done = bool(CURSOR.get(self, "killed")) or not CURSOR.get(self, "id")
        if count == 0 and state.server_done:
            state.exhausted = True
        return count

    # -- replay ------------------------------------------------------------------------------

    def _tt_replay(self, session: Session) -> int:
        try:
            return self._tt_replay_recorded(session)
        except Exception as exc:
            if passes_through(exc):
                raise
            state = self._tt_state
            raise bad_value(exc, session, state.event if state else None, "result") from exc

    def _tt_replay_recorded(self, session: Session) -> int:
        state = self._tt_state
        if state is None:
            args = _find_arguments(self)
            method = "EXPLAIN" if CURSOR.get(self, "explain") else "FIND"
            signature = signature_for(method, self.collection.full_name, args)
            assert session.replayer is not None
            event = session.replayer.match(signature, args)
            state = self._tt_state = _State(session, event)
            _claims.hold(session, state)
            result = event["result"]
            if _lost_in_recording(event):
                CURSOR.set(self, "killed", True)
                raise _uncaptured(session, event)
            if result.get("error") and not _recorded_docs(event):
                CURSOR.set(self, "killed", True)
                raise recorded_error(session, event)
            return self._tt_serve(state)
        if state.served < len(_recorded_docs(state.event)) or _claims.extend(session, state):
            return self._tt_serve(state)
        result = state.event["result"]
        CURSOR.set(self, "killed", True)
        if result.get("error"):
            raise recorded_error(session, state.event)
        if result.get("exhausted"):
            return 0
        raise _past_end(session, state.event, len(_recorded_docs(state.event)))

    def _tt_serve(self, state: _State) -> int:
        """Hand out the next batch of recorded documents, decoded only now (large results stay
        cheap until the app reads them)."""
        result = state.event["result"]
        body = result.get("body") or {}
        total = len(body.get("data") or [])
        docs = guard(
            state.session,
            state.event,
            "result.body.data",
            decode_cached,
            body,
            state.served,
            state.served + REPLAY_BATCH,
            CURSOR.get(self, "codec_options"),
        )
        state.served += len(docs)
        CURSOR.set(self, "data", deque(docs))
        CURSOR.set(self, "retrieved", state.served)
        CURSOR.set(self, "id", 0)
        last = state.served >= total
        CURSOR.set(self, "killed", last and bool(result.get("exhausted")) and not result.get("error"))
        return len(docs)

    def next(self) -> Any:
        return _read_next(self, Cursor.next)

    __next__ = next

    def _next_batch(self, result: List[Any], total: Optional[int] = None) -> bool:
        return _read_batch(self, Cursor._next_batch, result, total)  # type: ignore[attr-defined]

    def rewind(self) -> TracedCursor:
        super().rewind()
        self._tt_state = None
        return self


class TracedCommandCursor(CommandCursor):
    """A command cursor (aggregate, list_collections…) that records or replays its documents."""

    _tt_state: Optional[_State] = None
    _tt_fields = COMMAND_CURSOR

    def _tt_codec(self) -> Any:
        return COMMAND_CURSOR.get(self, "collection").codec_options

    @classmethod
    def replayed(cls, collection: Any, event: Dict[str, Any], session: Session) -> TracedCommandCursor:
        """A real CommandCursor over the recorded documents; it never reaches a server."""
        if _lost_in_recording(event):
            raise _uncaptured(session, event)
        body = event["result"].get("body") or {}
        docs = decode_cached(body, 0, len(body.get("data") or []), collection.codec_options)
        cursor = cls(collection, {"id": 0, "firstBatch": docs, "ns": collection.full_name}, None)
        cursor._tt_state = _State(session, event)
        _claims.hold(session, cursor._tt_state, served=len(docs))
        exhausted = bool(event["result"].get("exhausted")) and not event["result"].get("error")
        COMMAND_CURSOR.set(cursor, "killed", exhausted)
        return cursor

    @classmethod
    def recording(cls, cursor: CommandCursor, session: Session, event: Dict[str, Any]) -> CommandCursor:
        cursor.__class__ = cls
        state = _State(session, event)
        cursor._tt_state = state  # type: ignore[attr-defined]
        session.on_finish(state.finish)
        state.server_done = not COMMAND_CURSOR.get(cursor, "id")
        return cursor

    def _refresh(self) -> int:
        state = self._tt_state
        if state is None or state.session.recording:
            try:
                count = super()._refresh()
            except Exception as exc:
                if state is not None:
                    state.failed = capture_error_safely(exc)
                raise
            if state is not None:
                state.server_done = not COMMAND_CURSOR.get(self, "id")
                if count == 0 and state.server_done:
                    state.exhausted = True
            return count
        data = COMMAND_CURSOR.get(self, "data")
        if len(data) or state.raised_past_end:
            return len(data)
        if _claims.extend(state.session, state):
            body = state.event["result"].get("body") or {}
            more = decode_cached(body, state.served, len(body.get("data") or []), self._tt_codec())
            state.served += len(more)
            data.extend(more)
            COMMAND_CURSOR.set(self, "killed", bool(state.event["result"].get("exhausted")))
            return len(data)
        result = state.event["result"]
        COMMAND_CURSOR.set(self, "killed", True)
        state.raised_past_end = True
        if result.get("error"):
            raise recorded_error(state.session, state.event)
        if result.get("exhausted"):
            return 0
        raise _past_end(state.session, state.event, len(_recorded_docs(state.event)))

    def next(self) -> Any:
        return _read_next(self, CommandCursor.next)

    __next__ = next

    def _next_batch(self, result: List[Any], total: Optional[int] = None) -> bool:
        return _read_batch(self, CommandCursor._next_batch, result, total)  # type: ignore[attr-defined]

    def try_next(self) -> Any:
        doc = super().try_next()
        if doc is not None:
            _capture(self, doc)
        return doc
