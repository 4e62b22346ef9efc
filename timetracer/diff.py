"""Field-by-field differences between two JSON-like values, as readable one-line paths."""

from __future__ import annotations

import json
import math
from typing import Any, List

_MISSING = object()


def _show(value: Any) -> str:
    if value is _MISSING:
        return "<missing>"
    try:
        text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError):  # keys of mixed types cannot be sorted
        text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def diff_values(recorded: Any, live: Any, prefix: str = "", limit: int = 50) -> List[str]:
    """Lines like ``filter._id: "1001" != "123"`` (live first, recorded second)."""
    out: List[str] = []
    _walk(recorded, live, prefix, out, limit)
    return out


def _walk(recorded: Any, live: Any, path: str, out: List[str], limit: int) -> None:
    if len(out) >= limit:
        return
    if isinstance(recorded, dict) and isinstance(live, dict):
        for key in list(live) + [k for k in recorded if k not in live]:
            sub = f"{path}.{key}" if path else str(key)
            _walk(recorded.get(key, _MISSING), live.get(key, _MISSING), sub, out, limit)
        return
    if isinstance(recorded, list) and isinstance(live, list) and len(recorded) == len(live):
        for index, (r, v) in enumerate(zip(recorded, live)):
            _walk(r, v, f"{path}[{index}]", out, limit)
        return
    if isinstance(recorded, float) and isinstance(live, float) and math.isnan(recorded) and math.isnan(live):
        return  # NaN is its own value here, as it is for the body hash
    if recorded != live or type(recorded) is not type(live):
        out.append(f"{path or '<value>'}: {_show(live)} != {_show(recorded)} (live != recorded)")
