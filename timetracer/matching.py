"""Replay matching: answer each live call with the recorded call it corresponds to.

Exact first: recorded calls are grouped by ``(lib, method, url, body_hash)`` and identical calls are
answered in recorded order (a FIFO per key, O(1) however long the cassette). Then, unless strict
mode is on, a fallback pairs a call with the next unused recorded call of the same method and
namespace whose arguments differ *only* in values that legitimately change between runs
(datetimes, ObjectIds, UUIDs) or in fields the user named in ``TIMETRACER_IGNORE_FIELDS``. The
live value then stands for the recorded one for the rest of the session, so a later lookup by an
app-made id still matches exactly. Anything else raises :class:`ReplayMismatchError` showing the
nearest unused recorded calls, field by field.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Type, TypeVar

from timetracer.diff import diff_values
from timetracer.errors import ReplayMismatchError, TimeTracerError
from timetracer.hashing import body_hash, canonical_json

if TYPE_CHECKING:
    from timetracer.config import TraceConfig

logger = logging.getLogger("timetracer")

E = TypeVar("E", bound=TimeTracerError)

Key = Tuple[Any, Any, Any, Any]
MAX_CANDIDATES = 3
MAX_DIFF_LINES = 4

# Extended JSON markers of values an app creates fresh on every run.
_VOLATILE = frozenset({"$date", "$oid", "$uuid"})
_UUID_SUBTYPES = frozenset({"03", "04", "3", "4"})


def event_key(signature: Dict[str, Any]) -> Key:
    return (signature.get("lib"), signature.get("method"), signature.get("url"), signature.get("body_hash"))


def _volatile_kind(value: Any) -> Optional[str]:
    if isinstance(value, dict) and len(value) == 1:
        ((marker, inner),) = value.items()
        if marker in _VOLATILE:
            return marker
        if marker == "$binary" and isinstance(inner, dict) and str(inner.get("subType")) in _UUID_SUBTYPES:
            return "$uuid"
    return None


class _Pairing:
    """Compares recorded and live arguments, allowing only volatile or ignored differences.

    Datetimes may differ anywhere. ObjectIds and UUIDs may differ only inside documents the app
    writes (an app-made ``_id``); in a filter or pipeline they usually come from the request, and a
    different id there is a different query, never a fallback.
    """

    _WRITTEN = frozenset({"document", "documents", "replacement", "update", "requests"})

    def __init__(self, ignore: Tuple[str, ...]) -> None:
        self.ignore = frozenset(ignore)
        self.names = frozenset(name for name in self.ignore if "." not in name)
        self.pairs: List[Tuple[Any, Any]] = []
        self.fields: List[str] = []

    def arguments(self, recorded: Any, live: Any) -> bool:
        if not isinstance(recorded, dict) or not isinstance(live, dict) or recorded.keys() != live.keys():
            return False
        return all(self.same(recorded[k], live[k], "", k) for k in recorded)

    def ignored(self, field: str, arg: str) -> bool:
        """Whether the user ignores ``field`` of argument ``arg``.

        A plain name (``jwt``) is ignored wherever it appears: in a filter, a document, under an
        update operator (``$set.jwt``), in a pipeline stage. A dotted name is a path, given as
        ``meta.ts`` or the way a mismatch message names it, ``document.meta.ts``.
        """
        if not field:
            return False
        if field in self.ignore or f"{arg}.{field}" in self.ignore:
            return True
        return field.rpartition(".")[2] in self.names

    def same(self, recorded: Any, live: Any, field: str, arg: str) -> bool:
        if recorded == live and type(recorded) is type(live):
            return True
        if self.ignored(field, arg):
            self.fields.append(f"{arg}.{field}")
            return True
        kind = _volatile_kind(recorded)
        if kind is not None and kind == _volatile_kind(live) and (kind == "$date" or arg in self._WRITTEN):
            self.pairs.append((live, recorded))
            self.fields.append(f"{arg}.{field}" if field else arg)
            return True
        if isinstance(recorded, dict) and isinstance(live, dict):
            for key in recorded.keys() ^ live.keys():
                path = f"{field}.{key}" if field else str(key)
                if not self.ignored(path, arg):
                    return False
                self.fields.append(f"{arg}.{path}")
            return all(
                self.same(recorded[k], live[k], f"{field}.{k}" if field else str(k), arg)
                for k in recorded.keys() & live.keys()
            )
        if isinstance(recorded, list) and isinstance(live, list) and len(recorded) == len(live):
            return all(self.same(r, v, field, arg) for r, v in zip(recorded, live))
        return False


Index = Tuple[Dict[Key, List[Dict[str, Any]]], Dict[Tuple[Any, Any], List[Dict[str, Any]]]]

# Loaded cassettes are shared (the storage layer parses each file once), so their lookup indexes
# are built once too, not per replayed request: id(cassette) -> (cassette, index). The cassette
# is held so its id cannot be reused while the entry lives.
_indexes: Dict[int, Tuple[Dict[str, Any], Index]] = {}
_indexes_lock = threading.Lock()
_INDEXES_MAX = 64


def _index(cassette: Dict[str, Any]) -> Index:
    """Recorded calls by exact key and by (method, namespace), in recorded order."""
    with _indexes_lock:
        hit = _indexes.get(id(cassette))
        if hit is not None and hit[0] is cassette:
            return hit[1]
    by_key: Dict[Key, List[Dict[str, Any]]] = {}
    by_call: Dict[Tuple[Any, Any], List[Dict[str, Any]]] = {}
    for event in cassette.get("events") or ():
        signature = event["signature"]
        by_key.setdefault(event_key(signature), []).append(event)
        by_call.setdefault((signature.get("method"), signature.get("url")), []).append(event)
    with _indexes_lock:
        if len(_indexes) >= _INDEXES_MAX:
            _indexes.clear()
        _indexes[id(cassette)] = (cassette, (by_key, by_call))
    return by_key, by_call


class Replayer:
    """Serves recorded events to live calls for one replaying session.

    :param cassette: the parsed cassette document.
    :param path: where it was loaded from (named in every error).
    :param config: the settings in force (strict mode, ignored fields).
    """

    def __init__(self, cassette: Dict[str, Any], path: Optional[Path], config: TraceConfig) -> None:
        self.path = path
        self.config = config
        self.events: List[Dict[str, Any]] = cassette.get("events") or []
        self._by_key, self._by_call = _index(cassette)
        # Per key, how far this session has consumed the recorded calls (the FIFO's head).
        self._heads: Dict[Key, int] = {}
        self._used: set[int] = set()
        # Live volatile value (canonical JSON) → the recorded value it stands for.
        self._aliases: Dict[str, Any] = {}
        self._lock = threading.Lock()
        self.calls = 0
        self.matched_exact = 0
        self.matched_fallback = 0
        self.mismatches = 0

    def match(self, signature: Dict[str, Any], args: Any) -> Dict[str, Any]:
        """Return the recorded event for a live call, or raise :class:`ReplayMismatchError`."""
        with self._lock:
            self.calls += 1
            position = self.calls
            if self._aliases:
                args = self._substitute(args)
                signature = dict(signature, body_hash=body_hash(args))
            event = self._exact(event_key(signature))
            if event is not None:
                self.matched_exact += 1
                return event
            if not self.config.strict:
                event = self._fallback(signature, args, position)
                if event is not None:
                    self.matched_fallback += 1
                    return event
            message = self.describe_miss(signature, args, position)
        raise self.miss(message)

    def miss(self, message: str, error: Type[E] = ReplayMismatchError) -> E:  # type: ignore[assignment]
        """Count a call replay cannot answer, log why at WARNING now, and return the error to raise
        (a :class:`ReplayMismatchError`, or ``error``, e.g. :class:`ReplayUnsupportedError`).

        Logged when it happens: the app may catch the error (``except Exception``) and the
        explanation would be lost; counted so the request's verdict is ``mismatch`` either way.
        """
        with self._lock:
            self.mismatches += 1
        logger.warning("timetracer replay mismatch: %s", message)
        return error(message)

    def _exact(self, key: Key) -> Optional[Dict[str, Any]]:
        recorded = self._by_key.get(key)
        if recorded is None:
            return None
        head = self._heads.get(key, 0)
        while head < len(recorded):
            event = recorded[head]
            head += 1
            if id(event) not in self._used:
                self._heads[key] = head
                self._used.add(id(event))
                return event
        self._heads[key] = head
        return None

    def same_calls(self, event: Dict[str, Any]) -> List[Dict[str, Any]]:
        """The recorded events with exactly the arguments of ``event`` (itself included), in order."""
        return self._by_key.get(event_key(event["signature"]), [])

    def exchange(self, held: Dict[str, Any], wanted: Dict[str, Any]) -> None:
        """Give up ``held`` for the unused ``wanted`` (same key): ``held`` can answer a later call.

        Call with :attr:`lock` held.
        """
        key = event_key(held["signature"])
        self._used.discard(id(held))
        self._used.add(id(wanted))
        position = next((n for n, e in enumerate(self._by_key.get(key, ())) if e is held), None)
        if position is not None and position < self._heads.get(key, 0):
            self._heads[key] = position

    @property
    def lock(self) -> threading.Lock:
        """Held while events are matched or exchanged."""
        return self._lock

    def is_used(self, event: Dict[str, Any]) -> bool:
        return id(event) in self._used

    def _fallback(self, signature: Dict[str, Any], args: Any, position: int) -> Optional[Dict[str, Any]]:
        for event in self._by_call.get((signature.get("method"), signature.get("url")), ()):
            if id(event) in self._used:
                continue
            pairing = _Pairing(self.config.ignore_fields)
            if not pairing.arguments(event.get("args"), args):
                continue
            self._used.add(id(event))
            for live, recorded in pairing.pairs:
                self._aliases[canonical_json(live)] = recorded
            logger.info(
                "timetracer replay %s: call #%d %s on %s matched recorded eid=%s by fallback (differs in %s)",
                self.path,
                position,
                signature.get("method"),
                signature.get("url"),
                event.get("eid"),
                ", ".join(sorted(set(pairing.fields))) or "nothing",
            )
            return event
        return None

    def _substitute(self, value: Any) -> Any:
        if isinstance(value, dict):
            if _volatile_kind(value) is not None:
                return self._aliases.get(canonical_json(value), value)
            return {k: self._substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(v) for v in value]
        return value

    def unused(self) -> List[Dict[str, Any]]:
        """Recorded events no live call has used, in recorded order."""
        with self._lock:
            return [event for event in self.events if id(event) not in self._used]

    def _candidates(self, signature: Dict[str, Any]) -> List[Dict[str, Any]]:
        unused = [e for e in self.events if id(e) not in self._used]
        same_call = [
            e
            for e in unused
            if e["signature"].get("method") == signature.get("method")
            and e["signature"].get("url") == signature.get("url")
        ]
        return same_call or unused

    def describe_miss(self, signature: Dict[str, Any], args: Any, position: int) -> str:
        """The mismatch message: the call, the cassette, and the nearest unused calls with diffs."""
        method = signature.get("method")
        url = signature.get("url")
        lines = [
            f"no recorded call matches {method} on {url} (call #{position} of this session)",
            f"  cassette: {self.path if self.path is not None else '<in memory>'}",
            f"  arguments: {_short(args)}",
        ]
        scored = []
        for event in self._candidates(signature):
            differences = diff_values(event.get("args"), args, prefix="")
            same_call = (event["signature"].get("method"), event["signature"].get("url")) == (method, url)
            eid = event.get("eid")
            order = eid if isinstance(eid, int) else 0
            scored.append((0 if same_call else 1, len(differences), order, event, differences))
        scored.sort(key=lambda item: item[:3])
        if not scored:
            lines.append("  the cassette has no unused recorded calls left")
        for _, _, _, event, differences in scored[:MAX_CANDIDATES]:
            sig = event["signature"]
            lines.append(
                f"  nearest: recorded call eid={event.get('eid')} {sig.get('method')} on {sig.get('url')}"
            )
            if (sig.get("method"), sig.get("url")) != (method, url):
                lines.append(f"    method/namespace differ: {sig.get('method')} {sig.get('url')}")
            for line in differences[:MAX_DIFF_LINES]:
                lines.append(f"    {line}")
            if len(differences) > MAX_DIFF_LINES:
                lines.append(f"    ... {len(differences) - MAX_DIFF_LINES} more differences")
        return "\n".join(lines)


def _short(value: Any, limit: int = 300) -> str:
    try:
        text = canonical_json(value)
    except (TypeError, ValueError):  # not JSON (an unconverted BSON type) or mixed key types
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
