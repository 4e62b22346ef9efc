"""Replayed documents built straight from a cassette's stored JSON, and kept for every later use.

With the usual codec options (dict documents, naive datetimes, no type decoders), a stored
document becomes the app's document without BSON: its containers are copied in C and only its
typed values (dates, ids, ``Int64``...) are rebuilt, exactly as PyMongo would decode them.

The second time a result is replayed, each document built this way is also kept, beside the
stored data, as a *template* with a *copier*: a function, shared by documents of the same shape, that
copies the template's containers (dicts and lists) and nothing else. Every later use hands the app
such a copy: new containers, so nothing the app changes is seen by the next use, around the same
immutable values (strings, numbers, dates, ids), which need no copy. That is several times cheaper
than decoding the documents again. A document holding a value the app could change in place
(a ``Regex``, a ``Code`` scope, a ``DBRef``, a ``Binary``...) is never kept: it is rebuilt from
the stored JSON each time.

Any other codec options go through BSON and PyMongo's own decoder (:func:`decode_cached`).
A result of one document (``find_one``, a command's reply) is built directly the first time and
decoded from BSON kept per loaded cassette after that (:func:`decode_cached_document`).
"""

from __future__ import annotations

import datetime
import threading
import uuid
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from timetracer.plugins.pymongo._values import (
    _CACHE_KEY,
    LITERAL,
    MARKERS,
    REPLAY_ENCODE_CODEC,
    _orjson,
    cached_bson,
    encode_stored,
    from_ejson,
)

# A plan describes the containers of a built document: ``(DICT, ((key, plan), ...))`` or
# ``(LIST, length, ((index, plan), ...))``, listing only the items that are containers themselves;
# ``LEAF`` is the plan of an immutable value, and ``None`` that of a value that is not (the
# document is then not kept).
DICT = 0
LIST = 1
LEAF = 2
Plan = Any

# Types a rebuilt value may have and still be shared between uses: immutable, or treated so by
# PyMongo and by apps (an ObjectId or an Int64 has no method that changes it).
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, datetime.datetime, ObjectId, Int64, Decimal128, Timestamp, uuid.UUID}
)

# Where the templates of a result body are kept: ``[(template, copier) or None, ...]``, one entry
# per stored document from the first, and the UUID representation they were built for.
_BUILT_KEY = "_tt_built"
_BUILT_FOR_KEY = "_tt_built_for"
# How far a result's documents have been handed out once (templates are kept from the second use).
_SEEN_KEY = "_tt_seen"
_lock = threading.Lock()


def decode_cached(body: Dict[str, Any], start: int, stop: int, codec_options: CodecOptions) -> List[Any]:
    """Stored documents ``body["data"][start:stop]`` as the live client would decode them.

    With the usual codec options the documents are built directly the first time and copied from
    their templates after that (see the module's text); other options decode BSON kept per
    document, encoded once per loaded cassette.
    """
    data = body.get("data") or []
    stop = min(stop, len(data))
    if start >= stop:
        return []
    if _builds_directly(codec_options):
        built = _templates(body, stop, codec_options)
        if built is not None:
            entries = built[start:stop]
            if None not in entries:
                return [copy(template) for template, copy in entries]
            # A document holding a value the app could change is rebuilt every time.
            return [
                _build_object(data[start + offset], codec_options) if entry is None else entry[1](entry[0])
                for offset, entry in enumerate(entries)
            ]
        docs = _build_directly(data[start:stop], codec_options)
        if docs is not None:
            return docs
    raws = cached_bson(body, start, stop)
    return bson.decode_all(b"".join(raws), codec_options) if raws else []


def decode_cached_document(body: Dict[str, Any], codec_options: CodecOptions) -> Any:
    """The one stored document of a result body (or ``None``), as the live client would decode it:
    built directly from the stored JSON the first time (as :func:`decode_cached` builds a cursor's
    documents), from BSON encoded once per loaded cassette after that."""
    data = body.get("data")
    if data is None:
        return None
    raw = body.get(_CACHE_KEY)
    if type(raw) is not bytes:
        if type(data) is dict and _builds_directly(codec_options):
            with _lock:
                first = not body.get(_SEEN_KEY)
                body[_SEEN_KEY] = 1
            if first:
                built = _build_directly([data], codec_options)
                if built is not None:
                    return built[0]
        raw = body[_CACHE_KEY] = encode_stored(data)
    return bson.decode(raw, codec_options)


def _templates(body: Dict[str, Any], stop: int, codec_options: CodecOptions) -> Optional[List[Any]]:
    """The kept templates of ``body``'s documents, at least up to ``stop``; None the first time
    these documents are handed out (they are built for the app alone: a result replayed once
    costs no more than that), when they cannot be kept for these options (built for another UUID
    representation), or when a document cannot be built directly (the caller says why, through
    BSON)."""
    representation = codec_options.uuid_representation
    with _lock:
        built = body.get(_BUILT_KEY)
        if built is not None and len(built) >= stop:
            return built if body.get(_BUILT_FOR_KEY) == representation else None
        seen = body.get(_SEEN_KEY, 0)
        if seen < stop:
            body[_SEEN_KEY] = stop
            return None
        if built is None:
            built = body[_BUILT_KEY] = []
            body[_BUILT_FOR_KEY] = representation
        elif body.get(_BUILT_FOR_KEY) != representation:
            return None
        data = body["data"]
        entries = []
        try:
            for document in data[len(built) : stop]:
                if type(document) is not dict:
                    return None
                template = _build_object(document, codec_options)
                if type(template) is not dict:
                    return None
                plan = _plan_of(template)
                entries.append(None if plan is None else (template, copier(plan)))
        except Exception:
            return None
        built.extend(entries)
        return built


def copier(plan: Plan) -> Callable[[Any], Any]:
    """A function that copies a container of this plan, and every container inside it."""
    made = _copiers.get(plan)
    if made is None:
        made = _make_copier(plan)
        if len(_copiers) > 4096:
            _copiers.clear()
        _copiers[plan] = made
    return made


_copiers: Dict[Plan, Callable[[Any], Any]] = {}
_copy_dict = dict.copy
_copy_list = list.copy


def _make_copier(plan: Plan) -> Callable[[Any], Any]:
    inner = plan[-1]
    if not inner:
        return _copy_dict if plan[0] == DICT else _copy_list
    if plan[0] == LIST and len(inner) == plan[1] and all(sub == (DICT, ()) for _, sub in inner):
        # A list of flat dicts (the usual array of sub-documents): every element copied in C.
        def copy_dicts(source: List[Any]) -> List[Any]:
            return list(map(_copy_dict, source))

        return copy_dicts
    parts = tuple((where, copier(sub)) for where, sub in inner)

    def copy(source: Any) -> Any:
        out = source.copy()
        for where, copy_part in parts:
            out[where] = copy_part(source[where])
        return out

    return copy


# id(codec options) -> (the options, verdict); the options are held so an id is not reused.
_direct_build: Dict[int, Tuple[CodecOptions, bool]] = {}


def _builds_directly(codec_options: CodecOptions) -> bool:
    """Whether documents for these options can be built from stored JSON without BSON: dict
    documents, naive datetimes, no type decoders (any UUID goes through BSON, value by value)."""
    key = id(codec_options)
    hit = _direct_build.get(key)
    if hit is not None and hit[0] is codec_options:
        return hit[1]
    conversion = getattr(codec_options, "datetime_conversion", None)
    verdict = (
        _orjson is not None
        and codec_options.document_class is dict
        and not codec_options.tz_aware
        and conversion in (None, DatetimeConversion.DATETIME)
        and not getattr(codec_options.type_registry, "_decoder_map", None)
    )
    if len(_direct_build) > 256:
        _direct_build.clear()
    _direct_build[key] = (codec_options, verdict)
    return verdict


def _build_directly(stored: List[Any], codec_options: CodecOptions) -> Optional[List[Any]]:
    """The app's documents for ``stored``: new containers around the stored scalars, each typed
    value rebuilt, exactly as PyMongo decodes it for ``codec_options`` (see
    :func:`_builds_directly`); the stored JSON is left as it is. None when this way cannot be
    sure (the caller goes through BSON, which raises the error that names a bad value).
    """
    docs = []
    try:
        for document in stored:
            built = _build_object(document, codec_options) if type(document) is dict else None
            if type(built) is not dict:
                return None
            docs.append(built)
    except Exception:
        return None
    return docs


# Building a stored document: one walk, for a single use and for a template alike; a template's
# copy plan is then read off the built document (:func:`_plan_of`), once, when it is kept.


def _build_object(value: Dict[str, Any], codec_options: CodecOptions) -> Any:
    # A stored object: a typed value, an escaped user document, or a plain one (copied).
    for first in value:  # the first key only
        if first in MARKERS:
            return _rebuild_marker(value, codec_options)
        if first == LITERAL and len(value) == 1 and type(value[LITERAL]) is dict:
            value = value[LITERAL]
        break
    out = value.copy()  # the scalars copied in C; containers and typed values replaced below
    _build_items(out, value.items(), codec_options)
    return out


def _build_items(out: Any, items: Iterable[Tuple[Any, Any]], codec_options: CodecOptions) -> None:
    for where, item in items:
        kind = type(item)
        if kind is dict:
            # The usual date without the general call (documents are full of them).
            date = item.get("$date") if len(item) == 1 else None
            if type(date) is str and len(date) in _EPOCH_DATE_LENGTHS and date[-1] == "Z" and date[10] == "T":
                out[where] = _from_iso(date[:-1])
            else:
                out[where] = _build_object(item, codec_options)
        elif kind is list:
            copied = item.copy()
            _build_items(copied, enumerate(item), codec_options)
            out[where] = copied
        elif kind is int and not _INT32_MIN <= item <= _INT32_MAX:  # BSON would carry it as an int64
            out[where] = _int64(item)


def _plan_of(value: Any) -> Plan:
    """The plan of a built value (see ``Plan`` above): its containers, LEAF for an immutable
    value, None if anything in it could be changed in place (the document is then not kept)."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return LEAF if kind in _IMMUTABLE else None
    parts = []
    for where, item in value.items() if kind is dict else enumerate(value):
        inner = type(item)
        if inner is dict or inner is list:
            plan = _plan_of(item)
            if plan is None:
                return None
            parts.append((where, plan))
        elif inner not in _IMMUTABLE:
            return None
    return (DICT, tuple(parts)) if kind is dict else (LIST, len(value), tuple(parts))


def _int64(value: int) -> Int64:
    if not -(2**63) <= value < 2**63:
        raise OverflowError("BSON can only handle up to 8-byte ints")
    return Int64(value)


_from_iso = datetime.datetime.fromisoformat


_EPOCH_DATE_LENGTHS = (20, 24)
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


def _rebuild_marker(marker: Dict[str, Any], codec_options: CodecOptions) -> Any:
    # The common markers directly; any other through BSON with the live options, so it is exact.
    if len(marker) == 1:
        date = marker.get("$date")
        if type(date) is str:
            if len(date) in _EPOCH_DATE_LENGTHS and date[-1] == "Z" and date[10] == "T":
                return datetime.datetime.fromisoformat(date[:-1])
        else:
            oid = marker.get("$oid")
            if type(oid) is str and len(oid) == 24:
                return ObjectId(oid)
            number = marker.get("$numberLong")
            if type(number) is str:
                return Int64(int(number))
    wrapped = bson.encode({"v": from_ejson(marker)}, codec_options=REPLAY_ENCODE_CODEC)
    return bson.decode(wrapped, codec_options)["v"]
