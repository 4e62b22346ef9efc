"""The active session: the one ContextVar timetracer keeps, and the only code that sets it.

A WSGI middleware, a script-mode session or a test fixture activates a session around the work it
owns; the PyMongo wrappers read it with :func:`current`. Threads and asyncio tasks each see the
session of the context they run in; :mod:`timetracer._threads` passes the active session on to
threads and executor workers started while it is active.

The module also counts the replaying sessions active anywhere in the process, so a PyMongo call
made with no session while the process replays is refused instead of reaching a server.
"""

from __future__ import annotations

import contextlib
import threading
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional

if TYPE_CHECKING:
    from timetracer.session import Session

# Holds the Session of the request, script or test that the running code belongs to; None outside.
_active: ContextVar[Optional[Session]] = ContextVar("timetracer.session", default=None)

# Script mode (calls outside any request) installs a resolver here; None means "no fallback".
_fallback: Optional[Callable[[], Optional[Session]]] = None


def current() -> Optional[Session]:
    """Return the session of the running code, or ``None`` when nothing is recorded or replayed."""
    session = _active.get()
    if session is None and _fallback is not None:
        return _fallback()
    return session


def active_session() -> Optional[Session]:
    """The session activated around the running code; unlike :func:`current`, never starts script mode."""
    return _active.get()


# How many activations of replaying sessions are in force right now, in any thread.
_replaying_active = 0
_count_lock = threading.Lock()


def _count_replaying(session: Optional[Session], step: int) -> None:
    global _replaying_active
    if session is not None and session.replaying:
        with _count_lock:
            _replaying_active += step


def activate(session: Optional[Session]) -> Token:
    """Make ``session`` the active one; pass the returned token to :func:`deactivate`."""
    _count_replaying(session, 1)
    return _active.set(session)


def deactivate(token: Token) -> None:
    """Restore the session that was active before the matching :func:`activate`."""
    leaving = _active.get()
    _active.reset(token)
    _count_replaying(leaving, -1)


@contextlib.contextmanager
def active(session: Optional[Session]) -> Iterator[Optional[Session]]:
    """Run a block with ``session`` active (``None`` runs it with no session)."""
    token = activate(session)
    try:
        yield session
    finally:
        deactivate(token)


def replaying_now() -> bool:
    """Whether this process replays at this moment: a replay middleware exists, or a replaying
    session is active in some thread. A PyMongo call with no session is then refused."""
    return replay_configured or _replaying_active > 0


def set_fallback(resolver: Optional[Callable[[], Optional[Session]]]) -> None:
    """Install (or remove, with ``None``) the resolver used when no session is active."""
    global _fallback
    _fallback = resolver


# True once a web middleware exists in this process: script mode then leaves calls made outside
# requests alone (they belong to no request).
middleware_installed = False


# True once a middleware configured for replay exists: clients created from then on start no
# background monitoring (nothing may reach a server in replay).
replay_configured = False


def mark_replay_configured() -> None:
    """Called by a web middleware created in replay mode."""
    global replay_configured
    replay_configured = True
    replay_started()


# Callbacks run once, when the process first replays (plugins install their replay-only guards).
_replay_callbacks: List[Callable[[], None]] = []
_replay_seen = False


def on_replay(callback: Callable[[], None]) -> None:
    """Run ``callback`` when replay first starts in this process (at once if it already has)."""
    if _replay_seen:
        callback()
    elif callback not in _replay_callbacks:
        _replay_callbacks.append(callback)


def replay_started() -> None:
    """Called when a replaying session is created (cheap after the first time)."""
    global _replay_seen
    if _replay_seen:
        return
    _replay_seen = True
    for callback in list(_replay_callbacks):
        callback()


def mark_middleware_installed() -> None:
    """Called by every web middleware when it is created."""
    global middleware_installed
    middleware_installed = True
