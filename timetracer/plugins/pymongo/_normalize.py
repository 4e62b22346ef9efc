"""Normalised call arguments: what identifies a PyMongo call, independent of how it was written.

Only arguments the caller passed are kept; ``None`` and each parameter's default are dropped, as
are options that never change results (session, comment, time limits, batch sizes). Sort, hint
and projection forms are reduced to one shape each, so equal calls hash equal on every PyMongo 4.x.

Normalising never fails: a value Extended JSON cannot hold directly is encoded the way PyMongo
sends it, with the live client's codec options (type registry and fallback encoder included), and
a value PyMongo could not encode either stands as an :data:`UNENCODABLE` marker naming its type
(PyMongo then raises, and that error is what gets recorded and replayed).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import bson

from timetracer.plugins.pymongo._values import raw_to_ejson, to_ejson

# Options that change how a call runs but not what it returns.
IGNORED = frozenset(
    {
        "self",
        "session",
        "comment",
        "max_time_ms",
        "maxTimeMS",
        "batch_size",
        "batchSize",
        "allow_disk_use",
        "allowDiskUse",
        "no_cursor_timeout",
        "allow_partial_results",
        "max_await_time_ms",
        "maxAwaitTimeMS",
        "read_preference",
        "codec_options",
        "check",
        "allow_commands",
        "cursor_type",
        "oplog_replay",
        "snapshot",
        "max_scan",
    }
)

_EMPTY = inspect.Parameter.empty


class Binder:
    """Maps a method's positional and keyword arguments to names, cheaply, once per call.

    Built once per wrapped method from its signature, so it follows the installed PyMongo.
    """

    __slots__ = ("defaults", "names")

    def __init__(self, function: Callable[..., Any], skip: int = 1) -> None:
        params = list(inspect.signature(function).parameters.values())[skip:]
        self.names: Tuple[str, ...] = tuple(
            p.name
            for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        )
        self.defaults: Dict[str, Any] = {p.name: p.default for p in params if p.default is not _EMPTY}

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Dict[str, Any]:
        bound = dict(zip(self.names, args))
        if len(args) > len(self.names):
            bound["*args"] = list(args[len(self.names) :])
        bound.update(kwargs)
        return bound

    def passed(self, bound: Mapping[str, Any]) -> Dict[str, Any]:
        """The arguments that matter: not ignored, not None, not equal to the default."""
        out = {}
        for name, value in bound.items():
            if name in IGNORED or value is None:
                continue
            default = self.defaults.get(name, _EMPTY)
            if default is not _EMPTY and _same(value, default):
                continue
            out[name] = value
        return out


def _same(value: Any, default: Any) -> bool:
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:
        return False


def sort_pairs(value: Any, direction: Any = None) -> List[List[Any]]:
    """Every sort form (``"a"``, ``("a", -1)``, ``[("a", 1)]``, ``{"a": 1}``) as ``[["a", 1]]``."""
    if isinstance(value, str):
        return [[value, _direction(1 if direction is None else direction)]]
    if isinstance(value, Mapping):
        return [[str(k), _direction(v)] for k, v in value.items()]
    pairs: List[List[Any]] = []
    items = list(value)
    if len(items) == 2 and isinstance(items[0], str) and not isinstance(items[1], (str, list, tuple)):
        return [[items[0], _direction(items[1])]]
    for item in items:
        if isinstance(item, str):
            pairs.append([item, 1])
        else:
            key, way = item
            pairs.append([str(key), _direction(way)])
    return pairs


def _direction(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, Mapping):
        return to_ejson(value)
    return value


def projection(value: Any) -> Any:
    """Projection lists become ``{"field": 1}``; booleans become 1/0."""
    if isinstance(value, Mapping):
        return {str(k): (int(v) if isinstance(v, bool) else to_ejson(v)) for k, v in value.items()}
    return {str(field): 1 for field in value}


def hint(value: Any) -> Any:
    return value if isinstance(value, str) else sort_pairs(value)


def collation(value: Any) -> Any:
    document = getattr(value, "document", value)
    return to_ejson(document)


_SHAPERS: Dict[str, Callable[[Any], Any]] = {
    "projection": projection,
    "sort": sort_pairs,
    "hint": hint,
    "collation": collation,
    "max": sort_pairs,
    "min": sort_pairs,
}


def shape(arguments: Mapping[str, Any], codec: Any = None) -> Dict[str, Any]:
    """Extended JSON of each argument, in its one normal form; ``codec``: the live codec options."""
    out: Dict[str, Any] = {}
    for name, value in arguments.items():
        shaper = _SHAPERS.get(name)
        try:
            out[name] = shaper(value) if shaper is not None else to_ejson(value)
        except Exception:
            out[name] = stored(value, codec)
    return out


# The key of the marker standing for a value that neither Extended JSON nor the client's codec
# options can encode: ``{"$timetracer_unencodable": "decimal.Decimal"}``.
UNENCODABLE = "$timetracer_unencodable"
_markers_made = False


def stored(value: Any, codec: Any = None) -> Any:
    """Extended JSON of any argument value; never raises.

    Tried in turn: the direct conversion; BSON encoding with the live ``codec`` options (what
    PyMongo puts on the wire, so custom type codecs are honoured); then part by part, with an
    :data:`UNENCODABLE` marker for each part that cannot be encoded.
    """
    try:
        return to_ejson(value)
    except Exception:
        pass
    if codec is not None:
        try:
            return raw_to_ejson(bson.encode({"v": value}, codec_options=codec))["v"]
        except Exception:
            pass
    return _by_parts(value, codec)


def _by_parts(value: Any, codec: Any) -> Any:
    global _markers_made
    if isinstance(value, Mapping):
        try:
            return {str(k): stored(v, codec) for k, v in value.items()}
        except Exception:
            pass
    elif isinstance(value, (list, tuple)):
        return [stored(v, codec) for v in value]
    _markers_made = True
    kind = type(value)
    return {UNENCODABLE: f"{kind.__module__}.{kind.__qualname__}"}


def has_unencodable(normal: Any) -> bool:
    """Whether normalised arguments hold an :data:`UNENCODABLE` marker (cheap when none was ever made)."""
    if not _markers_made:
        return False
    if isinstance(normal, dict):
        return UNENCODABLE in normal or any(has_unencodable(v) for v in normal.values())
    if isinstance(normal, list):
        return any(has_unencodable(v) for v in normal)
    return False


class IterationFailed(Exception):
    """The app's own iterable raised while timetracer read it; ``error`` is what it raised."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def documents_to_pass(value: Any) -> Tuple[Any, Any]:
    """``(what to pass on to PyMongo, what to normalise)`` for ``insert_many``'s documents.

    A list, a mapping or a non-iterable is passed on untouched (PyMongo refuses the last two with
    its own message); any other iterable may be readable only once, so it is read here, as
    PyMongo would read it before sending anything, and passed on as a list. If reading it raises,
    :class:`IterationFailed` carries the app's exception.
    """
    if type(value) is list or isinstance(value, Mapping) or not isinstance(value, Iterable):
        return value, value
    try:
        documents = list(value)
    except Exception as exc:
        raise IterationFailed(exc) from exc
    return documents, documents


def filter_keys(value: Any) -> List[str]:
    """The filter's top-level keys, as the spec's ``signature.query.filter_keys``."""
    if type(value) is dict:
        return list(map(str, value))
    if isinstance(value, Mapping):
        return [str(k) for k in value.keys()]
    return []


def clean_filter(arguments: Dict[str, Any], key: str = "filter") -> Optional[Any]:
    """Drop an empty filter (``{}`` means the same as none) and return the filter."""
    value = arguments.get(key)
    if isinstance(value, Mapping) and len(value) == 0:
        del arguments[key]
        return None
    return value
