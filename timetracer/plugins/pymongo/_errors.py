"""Exceptions raised by PyMongo during recording, stored as data and raised again in replay.

Only classes from ``pymongo.errors``, ``bson.errors`` and a few builtins are rebuilt (never
pickle); the class, ``code``, ``details``, error labels and message come back as recorded.
"""

from __future__ import annotations

import builtins
import importlib
from typing import Any, Callable, Dict, List, Optional

from bson.codec_options import CodecOptions

from timetracer.plugins.pymongo._values import (
    decode_value,
    from_ejson,
    raw_to_ejson,
    snapshot_value,
    to_ejson,
)

_MODULES = ("pymongo.errors", "bson.errors")
_BUILTINS = frozenset({"TypeError", "ValueError", "KeyError", "IndexError", "RuntimeError"})


def capture_error(exc: BaseException, codec: Optional[CodecOptions] = None) -> Dict[str, Any]:
    """The ``result.error`` section for an exception raised by a recorded call.

    ``codec`` is what PyMongo decoded the server's reply with: the details are stored through it,
    so a UUID or a legacy-UUID binary, a custom type, are stored as the bytes the server sent.
    """
    kind = type(exc)
    error: Dict[str, Any] = {"type": f"{kind.__module__}.{kind.__qualname__}", "message": str(exc)}
    code = getattr(exc, "code", None)
    error["code"] = code if isinstance(code, int) else None
    details = getattr(exc, "details", None)
    if details is None and hasattr(exc, "errors"):
        details = getattr(exc, "errors", None)
    error["details"] = _store_details(details, codec)
    labels = getattr(exc, "_error_labels", None)
    if labels:
        error["labels"] = sorted(str(label) for label in labels)
    return error


def _store_details(details: Any, codec: Optional[CodecOptions]) -> Any:
    if details is None:
        return None
    if codec is not None:
        try:
            return raw_to_ejson(snapshot_value(details, codec))["v"]
        except Exception:  # not BSON with these options: stored as values
            pass
    try:
        return to_ejson(details)
    except Exception:  # details that cannot be stored are summarised, never fatal
        return {"repr": repr(details)}


def _load_details(
    stored: Any, codec: Optional[CodecOptions], ops: Optional[Callable[[], Optional[List[Any]]]]
) -> Any:
    """The recorded details, decoded as PyMongo decoded the reply; a bulk error's ``op`` entries
    are the app's own operation objects again, as PyMongo puts them there."""
    if codec is None or stored is None:
        return from_ejson(stored)
    details = decode_value(stored, codec, from_reply=True)
    errors = details.get("writeErrors") if isinstance(details, dict) else None
    if errors and ops is not None and any(isinstance(e, dict) and "op" in e for e in errors):
        built = ops()
        if built is not None:
            for entry in errors:
                index = entry.get("index") if isinstance(entry, dict) else None
                if "op" in entry and isinstance(index, int) and 0 <= index < len(built):
                    entry["op"] = built[index]
    return details


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


def rebuild_error(
    error: Dict[str, Any],
    codec: Optional[CodecOptions] = None,
    ops: Optional[Callable[[], Optional[List[Any]]]] = None,
) -> BaseException:
    """A fresh exception equal in class, code, details and message to the recorded one.

    :param codec: the live client's options for the reply (see :func:`capture_error`).
    :param ops: gives the operations a bulk write sent, for ``writeErrors[i]["op"]``.
    """
    from pymongo import errors

    message = error.get("message", "")
    cls = _resolve(error.get("type", ""))
    details = _load_details(error.get("details"), codec, ops)
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
