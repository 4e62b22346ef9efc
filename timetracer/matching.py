"""Replay matching: answer each live call with the recorded call it corresponds to.

Recorded calls are grouped by ``(lib, method, url, body_hash)``; identical calls are answered in
recorded order (a FIFO per key, so lookup stays O(1) however long the cassette). A call with no
match raises :class:`ReplayMismatchError` that shows the nearest unused recorded calls.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Deque, Dict, Iterator, List, Optional, Tuple

from timetracer.diff import diff_values
from timetracer.errors import ReplayMismatchError

if TYPE_CHECKING:
    from timetracer.config import TraceConfig

Key = Tuple[Any, Any, Any, Any]
MAX_CANDIDATES = 3


def event_key(signature: Dict[str, Any]) -> Key:
    return (signature.get("lib"), signature.get("method"), signature.get("url"), signature.get("body_hash"))


class Replayer:
    """Serves recorded events to live calls for one replaying session.

    :param cassette: the parsed cassette document.
    :param path: where it was loaded from (named in every error).
    :param config: the settings in force (strict mode, ignored fields).
    """

    def __init__(self, cassette: Dict[str, Any], path: Optional[Path], config: TraceConfig) -> None:
        self.path = path
        self.config = config
        self.events: List[Dict[str, Any]] = list(cassette.get("events", ()))
        self._queues: Dict[Key, Deque[Dict[str, Any]]] = {}
        for event in self.events:
            self._queues.setdefault(event_key(event["signature"]), deque()).append(event)
        self._used: set[int] = set()
        self._lock = threading.Lock()
        self.calls = 0
        self.matched_exact = 0
        self.matched_fallback = 0

    def match(self, signature: Dict[str, Any], args: Any) -> Dict[str, Any]:
        """Return the recorded event for a live call, or raise :class:`ReplayMismatchError`."""
        key = event_key(signature)
        with self._lock:
            self.calls += 1
            position = self.calls
            queue = self._queues.get(key)
            if queue:
                event = queue.popleft()
                self._used.add(id(event))
                self.matched_exact += 1
                return event
        raise ReplayMismatchError(self.describe_miss(signature, args, position))

    def unused(self) -> List[Dict[str, Any]]:
        """Recorded events no live call has used, in recorded order."""
        with self._lock:
            return [event for event in self.events if id(event) not in self._used]

    def _candidates(self, signature: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
        same_method = [
            e
            for e in self.unused()
            if e["signature"].get("method") == signature.get("method")
            and e["signature"].get("url") == signature.get("url")
        ]
        return iter(same_method or self.unused())

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
            scored.append((0 if same_call else 1, len(differences), event["eid"], event, differences))
        scored.sort(key=lambda item: item[:3])
        if not scored:
            lines.append("  the cassette has no unused recorded calls left")
        for _, _, _, event, differences in scored[:MAX_CANDIDATES]:
            sig = event["signature"]
            lines.append(f"  nearest: recorded call eid={event['eid']} {sig.get('method')} on {sig.get('url')}")
            if (sig.get("method"), sig.get("url")) != (method, url):
                lines.append(f"    method/namespace differ: {sig.get('method')} {sig.get('url')}")
            for line in differences[:5]:
                lines.append(f"    {line}")
            if len(differences) > 5:
                lines.append(f"    ... {len(differences) - 5} more differences")
        return "\n".join(lines)


def _short(value: Any, limit: int = 300) -> str:
    from timetracer.hashing import canonical_json

    text = canonical_json(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
