"""Exceptions raised by PyMongo during recording, stored as data and raised again in replay.

Only classes from ``pymongo.errors``, ``bson.errors`` and a few builtins are rebuilt (never
pickle); the class, ``code``, ``details``, error labels and message come back as recorded.

A replayed exception carries a note naming the cassette and the recorded event it came from
(``add_note`` on Python 3.11+; on older Pythons the same ``__notes__`` list, and a
:class:`ReplayedFrom` cause so the traceback shows it); ``str()`` stays what it was when recorded.
Errors that mean the server was never reached (``ServerSelectionTimeoutError``, ``AutoReconnect``,
``NetworkTimeout``...) are flagged: replaying one is logged as a WARNING, and so is saving a
cassette that holds one.
"""

from __future__ import annotations

import builtins
import importlib
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, List, Optional, Set

from bson.codec_options import CodecOptions

from timetracer.errors import TimeTracerError
from timetracer.plugins.pymongo._failures import capture_failed
from timetracer.plugins.pymongo._values import (
    decode_value,
    from_ejson,
    raw_to_ejson,
    snapshot_value,
    to_ejson,
)

if TYPE_CHECKING:
    from timetracer.session import Session

logger = logging.getLogger("timetracer")

_MODULES = ("pymongo.errors", "bson.errors")
_BUILTINS = frozenset({"TypeError", "ValueError", "KeyError", "IndexError", "RuntimeError", "OverflowError"})


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


def bare_error(exc: BaseException) -> Dict[str, Any]:
    """The least ``result.error`` section (class and message), for when :func:`capture_error` fails."""
    kind = type(exc)
    try:
        message = str(exc)
    except Exception:
        message = ""
    return {"type": f"{kind.__module__}.{kind.__qualname__}", "message": message, "code": None, "details": None}


def capture_error_safely(exc: BaseException, codec: Optional[CodecOptions] = None) -> Dict[str, Any]:
    """:func:`capture_error`, or :func:`bare_error` if that fails: never raises (the app must get
    PyMongo's exception, not one of timetracer's)."""
    try:
        return capture_error(exc, codec)
    except Exception as failure:
        capture_failed("an exception raised by PyMongo", failure)
        return bare_error(exc)


def _unreachable_types() -> FrozenSet[str]:
    from pymongo import errors

    names = set()
    for value in vars(errors).values():
        if (
            isinstance(value, type)
            and issubclass(value, errors.ConnectionFailure)
            and not issubclass(value, errors.NotPrimaryError)
        ):
            names.add(f"{value.__module__}.{value.__qualname__}")
    return frozenset(names)


# Qualified names of the exceptions meaning "the call never got an answer from a server".
UNREACHABLE = _unreachable_types()


def unreachable(error: Any) -> bool:
    """Whether a recorded ``result.error`` says the server could not be reached."""
    return isinstance(error, dict) and error.get("type") in UNREACHABLE


class ReplayedFrom(TimeTracerError):
    """The cause shown under a replayed exception on Python < 3.11 (where ``add_note`` is missing)."""


def origin_note(session: Session, event: Dict[str, Any]) -> str:
    note = f"replayed by timetracer from the cassette {session.cassette_path}, recorded call eid={event.get('eid')}"
    if unreachable(event["result"].get("error")):
        note += " (recorded when the database could not be reached)"
    return note


def add_origin(exc: BaseException, note: str) -> BaseException:
    """Attach ``note`` to ``exc`` without changing its class or ``str()``."""
    add_note = getattr(exc, "add_note", None)
    if add_note is not None:  # Python 3.11+
        add_note(note)
        return exc
    notes = getattr(exc, "__notes__", None)
    if not isinstance(notes, list):
        notes = []
        exc.__notes__ = notes  # type: ignore[attr-defined]
    notes.append(note)
    if exc.__cause__ is None:
        exc.__cause__ = ReplayedFrom(note)
    return exc


_warned: Set[Any] = set()
_warned_lock = threading.Lock()


def replayed_error(
    session: Session,
    event: Dict[str, Any],
    codec: Optional[CodecOptions] = None,
    ops: Optional[Callable[[], Optional[List[Any]]]] = None,
) -> BaseException:
    """The recorded exception of ``event``, rebuilt (see :func:`rebuild_error` for ``codec`` and
    ``ops``), with a note naming where it was replayed from."""
    error = event["result"]["error"]
    exc = rebuild_error(error, codec, ops)
    if unreachable(error):
        key = (str(session.cassette_path), event.get("eid"))
        with _warned_lock:
            first = key not in _warned
            _warned.add(key)
        if first:
            logger.warning(
                "timetracer: replaying %s of call eid=%s from %s: it was recorded while the database "
                "could not be reached; re-record with the database up to replay real results",
                error.get("type", "").rpartition(".")[2],
                event.get("eid"),
                session.cassette_path,
            )
    return add_origin(exc, origin_note(session, event))


def warn_unreachable(path: Any, events: Any) -> None:
    """Log a WARNING naming the events of a cassette being saved whose call never reached a server."""
    failed = [
        event
        for event in events
        if type(event.get("result")) is dict
        and event["result"].get("error") is not None  # the usual event: no call made here
        and unreachable(event["result"]["error"])
    ]
    if not failed:
        return
    shown = ", ".join(
        f"eid={e.get('eid')} {e['signature'].get('method')} on {e['signature'].get('url')}: "
        f"{e['result']['error'].get('type', '').rpartition('.')[2]}"
        for e in failed[:5]
    )
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    logger.warning(
        "timetracer: the cassette %s records %d call(s) that failed to reach the database (%s%s); "
        "replay will raise these errors again. Re-record with the database reachable.",
        path,
        len(failed),
        shown,
        more,
    )
