"""PyMongo's own async API (``AsyncMongoClient``, PyMongo 4.9+): awaited shells over the sync core.

What to store and how to rebuild it (arguments, values, write results, errors, matching, the event
format) lives in :mod:`._ops` and :mod:`._cursor` and knows nothing of ``await``. This module adds
only what differs: :func:`arun` awaits the driver between :func:`._ops.start` and the
recording's ``succeeded``/``failed``, and the traced async cursors await the driver's
``_refresh``/``next``/``_next_batch`` around the sync cursors' bookkeeping. A call recorded here is
the same event a ``MongoClient`` call records, so cassettes replay through either client.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from timetracer import context
from timetracer.plugins.pymongo import _ops
from timetracer.plugins.pymongo._cursor import (
    COMMAND_CURSOR,
    CURSOR,
    TracedCommandCursor,
    TracedCursor,
    _Fields,
    _shown_id,
    took,
    took_batch,
)
from timetracer.plugins.pymongo._errors import capture_error_safely

try:  # PyMongo 4.9+
    from pymongo.asynchronous.collection import AsyncCollection
    from pymongo.asynchronous.command_cursor import AsyncCommandCursor
    from pymongo.asynchronous.cursor import AsyncCursor
    from pymongo.asynchronous.database import AsyncDatabase
    from pymongo.asynchronous.mongo_client import AsyncMongoClient
    from pymongo.asynchronous.topology import Topology as AsyncTopology

    AVAILABLE = True
except ImportError:  # PyMongo 4.6-4.8: no async API to cover
    AVAILABLE = False

if TYPE_CHECKING:
    from timetracer.session import Session

Installer = Callable[[type, str, Callable[[Callable[..., Any]], Callable[..., Any]]], None]


async def arun(
    op: _ops.Op,
    session: Session,
    original: Callable[..., Any],
    target: Any,
    args: Tuple[Any, ...],
    kwargs: Dict[str, Any],
) -> Any:
    """Record or replay one awaited call of ``op``: the twin of :func:`._ops.run`."""
    recording, value = _ops.start(op, session, target, args, kwargs, TracedAsyncCommandCursor)
    if recording is None:
        if type(value) is _ops.Pass:
            return await original(target, *value.args, **value.kwargs)
        return value
    token = _ops._inside.set(True)
    try:
        result = await original(target, *recording.call.args, **recording.call.kwargs)
    except Exception as exc:
        _ops._inside.reset(token)
        recording.failed(exc)
        raise
    except BaseException:
        _ops._inside.reset(token)
        raise
    _ops._inside.reset(token)
    return recording.succeeded(result)


def _wrap(op: _ops.Op, original: Callable[..., Any]) -> Callable[..., Any]:
    get_active = context._active.get
    inside = _ops._inside.get

    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        session = get_active()
        if session is None:
            if context._fallback is None:
                return await original(self, *args, **kwargs)
            session = context.current()
            if session is None:
                return await original(self, *args, **kwargs)
        if inside():
            return await original(self, *args, **kwargs)
        return await arun(op, session, original, self, args, kwargs)

    return wrapper


if AVAILABLE:
    _ASYNC_CURSOR = _Fields(AsyncCursor, "spec")
    _ASYNC_COMMAND_CURSOR = _Fields(AsyncCommandCursor, "data")
    # The sync cursors' bookkeeping below is shared as is: both spell their fields alike (4.9+).
    assert _ASYNC_CURSOR.prefix == CURSOR.prefix and _ASYNC_COMMAND_CURSOR.prefix == COMMAND_CURSOR.prefix

    # What the app reads from a traced async cursor (functions, not a mixin: see ``_cursor``).

    async def _read_next(cursor: Any, base_next: Any) -> Any:
        try:
            doc = await base_next(cursor)
        except StopAsyncIteration:
            if cursor._tt_state is not None:
                cursor._tt_state.exhausted = True
            raise
        return took(cursor, doc)

    async def _read_batch(cursor: Any, base_batch: Any, result: List[Any], total: Optional[int]) -> bool:
        before = len(result)
        more: bool = await base_batch(cursor, result, total)
        return took_batch(cursor, result, before, more)

    class TracedAsyncCursor(AsyncCursor):  # type: ignore[misc]
        """An ``AsyncCursor`` from ``find()`` that records what the app reads, or replays it."""

        _tt_session: Optional[Session] = None
        _tt_state: Any = None
        _tt_fields = _ASYNC_CURSOR
        # Bookkeeping written once, in the sync cursor: no I/O, no await.
        _tt_codec = TracedCursor._tt_codec
        _tt_bind = TracedCursor._tt_bind
        _tt_open = TracedCursor._tt_open
        _tt_refreshed = TracedCursor._tt_refreshed
        _tt_replay = TracedCursor._tt_replay
        _tt_replay_recorded = TracedCursor._tt_replay_recorded
        _tt_serve = TracedCursor._tt_serve
        _tt_count = TracedCursor._tt_count

        @property
        def cursor_id(self) -> Any:
            return _shown_id(self, AsyncCursor.cursor_id)

        async def _refresh(self) -> int:
            session = self._tt_bind()
            if session is None:
                return await super()._refresh()
            data = CURSOR.get(self, "data")
            if len(data) or CURSOR.get(self, "killed"):
                return len(data)
            if session.replaying:
                return self._tt_replay(session)
            state = self._tt_open(session)
            if state is None:  # not recorded: from now on an ordinary cursor, untouched
                self.__class__ = AsyncCursor
                return await AsyncCursor._refresh(self)  # type: ignore[no-any-return]
            fetches = CURSOR.get(self, "id") != 0  # else PyMongo only marks the cursor dead
            try:
                count = await super()._refresh()
            except Exception as exc:
                state.failed = capture_error_safely(exc, self._tt_codec())
                raise
            return self._tt_refreshed(state, count, fetches)

        async def next(self) -> Any:
            return await _read_next(self, AsyncCursor.next)

        async def _next_batch(self, result: List[Any], total: Optional[int] = None) -> bool:
            return await _read_batch(self, AsyncCursor._next_batch, result, total)

        async def rewind(self) -> TracedAsyncCursor:
            await super().rewind()
            self._tt_state = None
            return self

    class TracedAsyncCommandCursor(AsyncCommandCursor):  # type: ignore[misc]
        """An ``AsyncCommandCursor`` (aggregate) that records or replays its documents."""

        _tt_state: Any = None
        _tt_fields = _ASYNC_COMMAND_CURSOR
        _tt_codec = TracedCommandCursor._tt_codec
        _tt_fetches = TracedCommandCursor._tt_fetches
        _tt_refreshed = TracedCommandCursor._tt_refreshed
        _tt_replay_refresh = TracedCommandCursor._tt_replay_refresh

        @property
        def cursor_id(self) -> Any:
            return _shown_id(self, AsyncCommandCursor.cursor_id)

        replayed = classmethod(TracedCommandCursor.replayed.__func__)  # type: ignore[attr-defined]
        recording = classmethod(TracedCommandCursor.recording.__func__)  # type: ignore[attr-defined]

        async def _refresh(self) -> int:
            state = self._tt_state
            if state is None or state.session.recording:
                fetches = self._tt_fetches()
                try:
                    count = await super()._refresh()
                except Exception as exc:
                    if state is not None:
                        state.failed = capture_error_safely(exc, self._tt_codec())
                    raise
                return self._tt_refreshed(count, fetches)
            return self._tt_replay_refresh(state)

        async def next(self) -> Any:
            return await _read_next(self, AsyncCommandCursor.next)

        async def _next_batch(self, result: List[Any], total: Optional[int] = None) -> bool:
            return await _read_batch(self, AsyncCommandCursor._next_batch, result, total)

        async def try_next(self) -> Any:
            doc = await super().try_next()
            return None if doc is None else took(self, doc)

else:  # pragma: no cover - PyMongo < 4.9
    TracedAsyncCursor = TracedAsyncCommandCursor = None  # type: ignore[assignment,misc]


def install(install: Installer) -> None:
    """Install the async wrappers with the sync plugin's installer (so ``disable()`` restores
    them too). Does nothing where PyMongo has no async API."""
    if not AVAILABLE:
        return
    from timetracer.plugins.pymongo import _patch

    twins = {
        _patch.Collection: AsyncCollection,
        _patch.Database: AsyncDatabase,
        _patch.MongoClient: AsyncMongoClient,
    }
    for cls, name, op in _patch._ops_table(AsyncCollection, AsyncDatabase, AsyncCursor):
        install(cls, name, lambda original, op=op: _wrap(op, original))
    install(
        AsyncCollection, "find", lambda original: _patch._wrap_find(original, AsyncCursor, TracedAsyncCursor)
    )
    for owner, names in _patch._UNSUPPORTED.items():
        twin = twins[owner]
        for name in names:
            install(twin, name, lambda original, o=twin, n=name: _patch._wrap_unsupported(o, n, original))
    install(AsyncMongoClient, "__init__", _patch._wrap_client_init)


def install_guards(install: Installer) -> None:
    """Replay-only guards: an ``AsyncMongoClient`` never opens its topology during replay."""
    if not AVAILABLE:
        return
    from timetracer.plugins.pymongo import _patch

    install(AsyncMongoClient, "_get_topology", _patch._wrap_topology)
    install(AsyncTopology, "_ensure_opened", _patch._wrap_topology)
