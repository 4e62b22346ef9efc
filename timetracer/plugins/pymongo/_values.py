"""BSON values to and from MongoDB Extended JSON, as stored in cassettes.

Values are stored relaxed (plain numbers and strings stay plain, as in the spec's example), with
exact markers where relaxed would lose the type (``Int64`` keeps ``$numberLong``, non-finite floats
keep ``$numberDouble``). On replay, values go back through BSON and are decoded with the *live*
codec options, so the app gets exactly the types its client would have produced.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, List, Mapping

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
    if kind is Int64:
        return {"$numberLong": str(int(value))}
    if kind is float:
        if math.isfinite(value):
            return value
        return {"$numberDouble": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, RawBSONDocument):
        return to_ejson(bson.decode(value.raw, CAPTURE_CODEC))
    if isinstance(value, Mapping):
        return {str(k): to_ejson(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_ejson(v) for v in value]
    converted = json_util.default(value, json_options=JSON_OPTIONS)
    return to_ejson(converted) if isinstance(converted, Mapping) else converted


def from_ejson(value: Any) -> Any:
    """Rebuild BSON types from Extended JSON (the inverse of :func:`to_ejson`)."""
    if isinstance(value, dict):
        converted = {k: from_ejson(v) for k, v in value.items()}
        if converted and next(iter(converted)).startswith("$"):
            return json_util.object_hook(converted, json_options=READ_JSON_OPTIONS)
        return converted
    if isinstance(value, list):
        return [from_ejson(v) for v in value]
    return value


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
