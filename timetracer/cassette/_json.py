"""Fast JSON for cassette files: orjson when it is installed (``timetracer[fast]``), else ``json``.

Plain cassettes are indented for review, and each recorded document (a :class:`JsonText`, what
recording stores every result document as) is written compact on one line of its own. With orjson
the whole file is one call into C; the standard library's fallback writes the same text.

orjson writes NaN and infinities as ``null``. Recording never stores one as a number (Extended
JSON marks them ``{"$numberDouble": "NaN"}``), so the writer searches for them only outside a
:class:`FiniteList` (the events of a cassette being written), and falls back to the standard
library, which keeps them, when it finds one.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, List, Optional

try:  # optional: timetracer[fast]
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    _orjson = None

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
        return _orjson.Fragment(bytes(value))  # orjson takes exactly bytes, not a subclass
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


class FiniteList(list):  # type: ignore[type-arg]
    """A list whose values hold no non-finite float: timetracer built them from Extended JSON,
    which marks NaN and infinities. :func:`has_nonfinite` does not search it."""

    __slots__ = ()


def have_orjson() -> bool:
    """Whether the C JSON library (orjson) is in use."""
    return _orjson is not None


def has_nonfinite(value: Any) -> bool:
    """Whether ``value`` holds a NaN or an infinity (a :class:`FiniteList` is not searched).

    Asked of every recorded document whose JSON has a ``null`` (a None, or a float orjson could
    not write), so it walks with a stack, not a call per value: ``x - x`` is 0.0 for a finite
    float and NaN for the others."""
    kind = type(value)
    if kind is float:
        return not math.isfinite(value)
    if kind is not dict and kind is not list and kind is not tuple:
        return False
    stack = [value]
    push, pop = stack.append, stack.pop
    while stack:
        container = pop()
        for item in container.values() if type(container) is dict else container:
            kind = type(item)
            if kind is float:
                if item - item != 0.0:
                    return True
            elif kind is dict or kind is list or kind is tuple:
                push(item)
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
    """UTF-8 JSON of ``document``: indented (each :class:`JsonText` on one line), or compact if
    ``indent`` is None."""
    if indent is None:
        return compact(document) if _orjson is not None else _stdlib_compact(document)
    if indent == 2 and _orjson is not None:
        try:
            out = _orjson.dumps(document, default=_as_fragment, option=_orjson.OPT_INDENT_2)
        except (TypeError, ValueError):  # big ints, lone surrogates, non-str keys: written below
            pass
        else:
            if b"null" not in out or not has_nonfinite(document):
                return out  # type: ignore[no-any-return]
    parts: List[bytes] = []
    _pretty(document, 0, indent, parts.append)
    return b"".join(parts)


def _pretty(value: Any, depth: int, indent: int, emit: Callable[[bytes], Any]) -> None:
    # What orjson's OPT_INDENT_2 writes, for any indent and for what orjson cannot write.
    kind = type(value)
    if kind is JsonText:
        emit(value)
        return
    if kind is FiniteList:
        kind = list
    if (kind is not dict and kind is not list) or not value:
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
