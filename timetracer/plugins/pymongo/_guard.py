"""Replay never fails with an unrelated exception: a bad recorded value is a CassetteError.

Replay decodes what a cassette stores (documents, ids, write results, errors) only when the
application asks for it. A value that passed the schema check but cannot be decoded (an ``$oid``
that is not hex, an integer too large for BSON, a date that is not a date, a lone surrogate, a
value nested 600 deep) must not surface as an ``InvalidId`` or a ``RecursionError`` deep inside
PyMongo: :func:`guard` turns it into a :class:`CassetteError` naming the cassette file, the
recorded event (``eid``) and the field. The recorded error of a call (rebuilt by
:func:`recorded_error`) and timetracer's own errors pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, TypeVar

from timetracer.errors import CassetteError, TimeTracerError
from timetracer.plugins.pymongo._errors import replayed_error

if TYPE_CHECKING:
    from timetracer.session import Session

T = TypeVar("T")

# Set on the exception rebuilt from a cassette's recorded error: it is the call's outcome.
_RECORDED = "__timetracer_recorded__"


def _eid(event: Optional[Dict[str, Any]]) -> str:
    eid = event.get("eid") if isinstance(event, dict) else None
    return f"eid={eid}" if isinstance(eid, int) else "eid unknown"


def bad_value(exc: BaseException, session: Session, event: Optional[Dict[str, Any]], field: str) -> CassetteError:
    """The :class:`CassetteError` for a recorded value replay could not use."""
    detail = "nested too deeply" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
    return CassetteError(
        f"cassette {session.cassette_path}: event {_eid(event)}, field {field!r}: "
        f"the recorded value cannot be replayed ({detail}); re-record the cassette"
    )


def passes_through(exc: BaseException) -> bool:
    """Whether ``exc`` is a legitimate replay outcome: timetracer's own error or the recorded one."""
    return isinstance(exc, TimeTracerError) or getattr(exc, _RECORDED, False)


def guard(
    session: Session, event: Optional[Dict[str, Any]], field: str, func: Callable[..., T], *args: Any
) -> T:
    """``func(*args)``, with any unexpected exception turned into a :class:`CassetteError`."""
    try:
        return func(*args)
    except Exception as exc:
        if passes_through(exc):
            raise
        raise bad_value(exc, session, event, field) from exc


def recorded_error(session: Session, event: Dict[str, Any]) -> BaseException:
    """The exception recorded for ``event``, rebuilt with a note naming where it was replayed from,
    or a CassetteError if it cannot be."""
    try:
        exc = replayed_error(session, event)
        setattr(exc, _RECORDED, True)
    except Exception as problem:
        error = bad_value(problem, session, event, "result.error")
        error.__cause__ = problem
        return error
    return exc


_RAW_RESULTS = frozenset({"update_one", "update_many", "replace_one", "delete_one", "delete_many"})
_DOCUMENTS = frozenset(
    {"find_one", "find_one_and_update", "find_one_and_replace", "find_one_and_delete", "command"}
)
_COUNTS = frozenset({"count_documents", "estimated_document_count"})
_RAW_COUNTS = ("n", "nModified", "nInserted", "nUpserted", "nMatched", "nRemoved")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_counts(document: Any, what: str) -> None:
    if not isinstance(document, Mapping):
        raise TypeError(f"{what} is {type(document).__name__}, not a document")
    for key in _RAW_COUNTS:
        if key in document and not _is_int(document[key]):
            raise TypeError(f"{what}[{key!r}] is {type(document[key]).__name__}, not an integer")


def check_shape(name: str, value: Any) -> Any:
    """``value``, the replayed return of PyMongo method ``name``, if it has the type the live
    method returns; else ``TypeError`` (result objects are lazy: a bad field would only fail when
    the application reads it, far from any cassette)."""
    if name in _RAW_RESULTS or name in ("insert_one", "insert_many", "bulk_write"):
        if not isinstance(value.acknowledged, bool):
            raise TypeError("'acknowledged' is not a boolean")
    if name in _RAW_RESULTS:
        if value.acknowledged or value.raw_result is not None:  # acknowledged writes have a reply
            _check_counts(value.raw_result, "raw_result")
    elif name == "insert_many":
        if not isinstance(value.inserted_ids, list):
            raise TypeError("'inserted_ids' is not a list")
    elif name == "bulk_write":
        if value.acknowledged:
            _check_counts(value.bulk_api_result, "the bulk write result")
    elif name in _DOCUMENTS:
        if value is not None and not isinstance(value, Mapping):
            raise TypeError(f"a document was expected, not {type(value).__name__}")
    elif name in _COUNTS:
        if not _is_int(value):
            raise TypeError(f"a count was expected, not {type(value).__name__}")
    elif name == "distinct":
        if not isinstance(value, list):
            raise TypeError(f"a list was expected, not {type(value).__name__}")
    elif name == "list_collection_names":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise TypeError("a list of names was expected")
    return value
