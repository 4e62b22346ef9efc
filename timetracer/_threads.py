"""The active session follows the work into threads and executor workers started while it is active.

A session lives in a ContextVar, and a new thread starts with an empty context: without help, the
PyMongo calls of a ``threading.Thread`` or ``ThreadPoolExecutor`` worker started inside a request
would not be recorded, and in replay would have no session to answer them. :func:`install` patches
two methods of the standard library, once:

- ``threading.Thread.start`` hands the session active in the starting thread to the new thread,
  which runs its ``run()`` with that session active. Threads PyMongo starts for itself (monitors,
  cursor cleanup) and the executor's own worker threads are left alone: they outlive the request.
- ``ThreadPoolExecutor.submit`` (and so ``map``) runs each submitted function with the session
  active at submission, whichever worker thread picks it up.

With no session active, both cost one ContextVar read and do nothing else. :func:`uninstall` puts
the original methods back.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Tuple

from timetracer import context

_lock = threading.Lock()
# (class, attribute, the function the class itself held before)
_installed: List[Tuple[type, str, Any]] = []

# Threads whose target lives in these modules are infrastructure, not the app's work: they serve
# many requests (executor workers, PyMongo's monitors) and must not keep one request's session.
_INFRASTRUCTURE = ("concurrent.futures.", "pymongo.", "motor.", "bson.")


def _is_infrastructure(thread: threading.Thread) -> bool:
    target = getattr(thread, "_target", None)
    module = getattr(target, "__module__", None) or ""
    return module.startswith(_INFRASTRUCTURE)


def _run_with(session: Any, thread: threading.Thread, run: Callable[[], Any]) -> Callable[[], Any]:
    def run_in_session() -> Any:
        try:
            with context.active(session):
                return run()
        finally:
            # The instance attribute refers back to the thread; drop it once the work is done.
            thread.__dict__.pop("run", None)

    return run_in_session


def _wrap_start(original: Callable[..., Any]) -> Callable[..., Any]:
    get_active = context._active.get

    @functools.wraps(original)
    def start(self: threading.Thread, *args: Any, **kwargs: Any) -> Any:
        session = get_active()
        if session is not None and not _is_infrastructure(self):
            self.run = _run_with(session, self, self.run)  # type: ignore[method-assign]
        return original(self, *args, **kwargs)

    return start


def _in_session(session: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with context.active(session):
            return fn(*args, **kwargs)

    return call


def _wrap_submit(original: Callable[..., Any]) -> Callable[..., Any]:
    get_active = context._active.get

    @functools.wraps(original)
    def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        session = get_active()
        if session is None:
            return original(self, fn, *args, **kwargs)
        return original(self, _in_session(session, fn), *args, **kwargs)

    return submit


_PATCHES: Tuple[Tuple[type, str, Callable[[Callable[..., Any]], Callable[..., Any]]], ...] = (
    (threading.Thread, "start", _wrap_start),
    (ThreadPoolExecutor, "submit", _wrap_submit),
)


def install() -> None:
    """Pass the active session on to new threads and executor jobs. Calling it again does nothing."""
    with _lock:
        if _installed:
            return
        for cls, name, make in _PATCHES:
            own = cls.__dict__[name]
            setattr(cls, name, make(own))
            _installed.append((cls, name, own))


def uninstall() -> None:
    """Put the standard library's methods back exactly. Calling it again does nothing."""
    with _lock:
        while _installed:
            cls, name, own = _installed.pop()
            setattr(cls, name, own)


def installed() -> bool:
    return bool(_installed)
