"""BSON values to and from MongoDB Extended JSON, as stored in cassettes.

Values are stored relaxed (plain numbers and strings stay plain, as in the spec's example), with
exact markers where relaxed would lose the type (``Int64`` keeps ``$numberLong``, non-finite floats
keep ``$numberDouble``). On replay, values go back through BSON and are decoded with the *live*
codec options, so the app gets exactly the types its client would have produced.
"""

from __future__ import annotations

import datetime
import math
import threading
from collections.abc import Mapping
from typing import Any, Dict, List, Tuple

import bson
from bson import json_util
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument

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
    converted = json_util.default(value, json_options=JSON_OPTIONS)
    return to_ejson(converted) if isinstance(converted, Mapping) else converted


def _datetime_to_ejson(value: datetime.datetime) -> Any:
    # The common case written directly (documents are full of dates): UTC or naive, 1970-9999,
    # exactly as json_util writes it: seconds, then milliseconds only when there are some.
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
    return out


def from_ejson(value: Any) -> Any:
    """Rebuild BSON types from Extended JSON (the inverse of :func:`to_ejson`)."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            sub = type(item)
            out[key] = from_ejson(item) if sub is dict or sub is list else item
        if out and next(iter(out))[:1] == "$":
            date = out.get("$date")
            if type(date) is str and len(out) == 1 and len(date) in (20, 24) and date[-1] == "Z":
                # What _datetime_to_ejson writes, read back without json_util's general parser.
                return datetime.datetime.fromisoformat(date[:-1]).replace(tzinfo=datetime.timezone.utc)
            return json_util.object_hook(out, json_options=READ_JSON_OPTIONS)
        return out
    if kind is list:
        return [from_ejson(v) if type(v) is dict or type(v) is list else v for v in value]
    return value


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


def capture_document(document: Any, codec_options: CodecOptions) -> Any:
    """A snapshot of a document the app received, taken before the app can change it.

    Returns Extended JSON at once where that is exact and cheap, else BSON bytes that
    :func:`stored_document` converts later.
    """
    if type(document) is dict and _decodes_plainly(codec_options):
        return _dict_to_ejson(document)
    return snapshot(document, codec_options)


def stored_document(captured: Any) -> Any:
    """Extended JSON of what :func:`capture_document` returned."""
    return raw_to_ejson(captured) if type(captured) is bytes else captured


def snapshot(document: Any, codec_options: CodecOptions) -> bytes:
    """BSON bytes of a document as it is now (the app may change it later)."""
    if isinstance(document, RawBSONDocument):
        return bytes(document.raw)
    return bson.encode(document, codec_options=codec_options)


def snapshot_value(value: Any, codec_options: CodecOptions) -> bytes:
    """BSON bytes of any value, wrapped as ``{"v": value}``."""
    return bson.encode({"v": value}, codec_options=codec_options)


def raw_to_ejson(raw: bytes) -> Any:
    """Extended JSON of a document captured by :func:`snapshot`."""
    return to_ejson(bson.decode(raw, CAPTURE_CODEC))


def encode_stored(document: Any) -> bytes:
    """BSON bytes of a stored (Extended JSON) document, ready for a live decode."""
    return bson.encode(from_ejson(document), codec_options=REPLAY_ENCODE_CODEC)


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
        while len(cache) < stop:
            cache.append(encode_stored(data[len(cache)]))
        return cache[start:stop]


def decode_cached(body: Dict[str, Any], start: int, stop: int, codec_options: CodecOptions) -> List[Any]:
    """Stored documents ``[start:stop]`` decoded exactly as the live client would decode them."""
    raws = cached_bson(body, start, stop)
    return bson.decode_all(b"".join(raws), codec_options) if raws else []


def decode_cached_document(body: Dict[str, Any], codec_options: CodecOptions) -> Any:
    """The one stored document of a result body (or ``None``), decoded with the live codec."""
    data = body.get("data")
    if data is None:
        return None
    raw = body.get(_CACHE_KEY)
    if type(raw) is not bytes:
        raw = body[_CACHE_KEY] = encode_stored(data)
    return bson.decode(raw, codec_options)


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
