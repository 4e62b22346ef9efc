"""Fast JSON for cassette files: orjson when it is installed (``timetracer[fast]``), else ``json``.

Plain cassettes stay indented for review, but only down to :data:`PRETTY_DEPTH`: every value
below that (each stored document of a result, at ``events[i].result.body.data[j]``) is written
compact on one line of its own. The standard library indents in pure Python, one call per value;
this way the Python walk covers only the few containers of the outline and each document is one
call into C. The file is the same JSON, with the same schema, either way.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, List, Optional

try:  # optional: timetracer[fast]
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    _orjson = None

# Containers nested less deeply than this are indented; deeper values are written compact.
# 6 puts each document of ``events[i].result.body.data`` on a line of its own.
PRETTY_DEPTH = 6

_COMPACT = (",", ":")
# Every digit read as "0", to find runs of 19+ digits with one C substring search.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


class JsonText(bytes):
    """A value written as compact UTF-8 JSON already (a recorded document): the cassette writer
    copies it into the file as it is."""

    __slots__ = ()


def _as_fragment(value: Any) -> Any:
    # orjson meets a JsonText (bytes, which it has no type for): its JSON, as it is.
    if type(value) is JsonText:
        return _orjson.Fragment(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def have_orjson() -> bool:
    """Whether the C JSON library (orjson) is in use."""
    return _orjson is not None


def has_nonfinite(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return not math.isfinite(value)
    if kind is dict:
        return any(has_nonfinite(v) for v in value.values())
    if kind is list or kind is tuple:
        return any(has_nonfinite(v) for v in value)
    return False


def _fragment_value(value: Any) -> Any:
    # json.dumps meets a JsonText: its value.
    if type(value) is JsonText:
        return json.loads(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _stdlib_compact(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=_COMPACT, default=_fragment_value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: written as a \\uXXXX escape
        return json.dumps(value, ensure_ascii=True, separators=_COMPACT, default=_fragment_value).encode("ascii")


def materialize(value: Any) -> Any:
    """``value``, or what it holds if it is a :class:`JsonText`."""
    if type(value) is JsonText:
        return loads(value)
    return value


def compact(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, exactly what ``json.dumps`` would mean (key order kept)."""
    if _orjson is not None:
        try:
            out = _orjson.dumps(value, default=_as_fragment)
        except (TypeError, ValueError):  # big ints, lone surrogates, non-str keys: stdlib below
            pass
        else:
            # orjson writes NaN and infinities as null; json writes them as NaN / Infinity.
            if b"null" not in out or not has_nonfinite(value):
                return out
    return _stdlib_compact(value)


def dumps(document: Any, *, indent: Optional[int] = 2) -> bytes:
    """UTF-8 JSON of ``document``: indented down to :data:`PRETTY_DEPTH`, or compact if ``indent`` is None."""
    if indent is None:
        return compact(document) if _orjson is not None else _stdlib_compact(document)
    parts: List[bytes] = []
    _pretty(document, 0, indent, parts.append)
    return b"".join(parts)


def _pretty(value: Any, depth: int, indent: int, emit: Callable[[bytes], Any]) -> None:
    kind = type(value)
    if kind is JsonText:
        emit(value)
        return
    if depth >= PRETTY_DEPTH or (kind is not dict and kind is not list) or not value:
        emit(compact(value))
        return
    inner = b"\n" + b" " * (indent * (depth + 1))
    if kind is dict:
        emit(b"{")
        first = True
        for key, item in value.items():
            emit(inner if first else b"," + inner)
            first = False
            emit(compact(key if type(key) is str else _key(key)))
            emit(b": ")
            _pretty(item, depth + 1, indent, emit)
        emit(b"\n" + b" " * (indent * depth) + b"}")
    elif all(type(item) is JsonText for item in value):  # recorded documents: copied as they are
        emit(b"[" + inner + (b"," + inner).join(value) + b"\n" + b" " * (indent * depth) + b"]")
    else:
        emit(b"[")
        first = True
        for item in value:
            emit(inner if first else b"," + inner)
            first = False
            _pretty(item, depth + 1, indent, emit)
        emit(b"\n" + b" " * (indent * depth) + b"]")


def _key(key: Any) -> str:
    # What json.dumps does with a non-string key of a plain type.
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, float):
        return json.dumps(key)
    if isinstance(key, (int, str)):
        return str(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def loads(text: bytes) -> Any:
    """Parse UTF-8 JSON (a leading byte order mark is allowed)."""
    if text[:3] == b"\xef\xbb\xbf":
        text = text[3:]
    # orjson reads integers beyond 64 bits as floats: any run of 19+ digits goes to the stdlib.
    if _orjson is not None and _LONG_RUN not in text.translate(_DIGITS_AS_ZERO):
        try:
            return _orjson.loads(text)
        except ValueError:  # NaN literals, big ints, lone surrogate escapes, deep nesting: stdlib
            pass
    return json.loads(text.decode("utf-8"))
