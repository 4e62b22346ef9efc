"""Exceptions raised by PyMongo during recording, stored as data and raised again in replay.

Only classes from ``pymongo.errors``, ``bson.errors`` and a few builtins are rebuilt (never
pickle); the class, ``code``, ``details``, error labels and message come back as recorded.
"""

from __future__ import annotations

import builtins
import importlib
from typing import Any, Dict, Optional

from timetracer.plugins.pymongo._values import from_ejson, to_ejson

_MODULES = ("pymongo.errors", "bson.errors")
_BUILTINS = frozenset({"TypeError", "ValueError", "KeyError", "IndexError", "RuntimeError"})


def capture_error(exc: BaseException) -> Dict[str, Any]:
    """The ``result.error`` section for an exception raised by a recorded call."""
    kind = type(exc)
    error: Dict[str, Any] = {"type": f"{kind.__module__}.{kind.__qualname__}", "message": str(exc)}
    code = getattr(exc, "code", None)
    error["code"] = code if isinstance(code, int) else None
    details = getattr(exc, "details", None)
    if details is None and hasattr(exc, "errors"):
        details = getattr(exc, "errors", None)
    try:
        error["details"] = to_ejson(details) if details is not None else None
    except Exception:  # details that cannot be stored are summarised, never fatal
        error["details"] = {"repr": repr(details)}
    labels = getattr(exc, "_error_labels", None)
    if labels:
        error["labels"] = sorted(str(label) for label in labels)
    return error


def _resolve(qualified: str) -> Optional[type]:
    module_name, _, name = qualified.rpartition(".")
    if module_name == "builtins":
        return getattr(builtins, name) if name in _BUILTINS else None
    if module_name.startswith("pymongo.errors") or module_name in _MODULES:
        for module in _MODULES:
            candidate = getattr(importlib.import_module(module), name, None)
            if isinstance(candidate, type) and issubclass(candidate, Exception):
                return candidate
    return None


def rebuild_error(error: Dict[str, Any]) -> BaseException:
    """A fresh exception equal in class, code, details and message to the recorded one."""
    from pymongo import errors

    message = error.get("message", "")
    cls = _resolve(error.get("type", ""))
    details = from_ejson(error.get("details"))
    if cls is None:
        return errors.PyMongoError(f"{error.get('type')}: {message} (replayed by timetracer)")
    exc: BaseException
    if issubclass(cls, errors.BulkWriteError):
        exc = cls(details or {})
    elif issubclass(cls, errors.OperationFailure):
        errmsg = details.get("errmsg", message) if isinstance(details, dict) else message
        exc = cls(errmsg, error.get("code"), details)
    elif issubclass(cls, errors.AutoReconnect) or cls is errors.ServerSelectionTimeoutError:
        exc = cls(message, details)
    else:
        try:
            exc = cls(message)
        except Exception:
            exc = errors.PyMongoError(f"{error.get('type')}: {message} (replayed by timetracer)")
    if str(exc) != message and isinstance(exc, errors.PyMongoError):
        exc._message = message  # type: ignore[attr-defined]
        exc.args = (message,)
    labels = error.get("labels")
    if labels and isinstance(exc, errors.PyMongoError):
        exc._error_labels = set(labels)  # type: ignore[attr-defined]
    return exc
