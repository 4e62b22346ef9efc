"""Installing and removing the Motor wrappers (once, under the PyMongo plugin's lock).

Motor runs PyMongo's synchronous objects on a thread pool. Each Motor method is built when Motor
is imported, around the PyMongo function found then, so patching PyMongo afterwards does not
reach it; and Motor's cursors drive ``Cursor._refresh`` and read the cursor's buffer themselves.
So the wrappers sit on Motor's own classes, as thin shells over the PyMongo plugin's core:

- covered methods (``find_one``, writes, ``command``…, and the call behind ``aggregate``) run the
  PyMongo plugin's sync wrapper of the original PyMongo function on Motor's executor, exactly as
  Motor runs PyMongo: one recorded event per call, in the PyMongo plugin's format;
- cursors fetch through the delegate's own (traced) ``_refresh``, and documents Motor takes from
  the buffer itself (``to_list``) are captured as the app receives them.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Tuple

from timetracer import context
from timetracer.plugins.pymongo import _ops
from timetracer.plugins.pymongo import _patch as pymongo_patch
from timetracer.plugins.pymongo._cursor import TracedCommandCursor, TracedCursor, took

# (class, attribute, what the class itself held before: the function, or _MISSING if inherited)
_installed: List[Tuple[type, str, Any]] = []
_MISSING = object()
_TRACED = (TracedCursor, TracedCommandCursor)


def _pymongo_function(function: Callable[..., Any]) -> Callable[..., Any]:
    """The PyMongo function behind ``function``: Motor's method wraps what it found at import,
    which is the PyMongo plugin's wrapper when Motor was imported after ``enable_pymongo()``."""
    inner = getattr(function, "__wrapped__", function)  # Motor's asynchronize uses functools.wraps
    if getattr(getattr(inner, "__code__", None), "co_filename", "") == pymongo_patch.__file__:
        inner = inner.__wrapped__
    return inner


def _unwrap_session(value: Any) -> Any:
    return value.delegate if type(value).__name__.endswith("MotorClientSession") else value


def _run(motor_object: Any, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Motor's way of calling PyMongo: on its executor, in a copy of this context. In replay there
    is no I/O to wait for, so the answer is computed here and handed back as a done future (no
    thread hop, no executor thread)."""
    loop = motor_object.get_io_loop()
    framework = motor_object._framework
    session = context.current()
    if session is None or not session.replaying:
        return framework.run_on_executor(loop, function, *args, **kwargs)
    future = framework.get_future(loop)
    try:
        future.set_result(function(*args, **kwargs))
    except Exception as exc:
        future.set_exception(exc)
    return future


def _method(op: _ops.Op, motor_method: Callable[..., Any]) -> Callable[..., Any]:
    """A Motor method running the PyMongo plugin's wrapper of the original PyMongo function."""
    traced = pymongo_patch._wrap(op, _pymongo_function(motor_method))
    current = context.current

    @functools.wraps(motor_method)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if current() is None:
            return motor_method(self, *args, **kwargs)
        args = tuple(_unwrap_session(a) for a in args)
        kwargs = {k: _unwrap_session(v) for k, v in kwargs.items()}
        return _run(self, traced, self.delegate, *args, **kwargs)

    return method


def _refresh(motor_refresh: Callable[..., Any]) -> Callable[..., Any]:
    """A Motor cursor's fetch: the traced delegate's own ``_refresh`` (record, or replay)."""

    @functools.wraps(motor_refresh)
    def method(self: Any) -> Any:
        delegate = self.delegate
        if not isinstance(delegate, _TRACED):
            return motor_refresh(self)
        return _run(self, type(delegate)._refresh, delegate)

    return method


class _CapturingBuffer:
    """A traced cursor's document buffer as Motor's ``to_list`` reads it: each document taken goes
    through what the sync cursor's ``next()`` does (captured when recording; decoded from the
    recording, or refused past it, when replaying)."""

    __slots__ = ("_cursor", "_data")

    def __init__(self, cursor: Any, data: Any) -> None:
        self._cursor = cursor
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def popleft(self) -> Any:
        return took(self._cursor, self._data.popleft())


def _data(motor_data: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(motor_data)
    def method(self: Any) -> Any:
        data = motor_data(self)
        delegate = self.delegate
        state = getattr(delegate, "_tt_state", None)
        if isinstance(delegate, _TRACED) and state is not None:
            return _CapturingBuffer(delegate, data)
        return data

    return method


def _set(cls: type, name: str, value: Any) -> None:
    _installed.append((cls, name, cls.__dict__.get(name, _MISSING)))
    setattr(cls, name, value)


def _motor_classes() -> Dict[type, List[type]]:
    """Motor's framework classes (asyncio, and Tornado if imported), by their agnostic class."""
    try:
        import motor.motor_asyncio  # noqa: F401 - creates the asyncio classes
    except ImportError as exc:
        raise ImportError(
            f"enable_motor() needs Motor, which cannot be imported ({exc}); "
            "install it with: pip install 'timetracer[motor]'"
        ) from exc
    from motor import core, metaprogramming

    wanted = (
        core.AgnosticCollection,
        core.AgnosticDatabase,
        core.AgnosticCursor,
        core.AgnosticCommandCursor,
        core.AgnosticLatentCommandCursor,
    )
    found: Dict[type, List[type]] = {cls: [] for cls in wanted}
    for created in list(metaprogramming._class_cache.values()):
        for agnostic in wanted:
            if created.__bases__ == (agnostic,):
                found[agnostic].append(created)
    return found


def enable() -> None:
    """Install the Motor wrappers (and the PyMongo plugin Motor runs on). Idempotent."""
    classes = _motor_classes()
    from motor import core

    pymongo_patch.enable()
    with pymongo_patch._lock:
        if _installed:
            return
        table = pymongo_patch._ops_table()
        aggregate = next(op for cls, name, op in table if name == "aggregate")
        for cls, name, op in table:
            agnostic = core.AgnosticCollection if cls is pymongo_patch.Collection else core.AgnosticDatabase
            for motor_cls in classes[agnostic]:
                if name != "aggregate":
                    _set(motor_cls, name, _method(op, getattr(motor_cls, name)))
        for motor_cls in classes[core.AgnosticCollection]:
            _set(motor_cls, "_async_aggregate", _method(aggregate, motor_cls._async_aggregate))
        for agnostic in (core.AgnosticCursor, core.AgnosticCommandCursor, core.AgnosticLatentCommandCursor):
            for motor_cls in classes[agnostic]:
                _set(motor_cls, "_refresh", _refresh(motor_cls._refresh))
                _set(motor_cls, "_data", _data(motor_cls._data))


def disable() -> None:
    """Put Motor's original methods back exactly. Idempotent."""
    with pymongo_patch._lock:
        while _installed:
            cls, name, own = _installed.pop()
            if own is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, own)


def is_enabled() -> bool:
    return bool(_installed)
