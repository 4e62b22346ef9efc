"""Installing and removing the PyMongo wrappers (once, under a lock)."""

from __future__ import annotations

import functools
import os
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from pymongo import results as pm_results
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.database import Database
from pymongo.mongo_client import MongoClient

try:  # PyMongo 4.9+
    from pymongo.synchronous.topology import Topology
except ImportError:  # PyMongo 4.6-4.8
    from pymongo.topology import Topology  # type: ignore[no-redef]

from timetracer import _threads, context, script
from timetracer.config import ENV_MODE
from timetracer.errors import ReplayUnsupportedError
from timetracer.plugins.pymongo import _ops
from timetracer.plugins.pymongo._cursor import TracedCursor
from timetracer.plugins.pymongo._errors import warn_unreachable
from timetracer.plugins.pymongo._normalize import Binder
from timetracer.session import add_cassette_check

_lock = threading.Lock()
# (class, attribute, what the class itself held before: the function, or _MISSING if inherited)
_installed: List[Tuple[type, str, Any]] = []
_MISSING = object()

# Methods that reach the server but are not replayed: in replay they raise ReplayUnsupportedError.
_UNSUPPORTED: Dict[type, Tuple[str, ...]] = {
    Collection: (
        "find_raw_batches",
        "aggregate_raw_batches",
        "watch",
        "drop",
        "rename",
        "options",
        "create_index",
        "create_indexes",
        "drop_index",
        "drop_indexes",
        "list_indexes",
        "index_information",
        "create_search_index",
        "create_search_indexes",
        "drop_search_index",
        "list_search_indexes",
        "update_search_index",
    ),
    Database: (
        "aggregate",
        "cursor_command",
        "create_collection",
        "drop_collection",
        "list_collections",
        "validate_collection",
        "dereference",
        "watch",
    ),
    MongoClient: (
        "list_databases",
        "list_database_names",
        "drop_database",
        "server_info",
        "watch",
        "bulk_write",
    ),
}


def _ops_table(
    Collection: type = Collection, Database: type = Database, Cursor: type = Cursor
) -> List[Tuple[type, str, _ops.Op]]:
    """The covered methods; the async plugin passes PyMongo's async classes (same signatures)."""
    cursor_binder = Binder(Cursor.__init__, skip=2)

    def b(cls: type, name: str) -> Binder:
        return Binder(getattr(cls, name))

    table: List[Tuple[type, str, _ops.Op]] = [
        (Collection, "find_one", _ops.FindOneOp("find_one", cursor_binder)),
        (Collection, "count_documents", _ops.CountOp("count_documents", b(Collection, "count_documents"))),
        (
            Collection,
            "estimated_document_count",
            _ops.CountOp("estimated_document_count", b(Collection, "estimated_document_count")),
        ),
        (Collection, "distinct", _ops.Op("distinct", b(Collection, "distinct"))),
        (Collection, "aggregate", _ops.AggregateOp("aggregate", b(Collection, "aggregate"))),
        (Collection, "insert_one", _ops.InsertOneOp("insert_one", b(Collection, "insert_one"))),
        (Collection, "insert_many", _ops.InsertManyOp("insert_many", b(Collection, "insert_many"))),
        (Collection, "bulk_write", _ops.BulkWriteOp("bulk_write", b(Collection, "bulk_write"))),
        (Database, "command", _ops.CommandOp("command", b(Database, "command"))),
        (
            Database,
            "list_collection_names",
            _ops.NamesOp("list_collection_names", b(Database, "list_collection_names")),
        ),
    ]
    for name in ("update_one", "update_many", "replace_one"):
        table.append((Collection, name, _ops.RawResultOp(name, b(Collection, name), pm_results.UpdateResult)))
    for name in ("delete_one", "delete_many"):
        table.append((Collection, name, _ops.RawResultOp(name, b(Collection, name), pm_results.DeleteResult)))
    for name in ("find_one_and_update", "find_one_and_replace", "find_one_and_delete"):
        table.append((Collection, name, _ops.DocumentOp(name, b(Collection, name))))
    return table


# The first lines of every wrapper are what each PyMongo call pays in production: one ContextVar
# read and, with no session, one module attribute read (is script mode still undecided?).
_get_active = context._active.get

# A wrapper names the method's first argument (``filter``, ``document``, ``command``...) as ``_tt_first``
# and passes it on positionally: in the usual call, ``coll.find_one({...})``, nothing is packed
# into a tuple and unpacked again, which is most of what a wrapper with only ``*args, **kwargs``
# costs. A first argument passed by keyword stays in ``kwargs``; ``_NO_ARG`` means none was given.
_NO_ARG: Any = object()


def _entry(
    original: Callable[..., Any], with_session: Callable[[Any, Any, Tuple[Any, ...], Dict[str, Any]], Any]
) -> Callable[..., Any]:
    """The wrapper installed over ``original``: with no session, ``original`` itself; with one,
    ``with_session(session, self, args, kwargs)``."""
    get_active = _get_active
    none = _NO_ARG

    @functools.wraps(original)
    def wrapper(self: Any, _tt_first: Any = none, *args: Any, **kwargs: Any) -> Any:
        session = get_active()
        if session is None and context._fallback is None:
            if _tt_first is none:
                return original(self, *args, **kwargs)
            if args or kwargs:
                return original(self, _tt_first, *args, **kwargs)
            return original(self, _tt_first)
        if _tt_first is not none:
            args = (_tt_first, *args)
        if session is None:
            session = context.current()
            if session is None:
                return original(self, *args, **kwargs)
        return with_session(session, self, args, kwargs)

    return wrapper


def _wrap(op: _ops.Op, original: Callable[..., Any]) -> Callable[..., Any]:
    """A recorded (or replayed) operation."""
    inside = _ops._inside.get
    run = _ops.run

    def with_session(session: Any, self: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        if inside():  # called by a recorded call (find_one calls find): not an operation of its own
            return original(self, *args, **kwargs)
        return run(op, session, original, self, args, kwargs)

    return _entry(original, with_session)


def _wrap_find(
    original: Callable[..., Any], plain: type = Cursor, traced: type = TracedCursor
) -> Callable[..., Any]:
    """``find``: a ``plain`` cursor built while a session is active becomes a ``traced`` one."""
    inside = _ops._inside.get

    def with_session(session: Any, self: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        cursor = original(self, *args, **kwargs)  # builds the cursor; no I/O until first fetch
        if not inside() and type(cursor) is plain:
            cursor.__class__ = traced
            cursor._tt_session = session
        return cursor

    return _entry(original, with_session)


def _unanswered(session: Any, message: str) -> ReplayUnsupportedError:
    """The error for a call replay cannot answer, counted (the verdict is ``mismatch`` even if the
    app catches it) and logged at WARNING by the session's replayer."""
    replayer = getattr(session, "replayer", None)
    if replayer is None:
        return ReplayUnsupportedError(message)
    return replayer.miss(message, ReplayUnsupportedError)


def _wrap_unsupported(owner: type, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    current = context.current

    @functools.wraps(original)
    def unsupported(self: Any, *args: Any, **kwargs: Any) -> Any:
        session = current()
        if session is None or not session.replaying:
            return original(self, *args, **kwargs)
        raise _unanswered(
            session,
            f"{owner.__name__}.{name}() is not replayed by timetracer, and replay never reaches the "
            f"database (cassette: {session.cassette_path}); record and replay only the supported "
            "calls in this request, or run it with TIMETRACER_MODE=off",
        )

    return unsupported


def _replay_wanted() -> bool:
    # Creating a client is no call: it must not decide script mode (a Django view module creates its
    # client while runserver checks the URLconf, before the middleware exists).
    session = context.active_session()
    if session is not None:
        return bool(session.replaying)
    if context.replay_configured:
        return True
    if os.environ.get(ENV_MODE, "").strip().lower() == "replay":
        context.replay_started()
        return True
    return False


def _replaying_session() -> Any:
    """The replaying session of the running code, without deciding script mode (monitor threads
    and client construction must not decide it)."""
    session = _get_active() or script._session
    return session if session is not None and session.replaying else None


# Set while a client is being constructed in replay: its constructor must not open the topology
# (start monitors that connect), and it keeps its own ``connect`` option so repr() is as live.
_constructing = threading.local()


def _wrap_client_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        # In replay nothing may reach a server: don't start background monitoring either. The
        # constructor's own "connect" step is skipped by the topology guard instead of passing
        # connect=False, so the client's options and repr() are the ones it has live.
        if not _replay_wanted():
            original(self, *args, **kwargs)
            return
        outer = getattr(_constructing, "active", False)
        _constructing.active = True
        try:
            original(self, *args, **kwargs)
        finally:
            _constructing.active = outer

    return __init__


def _wrap_topology(original: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse, in replay, anything that would open the client's topology (connect to a server).

    Installed on ``MongoClient._get_topology`` and, because PyMongo 4.6-4.8 reach the topology
    directly in places (``client.is_primary``, ``start_session()``), on
    ``Topology._ensure_opened``, which every version calls before its monitors connect.
    """

    @functools.wraps(original)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_constructing, "active", False):
            return None  # a replaying client's constructor connecting (connect=True): not now
        refusal = _refusal()
        if refusal is not None:
            session = _replaying_session()
            if session is not None:
                raise _unanswered(session, refusal)
            raise ReplayUnsupportedError(refusal)
        return original(self, *args, **kwargs)

    return guarded


def _refusal() -> Optional[str]:
    """Why a server contact must not happen now, or ``None`` when it may."""
    session = _get_active() or script._session
    if session is not None:
        if not session.replaying:
            return None  # recording (or a live call of a recording script): the server is wanted
        return (
            "a PyMongo call that timetracer does not replay tried to reach the server during "
            f"replay (cassette: {session.cassette_path}); see the supported operations in the README"
        )
    if not context.replaying_now():
        return None
    return (
        f"a PyMongo call was made with no timetracer session (thread {threading.current_thread().name!r}) "
        "while this process replays, and replay never reaches the database. timetracer passes the "
        "session on to threading.Thread and ThreadPoolExecutor work started inside a request; run "
        "this call inside the request (or timetracer.replay() block) that should answer it, or run "
        "the process with TIMETRACER_MODE=off"
    )


def _wrap_server_session(original: Callable[..., Any]) -> Callable[..., Any]:
    """In replay, let ``start_session()`` work with no server (PyMongo 4.6-4.8 only).

    Those versions check out a server session at once, which selects a server; PyMongo 4.9+
    hands out a lazy placeholder instead, and so does replay here.
    """

    @functools.wraps(original)
    def _get_server_session(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _replaying_session() is not None:
            from pymongo.client_session import _EmptyServerSession

            return _EmptyServerSession()
        return original(self, *args, **kwargs)

    return _get_server_session


def _install(cls: type, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    own = cls.__dict__.get(name, _MISSING)
    original = getattr(cls, name, None)
    if original is None:
        return
    setattr(cls, name, make(original))
    _installed.append((cls, name, own))


def enable() -> None:
    """Install the wrappers. Calling it again does nothing."""
    with _lock:
        if _installed:
            return
        for cls, name, op in _ops_table():
            _install(cls, name, lambda original, op=op: _wrap(op, original))
        _install(Collection, "find", _wrap_find)
        for owner, names in _UNSUPPORTED.items():
            for name in names:
                _install(owner, name, lambda original, o=owner, n=name: _wrap_unsupported(o, n, original))
        _install(MongoClient, "__init__", _wrap_client_init)
        # PyMongo's async API (AsyncMongoClient, 4.9+): the same operations, awaited.
        from timetracer.plugins.pymongo import _async

        _async.install(_install)
    _threads.install()
    add_cassette_check(warn_unreachable)
    # The guards below sit on PyMongo's own hot path (every operation selects a server), so a
    # process pays for them only once replay is used in it.
    context.on_replay(_install_replay_guards)


def _install_replay_guards() -> None:
    """Refuse any server contact during replay; installed when a replay first starts."""
    with _lock:
        if not _installed or any(name == "_get_topology" for _, name, _ in _installed):
            return
        _install(MongoClient, "_get_topology", _wrap_topology)
        _install(Topology, "_ensure_opened", _wrap_topology)
        _install(MongoClient, "_get_server_session", _wrap_server_session)  # PyMongo < 4.9 only
        from timetracer.plugins.pymongo import _async

        _async.install_guards(_install)


def disable() -> None:
    """Put PyMongo's original methods back exactly. Calling it again does nothing."""
    with _lock:
        while _installed:
            cls, name, own = _installed.pop()
            if own is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, own)
    _threads.uninstall()


def is_enabled() -> bool:
    return bool(_installed)
