"""BSON values to and from MongoDB Extended JSON, as stored in cassettes.

Values are stored relaxed (plain numbers and strings stay plain, as in the spec's example), with
exact markers where relaxed would lose the type (``Int64`` keeps ``$numberLong``, non-finite floats
keep ``$numberDouble``). On replay, values go back through BSON and are decoded with the *live*
codec options, so the app gets exactly the types its client would have produced.

A type marker is an object whose *first* key is one of :data:`MARKERS`. A user's own document
that starts with such a key (``{"$oid": "x"}``, ``{"$numberLong": "5"}``) is stored escaped, as
``{"$tt_literal": {...}}``: its keys are taken literally, its values are Extended JSON as usual
(schema_version 1.1; 1.0 cassettes had no escape and read as before).
"""

from __future__ import annotations

import datetime
import json
import math
import re
import threading
from collections.abc import Mapping
from typing import Any, Dict, Iterable, List, Optional, Tuple

import bson
import bson.tz_util
from bson import json_util
from bson.binary import UuidRepresentation
from bson.code import Code
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.dbref import DBRef
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument

from timetracer.cassette._json import JsonText, compact, has_nonfinite

try:  # optional (timetracer[fast]): documents converted in C
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    _orjson = None
else:
    # Snapshots: dates, subclasses of int/str/dict (Int64, Code, SON) reach the ``default`` hook.
    _SNAPSHOT_OPTIONS = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_SUBCLASS
    _DATE_OPTIONS = _orjson.OPT_NAIVE_UTC | _orjson.OPT_UTC_Z

# How stored values are written as Extended JSON (a uuid.UUID in a filter is written as subtype 4).
JSON_OPTIONS = json_util.JSONOptions(
    json_mode=json_util.JSONMode.RELAXED,
    uuid_representation=UuidRepresentation.STANDARD,
    tz_aware=True,
    tzinfo=datetime.timezone.utc,
)
# How they are read back: every binary stays a Binary with its recorded subtype (a STANDARD
# read would turn subtype 3 into a uuid.UUID, re-encoded as subtype 4), and dates out of
# datetime's range stay DatetimeMS, so the live decode sees the bytes the server sent.
READ_JSON_OPTIONS = json_util.JSONOptions(
    json_mode=json_util.JSONMode.RELAXED,
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    tz_aware=True,
    tzinfo=datetime.timezone.utc,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)
# Decoding captured BSON for storage: UUIDs stay Binary (subtype kept), datetimes stay exact.
CAPTURE_CODEC = CodecOptions(
    tz_aware=True,
    tzinfo=datetime.timezone.utc,
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)
# Encoding values read back from a cassette before the live decode.
REPLAY_ENCODE_CODEC = CodecOptions(tz_aware=True, uuid_representation=UuidRepresentation.STANDARD)

_PLAIN = frozenset({str, bool, type(None), int})

# The key that wraps a user document whose first key would read as a type marker.
LITERAL = "$tt_literal"
# Keys that make an object a type marker when they come first: what this module writes, plus the
# other canonical Extended JSON markers a person may write by hand. ``$regex`` is not one (it is
# also a query operator, and the legacy regex form is never written), so ``{"$regex": ...}``
# filters are stored as they are.
MARKERS = frozenset(
    {
        "$oid",
        "$date",
        "$numberLong",
        "$numberDouble",
        "$numberDecimal",
        "$numberInt",
        "$binary",
        "$uuid",
        "$regularExpression",
        "$timestamp",
        "$minKey",
        "$maxKey",
        "$code",
        "$ref",
        "$symbol",
        "$dbPointer",
        "$undefined",
    }
)
_ESCAPED = MARKERS | {LITERAL}


def to_ejson(value: Any) -> Any:
    """Convert a Python/BSON value into JSON-ready Extended JSON (relaxed, exact where needed)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return _dict_to_ejson(value)
    if kind is list:
        return [v if type(v) in _PLAIN else to_ejson(v) for v in value]
    if kind is datetime.datetime:
        return _datetime_to_ejson(value)
    if kind is Int64:
        return {"$numberLong": str(int(value))}
    if kind is float:
        if math.isfinite(value):
            return value
        return {"$numberDouble": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, RawBSONDocument):
        return to_ejson(bson.decode(value.raw, CAPTURE_CODEC))
    if isinstance(value, Mapping):
        return _dict_to_ejson(value)
    if isinstance(value, (list, tuple)):
        return [to_ejson(v) for v in value]
    if isinstance(value, DBRef):
        ref: Dict[str, Any] = {"$ref": value.collection, "$id": to_ejson(value.id)}
        if value.database is not None:
            ref["$db"] = value.database
        for key, item in _dbref_extras(value).items():
            ref[str(key)] = to_ejson(item)
        return ref
    if isinstance(value, Code):
        code: Dict[str, Any] = {"$code": str(value)}
        if value.scope is not None:
            code["$scope"] = to_ejson(value.scope)
        return code
    converted = json_util.default(value, json_options=JSON_OPTIONS)
    return _json_ready(converted) if isinstance(converted, Mapping) else converted


def _json_ready(marker: Any) -> Any:
    # A marker made by json_util (its parts are plain JSON, in SON on old PyMongo): copied as is.
    if isinstance(marker, Mapping):
        return {key: _json_ready(item) for key, item in marker.items()}
    return marker


def _dbref_extras(value: DBRef) -> Mapping[str, Any]:
    extras = value.as_doc()
    return {k: v for k, v in extras.items() if k not in ("$ref", "$id", "$db")}


_UTC = datetime.timezone.utc


def _datetime_to_ejson(value: datetime.datetime) -> Any:
    # The common case written directly (documents are full of dates): UTC or naive, 1970-9999,
    # exactly as json_util writes it: seconds, then milliseconds only when there are some.
    zone = value.tzinfo
    if (zone is None or zone is _UTC) and value.year >= 1970:  # the usual dates: one C call
        text = value.isoformat(timespec="milliseconds")[:23]
        return {"$date": text[:19] + "Z" if text[19:] == ".000" else text + "Z"}
    offset = value.utcoffset()
    if not offset and 1970 <= value.year <= 9999:
        millis = value.microsecond // 1000
        text = value.replace(tzinfo=None, microsecond=0).isoformat()
        return {"$date": f"{text}.{millis:03d}Z" if millis else f"{text}Z"}
    return json_util.default(value, json_options=JSON_OPTIONS)


def _dict_to_ejson(mapping: Mapping[Any, Any]) -> Dict[str, Any]:
    # The hot loop of recording: plain values are copied without a call per value.
    out: Dict[str, Any] = {}
    for key, item in mapping.items():
        out[key if type(key) is str else str(key)] = item if type(item) in _PLAIN else to_ejson(item)
    if out and next(iter(out)) in _ESCAPED:
        return {LITERAL: out}
    return out


def from_ejson(value: Any) -> Any:
    """Rebuild BSON types from Extended JSON (the inverse of :func:`to_ejson`)."""
    kind = type(value)
    if kind is dict:
        if len(value) == 1 and LITERAL in value and type(value[LITERAL]) is dict:
            # An escaped user document: its keys are literal, only its values are decoded.
            return {key: from_ejson(item) for key, item in value[LITERAL].items()}
        out = {}
        for key, item in value.items():
            sub = type(item)
            out[key] = from_ejson(item) if sub is dict or sub is list else item
        if out:
            first = next(iter(out))
            if first in MARKERS:
                date = out.get("$date")
                if type(date) is str and len(out) == 1 and len(date) in (20, 24) and date[-1] == "Z":
                    # What _datetime_to_ejson writes, read back without json_util's general parser.
                    return datetime.datetime.fromisoformat(date[:-1]).replace(tzinfo=datetime.timezone.utc)
                return json_util.object_hook(out, json_options=READ_JSON_OPTIONS)
        return out
    if kind is list:
        return [from_ejson(v) if type(v) is dict or type(v) is list else v for v in value]
    return value


def from_ejson_many(stored: List[Any]) -> List[Any]:
    """:func:`from_ejson` of each stored document, the walk done in C where it can be.

    With orjson: the documents are written back to JSON in C and parsed by the standard
    library's C parser, which calls Python only for each object (:func:`_marker_hook`), not for
    each value. Documents holding the ``$tt_literal`` escape (its inner object must not be read
    as a marker) or a non-finite float go through :func:`from_ejson`.
    """
    if _orjson is None or not stored:
        return [from_ejson(document) for document in stored]
    try:
        text = _orjson.dumps(stored)
    except TypeError:  # an integer beyond 64 bits (hand-edited cassette)
        return [from_ejson(document) for document in stored]
    if b'"$tt_literal"' in text or (b"null" in text and has_nonfinite(stored)):
        return [from_ejson(document) for document in stored]
    return json.loads(text, object_hook=_marker_hook)


def _marker_hook(out: Dict[str, Any]) -> Any:
    # from_ejson for one object whose values are already converted (the parser works inside out).
    for first in out:  # the first key only
        if first in MARKERS:
            date = out.get("$date")
            if type(date) is str and len(out) == 1 and len(date) in (20, 24) and date[-1] == "Z":
                return datetime.datetime.fromisoformat(date[:-1] + "+00:00")
            return json_util.object_hook(out, json_options=READ_JSON_OPTIONS)
        return out
    return out


_PLAIN_UUIDS = frozenset({UuidRepresentation.UNSPECIFIED, UuidRepresentation.STANDARD})
# id(codec options) -> (the options, verdict); the options are held so an id is never reused
# for other options while its entry lives.
_direct: Dict[int, Tuple[CodecOptions, bool]] = {}


def _decodes_plainly(codec_options: CodecOptions) -> bool:
    """Whether documents decoded with these options convert to Extended JSON directly.

    True for the usual options (dict documents, no custom decoders, UUIDs unspecified or
    standard): their values are already what :func:`to_ejson` stores. Other options (legacy
    UUIDs, SON or custom classes, type codecs) go through BSON first, so nothing is lost.
    """
    key = id(codec_options)
    hit = _direct.get(key)
    if hit is not None and hit[0] is codec_options:
        return hit[1]
    registry = codec_options.type_registry
    known = (
        codec_options.document_class is dict
        and codec_options.uuid_representation in _PLAIN_UUIDS
        and not getattr(registry, "_decoder_map", None)
        and getattr(registry, "_fallback_encoder", None) is None
    )
    if len(_direct) > 256:
        _direct.clear()
    _direct[key] = (codec_options, known)
    return known


# (id(codec options), write) -> (the options, the reply options); held so an id is not reused.
_replies: Dict[Tuple[int, bool], Tuple[CodecOptions, CodecOptions]] = {}


def reply_codec(codec_options: CodecOptions, *, write: bool = False) -> CodecOptions:
    """The options PyMongo decodes a command reply's own fields with (an error's details, a write
    result), as opposed to the documents it returns: the type registry's decoders are not applied;
    write replies always have dict documents and replace bad UTF-8
    (``Collection._write_response_codec_options``)."""
    key = (id(codec_options), write)
    hit = _replies.get(key)
    if hit is not None and hit[0] is codec_options:
        return hit[1]
    options: Dict[str, Any] = {"type_registry": None}
    if write:
        options["document_class"] = dict
        options["unicode_decode_error_handler"] = "replace"
    reply = codec_options.with_options(**options)
    if len(_replies) > 256:
        _replies.clear()
    _replies[key] = (codec_options, reply)
    return reply


def capture_document(document: Any, codec_options: CodecOptions) -> Any:
    """A snapshot of a document the app received, taken before the app can change it.

    Returns Extended JSON at once where that is exact and cheap, else BSON bytes that
    :func:`stored_document` converts later. (Measured on the 1 KB documents of ``make bench``:
    the direct walk costs less than a BSON snapshot converted later through orjson, whose
    callback runs once per date, id or ``Int64``.)
    """
    if type(document) is dict and _decodes_plainly(codec_options):
        return _dict_to_ejson(document)
    return snapshot(document, codec_options)


def capture_batch(documents: Iterable[Any], codec_options: CodecOptions) -> List[Any]:
    """Snapshots of a batch of documents PyMongo just decoded, before the app has any of them.

    With orjson and the usual codec options, the whole batch is written to its final JSON at
    once, in one C call (:func:`_json_snapshots`): a
    :class:`~timetracer.cassette._json.JsonText` per document, which the cassette writer copies as
    it is. A batch that call cannot write exactly goes document by document
    (:func:`_json_snapshot`), and anything else through :func:`capture_document`.
    """
    if _orjson is None or not _decodes_plainly(codec_options):
        return [capture_document(document, codec_options) for document in documents]
    # orjson writes a uuid.UUID (what subtype 4 decodes to with a STANDARD client) as a plain
    # string, without asking: such output is looked for, and a document with any goes the long way.
    uuids = codec_options.uuid_representation != UuidRepresentation.UNSPECIFIED
    batch = documents if type(documents) is list else list(documents)
    if all(type(document) is dict for document in batch):
        whole = _json_snapshots(batch, uuids)
        if whole is not None:
            return whole
    out = []
    for document in batch:
        snap = _json_snapshot(document, uuids) if type(document) is dict else None
        out.append(capture_document(document, codec_options) if snap is None else snap)
    return out


_BSON_UTC = bson.tz_util.utc


# How orjson writes a uuid.UUID.
_UUID_TEXT = re.compile(rb'"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"')
if _orjson is not None:
    # Put between the documents of a batch written in one call: orjson copies a fragment as it
    # is, and never writes a raw NUL byte itself (it escapes one in a string as \u0000), so
    # ``,\0,`` in the output is exactly where one document ends and the next begins.
    _BETWEEN = _orjson.Fragment(b"\x00")


def _dumps_stored(value: Any) -> Tuple[bytes, int]:
    """``value`` (a document, or a list of them) written by orjson in one call, every value JSON has
    no type for (dates, ids, ``Int64``, binaries...) as its Extended JSON marker; and how many
    ``{"$`` a marker put in the output."""
    made = 0

    def marker(value: Any) -> Any:
        nonlocal made
        kind = type(value)
        if kind is datetime.datetime:
            zone = value.tzinfo
            if (zone is None or zone is _UTC or zone is _BSON_UTC) and value.year >= 1970:
                made += 1
                text = _orjson.dumps(value, option=_DATE_OPTIONS)  # "YYYY-MM-DDTHH:MM:SS[.ffffff]Z"
                if len(text) == 29:  # milliseconds kept, like json_util; none when they are 0
                    text = text[:20] + b'Z"' if text[21:24] == b"000" else text[:24] + b'Z"'
                return _orjson.Fragment(b'{"$date":' + text + b"}")
        elif kind is ObjectId:
            made += 1
            return _orjson.Fragment(b'{"$oid":"' + value.binary.hex().encode() + b'"}')
        elif kind is Int64:
            made += 1
            return _orjson.Fragment(b'{"$numberLong":"%d"}' % value)
        piece = _orjson.dumps(to_ejson(value))
        made += piece.count(b'{"$')
        return _orjson.Fragment(piece)

    out = _orjson.dumps(value, default=marker, option=_SNAPSHOT_OPTIONS)
    return out, made


def _json_snapshot(document: Dict[str, Any], uuids: bool = False) -> Any:
    """A document's stored JSON, written by orjson in one call: the compact bytes of
    ``_dict_to_ejson(document)``, exactly.

    orjson hands over only what JSON has no type for, and each comes back as its marker
    (:func:`_dumps_stored`). The result is checked, cheaply, for the two things orjson cannot do:
    a user object whose first key starts with ``$`` (it may need the ``$tt_literal`` escape: every
    ``{"$`` in the output must be one of the markers written here) and a non-finite float (orjson
    writes ``null``). Either, or any error, means the exact Python walk instead. With ``uuids``
    (the client decodes UUIDs), text that may be a uuid.UUID written as a string means None: the
    caller converts that document another way.
    """
    try:
        out, made = _dumps_stored(document)
    except (TypeError, ValueError):  # e.g. a key that is not a string: the exact walk says what to do
        return _dict_to_ejson(document)
    if uuids and _UUID_TEXT.search(out) is not None:
        return None
    if (out.count(b"$") != made and out.count(b'{"$') != made) or (b"null" in out and has_nonfinite(document)):
        return _dict_to_ejson(document)  # (one-byte count first: see _json_snapshots)
    return JsonText(out)


def _json_snapshots(documents: List[Dict[str, Any]], uuids: bool) -> Optional[List[Any]]:
    """What :func:`_json_snapshot` gives for each document, written by one orjson call for the
    whole batch and cut apart at the separators; None if any document needs more than that
    call (then the caller goes document by document). A document with a ``null`` that stands for
    a non-finite float is written the exact way, alone."""
    count = len(documents)
    if count == 0:
        return []
    sequence: List[Any] = [_BETWEEN] * (2 * count - 1)
    sequence[::2] = documents
    try:
        out, made = _dumps_stored(sequence)
    except (TypeError, ValueError):
        return None
    # Every ``{"$`` must be a marker's. Counting one byte is the quicker scan, and enough when
    # each ``$`` in the output is a marker's; else the markers' own prefix is counted.
    if (out.count(b"$") != made and out.count(b'{"$') != made) or (uuids and _UUID_TEXT.search(out) is not None):
        return None
    # "[doc,\0,doc,\0, ... ,doc]": each document is cut out at once (find is a memchr).
    texts: List[Any] = []
    find = out.find
    start = 1
    for _ in range(count - 1):
        end = find(b"\x00", start)
        if end < 0:  # cannot happen (see _BETWEEN); never cut documents wrongly
            return None
        texts.append(JsonText(out[start : end - 1]))
        start = end + 2
    if find(b"\x00", start) >= 0:
        return None
    texts.append(JsonText(out[start:-1]))
    if b"null" in out:
        for index, part in enumerate(texts):
            if b"null" in part and has_nonfinite(documents[index]):
                texts[index] = _dict_to_ejson(documents[index])
    return texts


def stored_document(captured: Any) -> Any:
    """Extended JSON of what :func:`capture_document` returned."""
    return raw_to_ejson(captured) if type(captured) is bytes else captured


def _as_text(stored: Any) -> JsonText:
    return stored if type(stored) is JsonText else JsonText(compact(stored))


def stored_json(document: Any, codec_options: CodecOptions) -> JsonText:
    """The stored JSON of one document the app received (``find_one``'s, a command's reply),
    taken now: written in C where :func:`capture_batch` can, else converted and written."""
    if type(document) is dict and _orjson is not None and _decodes_plainly(codec_options):
        uuids = codec_options.uuid_representation != UuidRepresentation.UNSPECIFIED
        snap = _json_snapshot(document, uuids)  # as capture_batch does, for one document
        if type(snap) is JsonText:
            return snap
        if snap is not None:
            return _as_text(snap)
    return _as_text(stored_document(capture_document(document, codec_options)))


_ONLY_TEXT = frozenset({JsonText})


def stored_documents(captured: List[Any]) -> List[JsonText]:
    """The stored JSON of each captured document (BSON snapshots decoded in one call)."""
    if set(map(type, captured)) <= _ONLY_TEXT:  # the usual batch: written at capture already
        return list(captured)
    where = [i for i, doc in enumerate(captured) if type(doc) is bytes]
    out = list(captured)
    if where:
        decoded = bson.decode_all(b"".join([captured[i] for i in where]), CAPTURE_CODEC)
        for i, doc in zip(where, decoded):
            out[i] = to_ejson(doc)
    return [_as_text(doc) for doc in out]


def snapshot(document: Any, codec_options: CodecOptions) -> bytes:
    """BSON bytes of a document as it is now (the app may change it later)."""
    if isinstance(document, RawBSONDocument):
        return bytes(document.raw)
    return encode_in_order(document, codec_options)


def encode_in_order(document: Any, codec_options: CodecOptions) -> bytes:
    """BSON bytes of a document with its keys in its own order.

    ``bson.encode`` writes a top-level ``_id`` first; a document the server returned with ``_id``
    elsewhere (after ``$project``, ``$replaceRoot``...) must keep its order, so the document is
    encoded nested (where nothing moves) and cut out: a 4-byte length, the type byte and the
    empty key ``""`` (1 byte) precede it, and the outer document's closing byte follows.
    """
    return bson.encode({"": document}, codec_options=codec_options)[6:-1]


def snapshot_value(value: Any, codec_options: CodecOptions) -> bytes:
    """BSON bytes of any value, wrapped as ``{"v": value}``."""
    return bson.encode({"v": value}, codec_options=codec_options)


def raw_to_ejson(raw: bytes) -> Any:
    """Extended JSON of a document captured by :func:`snapshot`."""
    return to_ejson(bson.decode(raw, CAPTURE_CODEC))


def encode_stored(document: Any) -> bytes:
    """BSON bytes of a stored (Extended JSON) document, ready for a live decode."""
    return encode_in_order(from_ejson(document), REPLAY_ENCODE_CODEC)


# Stored documents are turned into BSON once per loaded cassette (cassettes are parsed once and
# shared), kept beside the data under this key of the result body.
_CACHE_KEY = "_tt_bson"
_cache_lock = threading.Lock()


def cached_bson(body: Dict[str, Any], start: int, stop: int) -> List[bytes]:
    """BSON bytes of the stored documents ``body["data"][start:stop]``, each encoded only once."""
    data = body.get("data") or []
    stop = min(stop, len(data))
    with _cache_lock:
        cache = body.get(_CACHE_KEY)
        if cache is None:
            cache = body[_CACHE_KEY] = []
        if len(cache) < stop:
            for document in from_ejson_many(data[len(cache) : stop]):
                cache.append(encode_in_order(document, REPLAY_ENCODE_CODEC))
        return cache[start:stop]


def decode_documents(stored: List[Any], codec_options: CodecOptions) -> List[Any]:
    """Stored documents decoded exactly as the live client would decode them."""
    if not stored:
        return []
    data = b"".join(encode_stored(doc) for doc in stored)
    return bson.decode_all(data, codec_options)


def decode_document(stored: Any, codec_options: CodecOptions) -> Any:
    """One stored document (or ``None``) decoded with the live codec options."""
    if stored is None:
        return None
    return bson.decode(encode_stored(stored), codec_options)


def decode_value(stored: Any, codec_options: CodecOptions, *, from_reply: bool = False) -> Any:
    """Any stored value (id, list, number) decoded with the live codec options.

    Documents inside it are dicts (as in ids the app passed), unless ``from_reply``: a value
    PyMongo takes out of a server reply (``distinct``'s values) has the codec's document class.
    """
    wrapped = bson.encode({"v": from_ejson(stored)}, codec_options=REPLAY_ENCODE_CODEC)
    if not from_reply:
        codec_options = codec_options.with_options(document_class=dict)
    return bson.decode(wrapped, codec_options)["v"]
