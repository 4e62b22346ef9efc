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

from bson.codec_options import DEFAULT_CODEC_OPTIONS
from bson.raw_bson import RawBSONDocument
from pymongo import results as pm_results

from timetracer.plugins.pymongo import _normalize as norm
from timetracer.plugins.pymongo._cursor import TracedCommandCursor
from timetracer.plugins.pymongo._errors import capture_error, rebuild_error
from timetracer.plugins.pymongo._signature import signature_for
from timetracer.plugins.pymongo._values import (
    capture_document,
    decode_cached_document,
    decode_value,
    raw_to_ejson,
    snapshot_value,
    stored_document,
    to_ejson,
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
        return Call(self.url(target), norm.shape(passed), args, kwargs)

    # -- results -----------------------------------------------------------------------------

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        return _value(result, _codec(target))

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        return decode_value(data, _codec(target), from_reply=True)


class DocumentOp(Op):
    """Calls returning one document or None (find_one_and_*)."""

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        return None if result is None else stored_document(capture_document(result, _codec(target)))

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        return decode_cached_document(call.body, _codec(target))


class FindOneOp(DocumentOp):
    """``find_one(filter, *args, **kwargs)``: arguments are those of ``find``."""

    def prepare(self, target: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Call:
        if not kwargs and len(args) == 1 and type(args[0]) is dict:
            # The common ``find_one({...})``: the general path below gives the same result.
            normal = {"filter": to_ejson(args[0])} if args[0] else {}
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
        return Call(self.url(target), norm.shape(passed), args, kwargs)


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
        normal = {"command": norm.shape({"c": document})["c"]}
        call = Call(self.url(target), normal, args, kwargs)
        call.extra = bound.get("codec_options") or DEFAULT_CODEC_OPTIONS
        return call

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        return stored_document(capture_document(result, call.extra))

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        return decode_cached_document(call.body, call.extra)


class InsertOneOp(Op):
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
    if isinstance(document, RawBSONDocument) or not isinstance(document, MutableMapping):
        return recorded
    if "_id" not in document and recorded is not None:
        document["_id"] = recorded
    return document.get("_id", recorded)


class InsertManyOp(Op):
    def prepare(self, target: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Call:
        # A generator can be read only once: read it here and pass the list on.
        if args:
            documents = list(args[0])
            args = (documents, *args[1:])
        elif "documents" in kwargs:
            documents = list(kwargs["documents"])
            kwargs = dict(kwargs, documents=documents)
        call = super().prepare(target, args, kwargs)
        call.extra = documents if args or "documents" in kwargs else []
        return call

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        codec = _codec(target)
        return {
            "inserted_ids": [_value(i, codec) for i in result.inserted_ids],
            "acknowledged": result.acknowledged,
        }

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        codec = _codec(target)
        recorded = [decode_value(i, codec) for i in data.get("inserted_ids") or []]
        ids = [
            _assign_id(doc, recorded[n] if n < len(recorded) else None) for n, doc in enumerate(call.extra)
        ]
        return pm_results.InsertManyResult(ids, data.get("acknowledged", True))


class RawResultOp(Op):
    """update_one/update_many/replace_one/delete_one/delete_many: a raw server reply."""

    def __init__(self, name: str, binder: norm.Binder, result_class: type) -> None:
        super().__init__(name, binder)
        self.result_class = result_class

    def capture(self, target: Any, result: Any, call: Call) -> Any:
        raw = result.raw_result
        return {
            "raw_result": None if raw is None else _value(raw, DEFAULT_CODEC_OPTIONS),
            "acknowledged": result.acknowledged,
        }

    def replay(self, target: Any, data: Any, call: Call) -> Any:
        raw = data.get("raw_result")
        raw_result = None if raw is None else decode_value(raw, DEFAULT_CODEC_OPTIONS)
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


def _bulk_request(request: Any) -> Dict[str, Any]:
    fields = {}
    for attr, name in _BULK_FIELDS:
        value = getattr(request, attr, None)
        if value is None or (name == "upsert" and value is False):
            continue
        fields[name] = value
    return {type(request).__name__: norm.shape(fields)}


class BulkWriteOp(Op):
    def prepare(self, target: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Call:
        if args:
            requests = list(args[0])
            args = (requests, *args[1:])
        else:
            requests = list(kwargs.get("requests") or [])
            kwargs = dict(kwargs, requests=requests)
        bound = self.binder.bind(args, kwargs)
        passed = self.binder.passed(bound)
        passed["requests"] = [_bulk_request(r) for r in requests]
        normal = {k: (v if k == "requests" else norm.shape({k: v})[k]) for k, v in passed.items()}
        call = Call(self.url(target), normal, args, kwargs)
        call.extra = requests
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
            "bulk_api_result": None if raw is None else _value(raw, DEFAULT_CODEC_OPTIONS),
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
        bulk = {} if raw is None else decode_value(raw, DEFAULT_CODEC_OPTIONS)
        return pm_results.BulkWriteResult(bulk, data.get("acknowledged", True))


class AggregateOp(Op):
    """``aggregate``: a command cursor; its documents are stored as the app reads them."""

    def prepare(self, target: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Call:
        if args:
            pipeline = list(args[0])
            args = (pipeline, *args[1:])
        elif "pipeline" in kwargs:
            kwargs = dict(kwargs, pipeline=list(kwargs["pipeline"]))
        return super().prepare(target, args, kwargs)


def run(
    op: Op,
    session: Session,
    original: Callable[..., Any],
    target: Any,
    args: Tuple[Any, ...],
    kwargs: Dict[str, Any],
) -> Any:
    """Record or replay one call of ``op`` made while ``session`` is active."""
    try:
        call = op.prepare(target, args, kwargs)
        signature = signature_for(op.method, call.url, call.norm, hashed=session.replaying)
    except Exception as exc:
        if session.replaying:
            raise
        logger.warning("timetracer: %s call not recorded, arguments could not be read: %s", op.name, exc)
        return original(target, *args, **kwargs)

    if session.replaying:
        assert session.replayer is not None
        event = session.replayer.match(signature, call.norm)
        result = event["result"]
        if isinstance(op, AggregateOp):
            if result.get("error") and not (result.get("body") or {}).get("data"):
                raise rebuild_error(result["error"])
            return TracedCommandCursor.replayed(target, event, session)
        if result.get("error"):
            _assign_error_ids(op, target, result, call)
            raise rebuild_error(result["error"])
        body = result.get("body") or {}
        if not body.get("captured", False):
            raise session.replayer.miss(
                f"the recorded result of {op.method} on {call.url} (eid={event['eid']}) was not captured "
                f"({body.get('reason', 'no reason stored')}); re-record the cassette {session.cassette_path}"
            )
        call.body = body
        return op.replay(target, body.get("data"), call)

    event = session.start_event(signature, call.norm)
    token = _inside.set(True)
    try:
        result = original(target, *call.args, **call.kwargs)
    except Exception as exc:
        _inside.reset(token)
        error_result: Dict[str, Any] = {"status": 1, "body": {"captured": False, "data": None}}
        error_result["error"] = capture_error(exc)
        ids = _ids_after_error(op, target, call)
        if ids is not None:
            error_result["assigned_ids"] = ids
        session.end_event(event, error_result)
        raise
    except BaseException:
        _inside.reset(token)
        raise
    _inside.reset(token)
    if isinstance(op, AggregateOp):
        return TracedCommandCursor.recording(result, session, event)
    try:
        data = op.capture(target, result, call)
        session.end_event(event, {"status": 0, "body": {"captured": True, "data": data}})
    except Exception as exc:  # the app's call succeeded; never break it over our bookkeeping
        logger.warning("timetracer: result of %s on %s could not be stored: %s", op.method, call.url, exc)
        session.end_event(event, {"status": 0, "body": {"captured": False, "data": None, "reason": str(exc)}})
    return result


def _inserted_documents(op: Op, call: Call) -> Optional[List[Any]]:
    if isinstance(op, InsertOneOp):
        return [call.args[0] if call.args else call.kwargs.get("document")]
    if isinstance(op, InsertManyOp):
        return list(call.extra or [])
    return None


def _ids_after_error(op: Op, target: Any, call: Call) -> Optional[List[Any]]:
    """The ``_id``s PyMongo gave the documents of a failed insert (it assigns them before sending)."""
    documents = _inserted_documents(op, call)
    if documents is None:
        return None
    codec = _codec(target)
    return [_value(d.get("_id"), codec) if isinstance(d, Mapping) else None for d in documents]


def _assign_error_ids(op: Op, target: Any, result: Dict[str, Any], call: Call) -> None:
    documents = _inserted_documents(op, call)
    ids = result.get("assigned_ids")
    if documents is None or not ids:
        return
    codec = _codec(target)
    for document, stored in zip(documents, ids):
        _assign_id(document, decode_value(stored, codec))
