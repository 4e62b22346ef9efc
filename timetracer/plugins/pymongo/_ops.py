"""The PyMongo operations timetracer records and replays, one small class per kind of result.

Each :class:`Op` knows how to name a call's normalised arguments, what of the result to store,
and how to rebuild the same Python result from the cassette. :func:`run` is the one code path
every wrapped call takes while a session is active.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import results as pm_results

from timetracer.plugins.pymongo import _normalize as norm
from timetracer.plugins.pymongo._cursor import TracedCommandCursor
from timetracer.plugins.pymongo._errors import capture_error_safely
from timetracer.plugins.pymongo._failures import capture_failed
from timetracer.plugins.pymongo._guard import check_shape, guard, recorded_error
from timetracer.plugins.pymongo._rebuild import decode_cached_document
from timetracer.plugins.pymongo._signature import signature_for
from timetracer.plugins.pymongo._values import (
    decode_value,
    raw_to_ejson,
    reply_codec,
    snapshot_value,
    stored_json,
)

if TYPE_CHECKING:
    from timetracer.session import Session

logger = logging.getLogger("timetracer")

# True while a recorded PyMongo call runs, so the PyMongo methods it calls itself
# (find_one → find, list_collection_names → list_collections) are not recorded again.
_inside: ContextVar[bool] = ContextVar("timetracer.pymongo.inside", default=False)


class Call:
    """One live call: its normalised arguments, namespace, and the arguments to pass on."""

    __slots__ = ("args", "body", "extra", "kwargs", "norm", "url")

    def __init__(self, url: str, normal: Dict[str, Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]):
        self.url = url
        self.norm = normal
        self.args = args
        self.kwargs = kwargs
        self.extra: Any = None
        self.body: Dict[str, Any] = {}  # replay: the recorded result body being answered from


def _value(value: Any, codec: Any) -> Any:
    return raw_to_ejson(snapshot_value(value, codec))["v"]


def _codec(target: Any) -> Any:
    return getattr(target, "codec_options", DEFAULT_CODEC_OPTIONS)


def write_reply_codec(target: Any) -> CodecOptions:
    """The codec options PyMongo decodes a write's reply with (bulk writes use the same)."""
    return reply_codec(_codec(target), write=True)


class Op:
    """A wrapped method. Subclasses override the parts that differ."""

    method = ""
    filter_arg = "filter"

    def __init__(self, name: str, binder: norm.Binder) -> None:
        self.name = name
        self.method = name.upper()
        self.binder = binder

    # -- arguments ---------------------------------------------------------------------------

    def url(self, target: Any) -> str:
        return str(target.full_name)

    def prepare(self, target: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Call:
        bound = self.binder.bind(args, kwargs)
        passed = self.binder.passed(bound)
        norm.clean_filter(passed, self.filter_arg)
        return Call(self.url(target), norm.shape(passed, _codec(target)), args, kwargs)

    # -- results -----------------------------------------------------------------------------

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        return _value(result, _codec(target))

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        return decode_value(data, _codec(target), from_reply=True)

    # -- errors ------------------------------------------------------------------------------

    def encode_codec(self, target: Any, call: Call) -> CodecOptions:
        """The codec options the call encodes with (an error's details are stored through them)."""
        return _codec(target)  # type: ignore[no-any-return]

    def reply_codec(self, target: Any, call: Call) -> CodecOptions:
        """The codec options the server's reply (and so an error's details) is decoded with."""
        return reply_codec(self.encode_codec(target, call))

    def error_ops(self, target: Any, call: Call) -> Optional[List[Any]]:
        """The operations PyMongo names in a bulk error's ``writeErrors[i]["op"]``, by index."""
        return None


class WriteOp(Op):
    """A write: its reply is decoded with the collection's write-reply codec options."""

    def reply_codec(self, target: Any, call: Call) -> CodecOptions:
        return write_reply_codec(target)


class DocumentOp(Op):
    """Calls returning one document or None (find_one_and_*)."""

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        return None if result is None else stored_json(result, _codec(target))

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        return decode_cached_document(call.body, _codec(target))


class FindOneOp(DocumentOp):
    """``find_one(filter, *args, **kwargs)``: arguments are those of ``find``."""

    def prepare(self, target: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Call:
        if not kwargs and len(args) == 1 and type(args[0]) is dict:
            # The common ``find_one({...})``: the general path below gives the same result.
            normal = {"filter": norm.stored(args[0], _codec(target))} if args[0] else {}
            return Call(self.url(target), normal, args, kwargs)
        args_list = list(args)
        first = args_list[0] if args_list else kwargs.get("filter")
        if first is not None and not isinstance(first, Mapping):
            first = {"_id": first}
        if args_list:
            args_list[0] = first
        elif "filter" in kwargs:
            kwargs = dict(kwargs, filter=first)
        bound = self.binder.bind(args_list, kwargs)
        passed = self.binder.passed(bound)
        for key in ("limit", "batch_size"):
            passed.pop(key, None)
        norm.clean_filter(passed)
        return Call(self.url(target), norm.shape(passed, _codec(target)), args, kwargs)


class CountOp(Op):
    def capture(self, target: Any, result: Any, call: Call) -> Any:
        return int(result)

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        return int(data)


class NamesOp(Op):
    """``Database.list_collection_names``: a list of strings."""

    def url(self, target: Any) -> str:
        return f"{target.name}.$cmd"

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        return [str(name) for name in result]

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        return list(data)


class CommandOp(Op):
    """``Database.command``: the command document in, the reply document out."""

    filter_arg = ""

    def url(self, target: Any) -> str:
        return f"{target.name}.$cmd"

    def prepare(self, target: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Call:
        bound = self.binder.bind(args, kwargs)
        command = bound.pop("command", None)
        value = bound.pop("value", 1)
        extras = {k: v for k, v in bound.items() if k not in self.binder.defaults and k != "*args"}
        if isinstance(command, str):
            document: Dict[str, Any] = {command: value}
        else:
            document = dict(command or {})
        document.update(extras)
        codec = bound.get("codec_options") or DEFAULT_CODEC_OPTIONS
        normal = {"command": norm.shape({"c": document}, codec)["c"]}
        call = Call(self.url(target), normal, args, kwargs)
        call.extra = codec
        return call

    def encode_codec(self, target: Any, call: Call) -> CodecOptions:
        return call.extra  # type: ignore[no-any-return]

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        return stored_json(result, call.extra)

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        return decode_cached_document(call.body, call.extra)


class InsertOneOp(WriteOp):
    def capture(self, target: Any, result: Any, call: Call) -> Any:
        return {
            "inserted_id": _value(result.inserted_id, _codec(target)),
            "acknowledged": result.acknowledged,
        }

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        document = call.args[0] if call.args else call.kwargs.get("document")
        recorded = decode_value(data.get("inserted_id"), _codec(target))
        inserted = _assign_id(document, recorded)
        return pm_results.InsertOneResult(inserted, data.get("acknowledged", True))


def _assign_id(document: Any, recorded: Any) -> Any:
    """Give ``document`` the recorded ``_id`` where PyMongo would have added one."""
    if isinstance(document, RawBSONDocument):
        return None  # PyMongo neither changes nor reports the _id of a raw document
    if not isinstance(document, MutableMapping):
        return recorded
    if "_id" not in document and recorded is not None:
        document["_id"] = recorded
    return document.get("_id", recorded)


class InsertManyOp(WriteOp):
    def prepare(self, target: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Call:
        # A generator can be read only once: read it here and pass the list on.
        documents: Any = []
        if args:
            passed, documents = norm.documents_to_pass(args[0])
            args = (passed, *args[1:])
        elif "documents" in kwargs:
            passed, documents = norm.documents_to_pass(kwargs["documents"])
            kwargs = dict(kwargs, documents=passed)
        call = super().prepare(target, args, kwargs)
        call.extra = list(documents) if isinstance(documents, (list, tuple)) else []
        return call

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        codec = _codec(target)
        return {
            "inserted_ids": [_value(i, codec) for i in result.inserted_ids],
            "acknowledged": result.acknowledged,
        }

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        codec = _codec(target)
        recorded = iter([decode_value(i, codec) for i in data.get("inserted_ids") or []])
        # As PyMongo does: raw documents are sent as they are and have no entry in inserted_ids.
        ids = [
            _assign_id(doc, next(recorded, None))
            for doc in call.extra
            if not isinstance(doc, RawBSONDocument)
        ]
        return pm_results.InsertManyResult(ids, data.get("acknowledged", True))

    def error_ops(self, target: Any, call: Call) -> Optional[List[Any]]:
        return list(call.extra or [])


class RawResultOp(WriteOp):
    """update_one/update_many/replace_one/delete_one/delete_many: a raw server reply."""

    def __init__(self, name: str, binder: norm.Binder, result_class: type) -> None:
        super().__init__(name, binder)
        self.result_class = result_class

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        raw = result.raw_result
        return {
            "raw_result": None if raw is None else _value(raw, _codec(target)),
            "acknowledged": result.acknowledged,
        }

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        raw = data.get("raw_result")
        raw_result = None if raw is None else decode_value(raw, write_reply_codec(target))
        return self.result_class(raw_result, data.get("acknowledged", True))


_BULK_FIELDS = (
    ("_filter", "filter"),
    ("_doc", "document"),
    ("_upsert", "upsert"),
    ("_collation", "collation"),
    ("_array_filters", "array_filters"),
    ("_hint", "hint"),
    ("_sort", "sort"),
    ("_namespace", "namespace"),
)


def _bulk_request(request: Any, codec: Any) -> Dict[str, Any]:
    fields = {}
    for attr, name in _BULK_FIELDS:
        value = getattr(request, attr, None)
        if value is None or (name == "upsert" and value is False):
            continue
        fields[name] = value
    return {type(request).__name__: norm.shape(fields, codec)}


def _bulk_ops(target: Any, requests: List[Any]) -> Optional[List[Any]]:
    """The op documents PyMongo builds from ``requests`` (what a BulkWriteError's ``op`` holds),
    built by PyMongo's own bulk class so they match live exactly; None if that is not possible."""
    try:
        try:  # PyMongo 4.9+
            from pymongo.synchronous.bulk import _Bulk
        except ImportError:  # PyMongo 4.6-4.8
            from pymongo.bulk import _Bulk  # type: ignore[no-redef]
        bulk = _Bulk(target, True, None)
        for request in requests:
            request._add_to_bulk(bulk)
        return [op for _, op in bulk.ops]
    except Exception as exc:  # a PyMongo without these internals: the stored op is used
        logger.debug("timetracer: bulk operations could not be rebuilt: %s", exc)
        return None


class BulkWriteOp(WriteOp):
    def prepare(self, target: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Call:
        # PyMongo takes only a list here: anything else is passed on for PyMongo to refuse.
        requests = args[0] if args else kwargs.get("requests")
        codec = _codec(target)
        bound = self.binder.bind(args, kwargs)
        passed = self.binder.passed(bound)
        if type(requests) is list:
            passed["requests"] = [_bulk_request(r, codec) for r in requests]
        else:
            passed["requests"] = norm.stored(requests, codec)
        normal = {k: (v if k == "requests" else norm.shape({k: v}, codec)[k]) for k, v in passed.items()}
        call = Call(self.url(target), normal, args, kwargs)
        call.extra = requests if type(requests) is list else []
        return call

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        codec = _codec(target)
        inserted = [
            _value(r._doc.get("_id"), codec)
            for r in call.extra
            if type(r).__name__ == "InsertOne" and isinstance(getattr(r, "_doc", None), Mapping)
        ]
        raw = result.bulk_api_result if result.acknowledged else None
        return {
            "bulk_api_result": None if raw is None else _value(raw, _codec(target)),
            "acknowledged": result.acknowledged,
            "inserted_ids": inserted,
        }

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        codec = _codec(target)
        recorded = iter([decode_value(i, codec) for i in data.get("inserted_ids") or []])
        for request in call.extra:
            if type(request).__name__ == "InsertOne":
                _assign_id(getattr(request, "_doc", None), next(recorded, None))
        raw = data.get("bulk_api_result")
        bulk = {} if raw is None else decode_value(raw, write_reply_codec(target))
        return pm_results.BulkWriteResult(bulk, data.get("acknowledged", True))

    def error_ops(self, target: Any, call: Call) -> Optional[List[Any]]:
        return _bulk_ops(target, call.extra)


class AggregateOp(Op):
    """``aggregate``: a command cursor; its documents are stored as the app reads them.

    The pipeline is passed on as the app gave it (PyMongo refuses anything but a list itself).
    """


class Pass:
    """What :func:`start` returns for a call that is not recorded: the shell calls the driver
    untouched, with these arguments (a generator argument has been read into a list already)."""

    __slots__ = ("args", "kwargs")

    def __init__(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs


class Recording:
    """A call being recorded: the driver call runs between :func:`start` and :meth:`succeeded`
    (or :meth:`failed`). Knows nothing of how the driver is called (sync, awaited, on a thread).

    :param cursors: the traced command cursor class of the driver flavour (sync or async).
    """

    __slots__ = ("call", "cursors", "event", "op", "session", "target")

    def __init__(
        self, op: Op, session: Session, target: Any, call: Call, event: Dict[str, Any], cursors: Any
    ) -> None:
        self.op = op
        self.session = session
        self.target = target
        self.call = call
        self.event = event
        self.cursors = cursors

    def succeeded(self, result: Any) -> Any:
        """Store the result of the driver call; returns what the app gets (a traced cursor for
        aggregate, else ``result`` itself). Never raises."""
        op, call, session, event = self.op, self.call, self.session, self.event
        if isinstance(op, AggregateOp):
            try:
                return self.cursors.recording(result, session, event)
            except Exception as exc:
                capture_failed(f"the cursor of {op.name} on {call.url}", exc)
                _end_uncaptured(session, event, exc)
                return result
        try:
            data = op.capture(self.target, result, call)
            session.end_event(event, {"status": 0, "body": {"captured": True, "data": data}})
        except Exception as exc:  # the app's call succeeded; never break it over our bookkeeping
            capture_failed(f"the result of {op.name} on {call.url}", exc)
            _end_uncaptured(session, event, exc)
        return result

    def failed(self, exc: BaseException) -> None:
        """Store the exception the driver call raised (the shell re-raises it). Never raises."""
        _end_with_error(self.op, self.session, self.event, self.target, self.call, exc)


def start(
    op: Op,
    session: Session,
    target: Any,
    args: Tuple[Any, ...],
    kwargs: Dict[str, Any],
    cursors: Any = TracedCommandCursor,
) -> Tuple[Optional[Recording], Any]:
    """Begin one call of ``op`` made while ``session`` is active.

    Returns ``(recording, None)`` when the driver must now be called with ``recording.call.args``
    and ``recording.call.kwargs``; ``(None, value)`` when replay answered the call (``value``) or
    raises its recorded error; ``(None, Pass(...))`` when the call is not recorded and goes on
    untouched. ``cursors`` is the traced command cursor class of the driver flavour.

    Recording is transparent: whatever fails in timetracer's own code is logged and the call goes
    on exactly as without timetracer; what PyMongo raises (server or client side) is recorded and
    raised unchanged, and replay raises it again, noting the cassette and event it came from.
    """
    app_error: Optional[BaseException] = None
    try:
        call = op.prepare(target, args, kwargs)
        signature = signature_for(op.method, call.url, call.norm, hashed=session.replaying)
    except norm.IterationFailed as failed:
        app_error = failed.error  # raised below, outside this handler, as PyMongo would let it through
    except Exception as exc:
        if session.replaying:
            raise session.replayer.miss(
                f"timetracer cannot read the arguments of {op.name}() ({type(exc).__name__}: {exc}), so "
                f"it cannot tell which recorded call of the cassette {session.cassette_path} this is; "
                "a recording made the same way did not record it either"
            ) from exc
        capture_failed(f"the arguments of {op.name}", exc)
        return None, Pass(args, kwargs)
    if app_error is not None:
        raise app_error

    if session.replaying:
        assert session.replayer is not None
        event = guard(session, None, "signature", session.replayer.match, signature, call.norm)
        return None, guard(session, event, "result", _replay, op, session, target, call, event, cursors)

    try:
        event = session.start_event(signature, call.norm)
    except Exception as exc:
        capture_failed(f"the call {op.name} on {call.url}", exc)
        return None, Pass(call.args, call.kwargs)
    return Recording(op, session, target, call, event, cursors), None


def run(
    op: Op,
    session: Session,
    original: Callable[..., Any],
    target: Any,
    args: Tuple[Any, ...],
    kwargs: Dict[str, Any],
) -> Any:
    """Record or replay one call of ``op`` made while ``session`` is active (the sync shell over
    :func:`start`; ``_async.arun`` is its awaited twin)."""
    recording, value = start(op, session, target, args, kwargs)
    if recording is None:
        if type(value) is Pass:
            return original(target, *value.args, **value.kwargs)
        return value
    token = _inside.set(True)
    try:
        result = original(target, *recording.call.args, **recording.call.kwargs)
    except Exception as exc:
        _inside.reset(token)
        recording.failed(exc)
        raise
    except BaseException:
        _inside.reset(token)
        raise
    _inside.reset(token)
    return recording.succeeded(result)


def _replay(
    op: Op, session: Session, target: Any, call: Call, event: Dict[str, Any], cursors: Any = TracedCommandCursor
) -> Any:
    """The recorded outcome of a matched call: its value, or its error raised again."""
    assert session.replayer is not None
    result = event["result"]
    if isinstance(op, AggregateOp):
        if result.get("error") and not (result.get("body") or {}).get("data"):
            raise recorded_error(session, event, op.reply_codec(target, call))
        return guard(session, event, "result.body.data", cursors.replayed, target, event, session)
    if result.get("error"):
        try:
            _assign_error_ids(op, target, result, call)
        except Exception as exc:  # the recorded error is what the app must see
            logger.debug("timetracer: ids of a replayed failed %s not assigned: %s", op.name, exc)
        raise recorded_error(
            session, event, op.reply_codec(target, call), ops=lambda: op.error_ops(target, call)
        )
    if norm.has_unencodable(call.norm):
        raise session.replayer.miss(
            f"{op.method} on {call.url} has an argument that cannot be stored (see "
            f"{norm.UNENCODABLE} in the arguments of eid={event['eid']}), so timetracer cannot tell "
            f"whether it is the recorded call; its successful result is not replayed "
            f"(cassette {session.cassette_path})"
        )
    body = result.get("body") or {}
    if not body.get("captured", False):
        raise session.replayer.miss(
            f"the recorded result of {op.method} on {call.url} (eid={event['eid']}) was not captured "
            f"({body.get('reason', 'no reason stored')}); re-record the cassette {session.cassette_path}"
        )
    call.body = body
    value = guard(session, event, "result.body.data", op.replay, target, body.get("data"), call)
    return guard(session, event, "result.body.data", check_shape, op.name, value)


def _end_uncaptured(session: Session, event: Dict[str, Any], exc: BaseException) -> None:
    try:
        reason = f"{type(exc).__name__}: {exc}"
    except Exception:
        reason = type(exc).__name__
    try:
        session.end_event(event, {"status": 0, "body": {"captured": False, "data": None, "reason": reason}})
    except Exception as failure:
        capture_failed("an uncaptured result", failure)


def _end_with_error(
    op: Op, session: Session, event: Dict[str, Any], target: Any, call: Call, exc: BaseException
) -> None:
    """Close the event of a call PyMongo failed, server or client side; never raises."""
    error_result: Dict[str, Any] = {"status": 1, "body": {"captured": False, "data": None}}
    try:
        codec: Any = op.encode_codec(target, call)
    except Exception:
        codec = None
    error_result["error"] = capture_error_safely(exc, codec)
    try:
        ids = _ids_after_error(op, target, call)
        if ids is not None:
            error_result["assigned_ids"] = ids
    except Exception as failure:
        capture_failed(f"the _ids assigned by a failed {op.name}", failure)
    try:
        session.end_event(event, error_result)
    except Exception as failure:
        capture_failed(f"the failed call {op.name} on {call.url}", failure)


def _inserted_documents(op: Op, call: Call) -> Optional[List[Any]]:
    if isinstance(op, InsertOneOp):
        return [call.args[0] if call.args else call.kwargs.get("document")]
    if isinstance(op, InsertManyOp):
        return list(call.extra or [])
    if isinstance(op, BulkWriteOp):
        return [getattr(r, "_doc", None) for r in call.extra or [] if type(r).__name__ == "InsertOne"]
    return None


def _ids_after_error(op: Op, target: Any, call: Call) -> Optional[List[Any]]:
    """The ``_id``s PyMongo gave the documents of a failed insert (it assigns them before sending)."""
    documents = _inserted_documents(op, call)
    if documents is None:
        return None
    codec = _codec(target)
    ids: List[Any] = []
    for document in documents:
        try:  # an id the client itself could not encode (why the call failed) is not stored
            ids.append(_value(document.get("_id"), codec) if isinstance(document, Mapping) else None)
        except Exception:
            ids.append(None)
    return ids


def _assign_error_ids(op: Op, target: Any, result: Dict[str, Any], call: Call) -> None:
    documents = _inserted_documents(op, call)
    ids = result.get("assigned_ids")
    if documents is None or not ids:
        return
    codec = _codec(target)
    for document, stored in zip(documents, ids):
        _assign_id(document, decode_value(stored, codec))
