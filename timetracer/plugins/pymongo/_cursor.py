"""Cursors that record the documents an app reads, and replay them with no I/O.

``find()`` returns a :class:`TracedCursor` (a real ``pymongo.cursor.Cursor`` subclass) when a
session is active. Its query is identified when it is first fetched, so chained ``sort``/``skip``/
``limit`` calls count. ``aggregate()`` and the other command cursors use
:class:`TracedCommandCursor`. PyMongo's private cursor fields are reached through
:class:`_Fields`, which knows the 4.6-4.8 (name-mangled) and 4.9+ spellings.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NoReturn, Optional

from pymongo.command_cursor import CommandCursor
from pymongo.cursor import Cursor

from timetracer import context
from timetracer.errors import ReplayMismatchError
from timetracer.plugins.pymongo import _claims
from timetracer.plugins.pymongo import _normalize as norm
from timetracer.plugins.pymongo._errors import capture_error_safely
from timetracer.plugins.pymongo._failures import capture_failed
from timetracer.plugins.pymongo._guard import bad_value, guard, passes_through, recorded_error
from timetracer.plugins.pymongo._rebuild import decode_cached
from timetracer.plugins.pymongo._signature import signature_for
from timetracer.plugins.pymongo._values import (
    capture_batch,
    from_ejson,
    reply_codec,
    stored_documents,
    to_ejson,
)

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
        # field -> attribute name, made (and interned) once: a name built on every access is a
        # new string each time, hashed again and compared char by char in the instance's dict.
        self._names: Dict[str, str] = {}

    def name(self, field: str) -> str:
        """The attribute that holds ``field`` in this PyMongo version."""
        found = self._names.get(field)
        if found is None:
            found = self._names[field] = sys.intern(self.prefix + field)
        return found

    def get(self, obj: Any, field: str, default: Any = None) -> Any:
        name = self._names.get(field) or self.name(field)
        return getattr(obj, name, default)

    def set(self, obj: Any, field: str, value: Any) -> None:
        name = self._names.get(field) or self.name(field)
        setattr(obj, name, value)


CURSOR = _Fields(Cursor, "spec")
# Recorded documents are decoded for the app this many at a time, as it reads them.
REPLAY_BATCH = 100
COMMAND_CURSOR = _Fields(CommandCursor, "data")


# Stands in a replayed batch for a document the recording received but the app never read:
# the cursor holds as many documents as it did live (``alive`` depends on it), and reading one
# of these raises a mismatch instead of inventing a document. A recorded document not decoded
# yet stands there as its index in the stored data (an ``int``: documents never are), and is
# decoded, REPLAY_BATCH at a time, when the app reads it.
_UNREAD = object()
# ``_State.shown_id`` before the cursor has a recorded server cursor id to show.
_NO_ID = object()


class _State:
    """What one traced cursor has recorded or is replaying."""

    __slots__ = (
        "address",
        "batch",
        "batches",
        "docs",
        "event",
        "exhausted",
        "failed",
        "pending",
        "raised_past_end",
        "served",
        "server_done",
        "session",
        "shown_id",
    )

    def __init__(self, session: Session, event: Dict[str, Any]) -> None:
        self.session = session
        self.event = event
        self.docs: List[Any] = []  # what capture_batch returned, per document the server sent
        # The cursor's queue of the last captured batch: what is still in it was never read.
        self.pending: Any = None
        self.server_done = False
        self.exhausted = False
        self.failed: Optional[Dict[str, Any]] = None
        self.raised_past_end = False
        self.served = 0  # replay: how many recorded documents the cursor has handed out
        # Per server reply: how many documents it held, the cursor id after it and whether PyMongo
        # had killed the cursor then (record: what the app could observe; replay: what it gets).
        self.batches: List[Dict[str, Any]] = []
        self.address: Any = None
        self.batch = 0  # replay: the next recorded batch to hand out
        self.shown_id: Any = _NO_ID  # replay: the cursor id the app sees

    def note_batch(self, cursor: Any, fields: _Fields, size: int) -> None:
        """Remember one server reply's batch, as the app can observe it."""
        try:
            batch = {
                "size": size,
                "cursor_id": to_ejson(fields.get(cursor, "id")),
                "killed": bool(fields.get(cursor, "killed")),
            }
            if self.address is None:
                address = fields.get(cursor, "address")
                if address is not None:
                    self.address = [str(address[0]), int(address[1])]
        except Exception as exc:  # never break the app's read over our bookkeeping
            logger.warning("timetracer: a cursor batch could not be noted: %s", exc)
            return
        self.batches.append(batch)

    def capture(self, batch: Any, codec: Any) -> None:
        """Snapshot the batch the server just sent (``batch``: the cursor's queue), whole and
        before the app can read (and change) any of it. Nothing is done per document read: when
        the cassette is built, what is left in the queue tells how many the app read."""
        self.pending = batch
        if not batch:
            return
        try:
            self.docs.extend(capture_batch(batch, codec))
        except Exception as exc:  # never break the app's read over our snapshot
            capture_failed("the documents of a cursor batch", exc)
            self.docs.append(_Lost(exc))

    def _read_docs(self) -> List[Any]:
        """The snapshots of the documents the app read (the batches' unread tail dropped)."""
        unread = len(self.pending) if self.pending is not None else 0
        if unread == 0 and self.server_done:
            self.exhausted = True
        return self.docs[: len(self.docs) - unread] if unread else self.docs

    def finish(self) -> None:
        """Write the recorded documents into the event (runs when the cassette is built)."""
        result: Dict[str, Any] = {"status": 0, "body": {"captured": True, "data": []}}
        lost = next((doc.error for doc in self.docs if isinstance(doc, _Lost)), None)
        try:
            if lost is None:
                result["body"]["data"] = stored_documents(self._read_docs())
        except Exception as exc:  # never break the app's request over a value we cannot store
            capture_failed("the documents of a cursor", exc)
            lost = exc
        if lost is not None:
            result["body"] = {"captured": False, "data": None, "reason": f"{type(lost).__name__}: {lost}"}
        result["exhausted"] = self.exhausted
        if self.batches:
            result["cursor"] = {"address": self.address, "batches": self.batches}
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


def _serve_batch(cursor: Any, fields: _Fields, state: _State, codec: Any) -> Optional[int]:
    """Put the next recorded server batch into a replaying cursor, as PyMongo left it live.

    Returns the batch size, or None when the recording holds no batch structure (1.0 cassettes,
    or no more batches).
    """
    info = state.event["result"].get("cursor")
    if not isinstance(info, dict) or state.batch >= len(info.get("batches") or []):
        return None
    batch = info["batches"][state.batch]
    state.batch += 1
    size = int(batch.get("size", 0))
    body = state.event["result"].get("body") or {}
    start = state.served
    available = max(0, min(size, len(body.get("data") or []) - start))
    data = deque(decode_cached(body, start, start + min(available, REPLAY_BATCH), codec))
    built = len(data)
    data.extend(range(start + built, start + available))
    data.extend([_UNREAD] * (size - available))
    state.served += available
    fields.set(cursor, "data", data)
    _reads_built(cursor, built == size)
    fields.set(cursor, "id", 0)  # the real id stays 0: nothing may ever try to kill it on a server
    fields.set(cursor, "killed", bool(batch.get("killed")))
    state.shown_id = from_ejson(batch.get("cursor_id"))
    address = info.get("address")
    if address:
        fields.set(cursor, "address", (address[0], address[1]))
    return size


def _after_batches(cursor: Any, fields: _Fields, state: _State) -> int:
    """A replaying cursor asks for more after its last recorded batch: do what live did next."""
    result = state.event["result"]
    fields.set(cursor, "killed", True)
    if result.get("error"):
        raise recorded_error(state.session, state.event, reply_codec(cursor._tt_codec()))
    if state.shown_id == 0 or result.get("exhausted"):
        return 0  # the server had said there was no more
    raise _past_end(state.session, state.event, len(_recorded_docs(state.event)))


def _serve_next(cursor: Any, fields: _Fields, state: _State, codec: Any) -> Optional[int]:
    """:func:`_serve_batch`; past the last recorded batch of a cursor the server had not finished,
    first take over an identical recorded call that read further (another thread's, see
    :mod:`._claims`)."""
    size = _serve_batch(cursor, fields, state, codec)
    if size is None and state.shown_id != 0 and _claims.extend(state.session, state):
        size = _serve_batch(cursor, fields, state, codec)
    return size


def _refill(state: _State, count: int) -> List[Any]:
    """``count`` entries for the rest of a batch after a take-over: pending indexes of the new
    recording's documents, then placeholders for what it did not read either."""
    body = state.event["result"].get("body") or {}
    start = state.served
    available = max(0, min(count, len(body.get("data") or []) - start))
    state.served += available
    return [*range(start, start + available), *([_UNREAD] * (count - available))]


def _has_batches(event: Dict[str, Any]) -> bool:
    return isinstance(event["result"].get("cursor"), dict)


def _shown_id(cursor: Any, base: Any) -> Any:
    state = cursor._tt_state
    if state is not None and state.shown_id is not _NO_ID:
        return state.shown_id
    return base.fget(cursor)


# The cursor fields a find's arguments are read from, as attribute names (made once).
_FIND_VALUES = tuple(
    (CURSOR.name(field), name)
    for field, name in (
        ("spec", "filter"),
        ("projection", "projection"),
        ("ordering", "sort"),
        ("hint", "hint"),
        ("collation", "collation"),
        ("max", "max"),
        ("min", "min"),
        ("let", "let"),
        ("skip", "skip"),
        ("limit", "limit"),
    )
)
_FIND_FLAGS = tuple((CURSOR.name(field), field) for field in ("return_key", "show_record_id", "explain"))
_CODEC_OPTIONS = CURSOR.name("codec_options")


def _find_arguments(cursor: Cursor) -> Dict[str, Any]:
    """The final query of a find cursor, at its first fetch, in normal form."""
    args: Dict[str, Any] = {}
    for attribute, name in _FIND_VALUES:
        value = getattr(cursor, attribute, None)
        if value:
            args[name] = value
    for attribute, name in _FIND_FLAGS:
        if getattr(cursor, attribute, None):
            args[name] = True
    return norm.shape(args, getattr(cursor, _CODEC_OPTIONS, None))


# What the app reads from a traced cursor. Recording has nothing to do per document (each
# batch was captured whole when it arrived); replay decodes recorded documents as they are read.
# Plain functions, not a mixin class: a live cursor's class is swapped for a traced one, which
# Python allows only when the new class adds no base of its own.


def _next_method(base_next: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A traced cursor's ``next`` over the driver's ``base_next`` (made here, not a shared helper
    it calls: it runs once per document the app reads, so one Python call fewer per document)."""

    def next(self: Any) -> Any:
        try:
            doc = base_next(self)
        except StopIteration:
            if self._tt_state is not None:
                self._tt_state.exhausted = True
            raise
        # Only a replayed cursor's placeholders need work.
        return took(self, doc) if type(doc) is int or doc is _UNREAD else doc

    return next


def took(cursor: Any, doc: Any) -> Any:
    """The document the app gets for ``doc``, just taken from a traced cursor (sync or async):
    a pending recorded document decoded now, or a read past the recording refused."""
    if type(doc) is int:
        return _decode_pending(cursor, doc)
    if doc is _UNREAD:
        return _unread(cursor)
    return doc


def _decode_pending(cursor: Any, index: int) -> Any:
    """The recorded document ``index`` (just taken from the cursor), decoded with the next ones."""
    docs = _decode_recorded(cursor, index, index + REPLAY_BATCH)
    data = cursor._tt_fields.get(cursor, "data")
    for position, doc in enumerate(docs[1:]):
        if position >= len(data) or data[position] != index + 1 + position:
            break
        data[position] = doc
    return docs[0]


def _decode_recorded(cursor: Any, start: int, end: int) -> List[Any]:
    """Recorded documents ``start`` to ``end`` (at least the first) of a replaying cursor, decoded;
    a value that cannot be is a CassetteError naming the cassette, the event and the field."""
    state = cursor._tt_state
    body = state.event["result"].get("body") or {}
    docs: List[Any] = guard(
        state.session, state.event, "result.body.data", decode_cached, body, start, end, cursor._tt_codec()
    )
    if not docs:
        raise bad_value(ValueError("a recorded document is missing"), state.session, state.event, "result.body.data")
    return docs


def _decode_pending_run(cursor: Any, result: List[Any], start: int) -> None:
    """Decode, in place, the pending documents a batch read put into ``result`` from ``start``."""
    index = start
    while index < len(result):
        if type(result[index]) is not int:
            index += 1
            continue
        end = index
        while end < len(result) and type(result[end]) is int:
            end += 1
        docs = _decode_recorded(cursor, result[index], result[end - 1] + 1)
        if len(docs) != end - index:
            state = cursor._tt_state
            raise bad_value(
                ValueError(f"{end - index} documents expected, {len(docs)} found"),
                state.session,
                state.event,
                "result.body.data",
            )
        result[index:end] = docs
        index = end


def _take_over(cursor: Any, taken: int) -> Optional[List[Any]]:
    """The app reached a document its recording never read, ``taken`` of them taken from the
    cursor's batch: the entries that replace them and the rest of the batch, from an identical
    recorded call that read further (another thread's), or None if there is none."""
    state = cursor._tt_state
    if not _claims.extend(state.session, state):
        return None
    data = cursor._tt_fields.get(cursor, "data")
    fresh = _refill(state, taken + len(data))
    cursor._tt_fields.set(cursor, "data", deque(fresh[taken:]))
    _reads_built(cursor, False)
    return fresh[:taken]


def _unread(cursor: Any) -> Any:
    """The document to return instead of a placeholder just taken from the cursor, or raise."""
    fresh = _take_over(cursor, 1)
    if fresh is not None and fresh[0] is not _UNREAD:
        return _decode_pending(cursor, fresh[0])
    _read_past_end(cursor)


def _read_past_end(cursor: Any) -> NoReturn:
    state = cursor._tt_state
    cursor._tt_fields.set(cursor, "killed", True)
    cursor._tt_fields.set(cursor, "data", deque())
    raise _past_end(state.session, state.event, len(_recorded_docs(state.event)))


def _read_batch(cursor: Any, base_batch: Any, result: List[Any], total: Optional[int]) -> bool:
    before = len(result)
    more: bool = base_batch(cursor, result, total)
    return took_batch(cursor, result, before, more)


def took_batch(cursor: Any, result: List[Any], before: int, more: bool) -> bool:
    """:func:`took` for the documents a batch read (``to_list``) put into ``result`` from ``before``."""
    state = cursor._tt_state
    if state is not None and state.session.replaying:
        index = before
        while index < len(result):
            if result[index] is _UNREAD:
                fresh = _take_over(cursor, len(result) - index)
                if fresh is None or fresh[0] is _UNREAD:
                    del result[index:]
                    _decode_pending_run(cursor, result, before)
                    _read_past_end(cursor)
                result[index:] = fresh
            index += 1
        _decode_pending_run(cursor, result, before)
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
        state = self._tt_open(session)
        if state is None:  # not recorded: from now on an ordinary cursor, untouched
            self.__class__ = Cursor
            return Cursor._refresh(self)  # type: ignore[attr-defined,no-any-return]
        fetches = CURSOR.get(self, "id") != 0  # else PyMongo only marks the cursor dead
        try:
            count = super()._refresh()
        except Exception as exc:
            state.failed = capture_error_safely(exc, self._tt_codec())
            raise
        return self._tt_refreshed(state, count, fetches)

    # The two halves of a recorded fetch around the driver's own ``_refresh`` (shared with the
    # async cursor, which awaits it in between).

    def _tt_open(self, session: Session) -> Optional[_State]:
        """The cursor's recording, its event started at the first fetch; None if it cannot be."""
        state = self._tt_state
        if state is None:
            try:
                args = _find_arguments(self)
                method = "EXPLAIN" if CURSOR.get(self, "explain") else "FIND"
                signature = signature_for(method, self.collection.full_name, args, hashed=False)
                state = self._tt_state = _State(session, session.start_event(signature, args))
                session.on_finish(state.finish)
            except Exception as exc:
                capture_failed("the arguments of find", exc)
                return None
        return state

    def _tt_refreshed(self, state: _State, count: int, fetches: bool) -> int:
        if fetches:
            state.note_batch(self, CURSOR, count)
        state.server_done = bool(CURSOR.get(self, "killed")) or not CURSOR.get(self, "id")
        state.capture(CURSOR.get(self, "data") if fetches else (), self._tt_codec())
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
            if _has_batches(event):
                size = _serve_next(self, CURSOR, state, self._tt_codec())
                return _after_batches(self, CURSOR, state) if size is None else self._tt_count(size)
            if result.get("error") and not _recorded_docs(event):
                CURSOR.set(self, "killed", True)
                raise recorded_error(session, event, reply_codec(self._tt_codec()))
            return self._tt_serve(state)
        if _has_batches(state.event):
            size = _serve_next(self, CURSOR, state, self._tt_codec())
            return _after_batches(self, CURSOR, state) if size is None else self._tt_count(size)
        if state.served < len(_recorded_docs(state.event)) or _claims.extend(session, state):
            return self._tt_serve(state)
        result = state.event["result"]
        CURSOR.set(self, "killed", True)
        if result.get("error"):
            raise recorded_error(session, state.event, reply_codec(self._tt_codec()))
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
        _reads_built(self, True)
        CURSOR.set(self, "retrieved", state.served)
        CURSOR.set(self, "id", 0)
        last = state.served >= total
        CURSOR.set(self, "killed", last and bool(result.get("exhausted")) and not result.get("error"))
        return len(docs)

    def _tt_count(self, size: int) -> int:
        CURSOR.set(self, "retrieved", (CURSOR.get(self, "retrieved") or 0) + size)
        return size

    @property
    def cursor_id(self) -> Any:
        return _shown_id(self, Cursor.cursor_id)

    next = _next_method(Cursor.next)
    __next__ = next

    def _next_batch(self, result: List[Any], total: Optional[int] = None) -> bool:
        return _read_batch(self, Cursor._next_batch, result, total)  # type: ignore[attr-defined]

    def rewind(self) -> TracedCursor:
        super().rewind()
        self._tt_state = None
        return self


class _BuiltCursor(TracedCursor):
    """A replaying :class:`TracedCursor` whose queue holds built documents only (no placeholder):
    the app's reads take them exactly as PyMongo's own ``next`` does, with no traced ``next`` in
    between (one Python call fewer per document). A cursor switches between the two classes as
    its queue is filled (:func:`_reads_built`); replay has nothing to note when it is exhausted."""

    next = Cursor.next
    __next__ = Cursor.next


def _reads_built(cursor: Any, built: bool) -> None:
    """Give a replaying sync find cursor whose queue was just filled the class that reads it:
    :class:`_BuiltCursor` when ``built`` (no placeholder in it), else :class:`TracedCursor`."""
    kind = type(cursor)
    if kind is TracedCursor or kind is _BuiltCursor:
        cursor.__class__ = _BuiltCursor if built else TracedCursor


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
        if _has_batches(event):
            cursor = cls(collection, {"id": 0, "firstBatch": [], "ns": collection.full_name}, None)
            state = cursor._tt_state = _State(session, event)
            _serve_batch(cursor, COMMAND_CURSOR, state, collection.codec_options)
            _claims.hold(session, state, served=state.served)
            return cursor
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
        data = COMMAND_CURSOR.get(cursor, "data")
        state.note_batch(cursor, COMMAND_CURSOR, len(data))
        state.server_done = not COMMAND_CURSOR.get(cursor, "id")
        state.capture(data, cursor._tt_codec())  # type: ignore[attr-defined]
        return cursor

    @property
    def cursor_id(self) -> Any:
        return _shown_id(self, CommandCursor.cursor_id)

    def _refresh(self) -> int:
        state = self._tt_state
        if state is None or state.session.recording:
            fetches = self._tt_fetches()
            try:
                count = super()._refresh()
            except Exception as exc:
                if state is not None:
                    state.failed = capture_error_safely(exc, self._tt_codec())
                raise
            return self._tt_refreshed(count, fetches)
        return self._tt_replay_refresh(state)

    # Shared with the async command cursor (which awaits the driver's ``_refresh`` itself).

    def _tt_fetches(self) -> bool:
        """Whether the next driver ``_refresh`` asks the server for a batch."""
        fields = COMMAND_CURSOR
        return not (len(fields.get(self, "data")) or fields.get(self, "killed")) and bool(fields.get(self, "id"))

    def _tt_refreshed(self, count: int, fetches: bool) -> int:
        state = self._tt_state
        if state is not None:
            if fetches:
                state.note_batch(self, COMMAND_CURSOR, count)
            state.server_done = not COMMAND_CURSOR.get(self, "id")
            state.capture(COMMAND_CURSOR.get(self, "data") if fetches else (), self._tt_codec())
        return count

    def _tt_replay_refresh(self, state: _State) -> int:
        data = COMMAND_CURSOR.get(self, "data")
        if len(data) or state.raised_past_end:
            return len(data)
        if _has_batches(state.event):
            if COMMAND_CURSOR.get(self, "killed"):
                return 0
            size = _serve_next(self, COMMAND_CURSOR, state, self._tt_codec())
            if size is not None:
                return size
            state.raised_past_end = True
            return _after_batches(self, COMMAND_CURSOR, state)
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
            raise recorded_error(state.session, state.event, reply_codec(self._tt_codec()))
        if result.get("exhausted"):
            return 0
        raise _past_end(state.session, state.event, len(_recorded_docs(state.event)))

    next = _next_method(CommandCursor.next)
    __next__ = next

    def _next_batch(self, result: List[Any], total: Optional[int] = None) -> bool:
        return _read_batch(self, CommandCursor._next_batch, result, total)  # type: ignore[attr-defined]

    def try_next(self) -> Any:
        doc = super().try_next()
        if type(doc) is int:
            doc = _decode_pending(self, doc)
        elif doc is _UNREAD:
            doc = _unread(self)
        return doc
