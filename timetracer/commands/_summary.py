"""One-line summaries of a recorded call's arguments and result, for ``show`` and ``timeline``."""

from __future__ import annotations

import json
from typing import Any, Dict

# The argument that says most about a call, in order of preference.
_MAIN_ARGS = ("filter", "pipeline", "document", "documents", "replacement", "key", "command", "requests")


def compact(value: Any, limit: int = 60) -> str:
    """Compact JSON of ``value``, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def arguments(event: Dict[str, Any], limit: int = 60) -> str:
    """``{"_id": "123"}`` for a filter; the main argument of other calls; other keys named after."""
    args = event.get("args")
    if not isinstance(args, dict) or not args:
        return "{}" if isinstance(args, dict) or args is None else compact(args, limit)
    main = next((name for name in _MAIN_ARGS if name in args), None)
    others = [name for name in args if name != main]
    if main is None:
        return compact(args, limit)
    value = args[main]
    if main == "pipeline" and isinstance(value, list):
        text = f"pipeline {compact(value, limit)}"
    elif main in ("documents", "requests") and isinstance(value, list):
        text = f"{len(value)} {main}"
    elif main == "filter":
        text = compact(value, limit)
    else:
        text = f"{main} {compact(value, limit)}"
    if others:
        text += " +" + ",".join(others)
    return text


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def result(event: Dict[str, Any]) -> str:
    """``1 document``, ``3 documents``, ``count 12``, ``DuplicateKeyError``, ``inserted 1``…"""
    outcome = event.get("result")
    if not isinstance(outcome, dict):
        return "no result"
    error = outcome.get("error")
    if isinstance(error, dict):
        name = str(error.get("type") or "error").rsplit(".", 1)[-1]
        code = error.get("code")
        return f"{name} (code {code})" if isinstance(code, int) else name
    body = outcome.get("body")
    if not isinstance(body, dict):
        return "no result"
    if not body.get("captured", False):
        reason = body.get("reason")
        return f"not captured ({reason})" if reason else "not captured"
    data = body.get("data")
    method = str((event.get("signature") or {}).get("method") or "")
    if method in ("FIND", "AGGREGATE"):
        return _count(len(data), "document") if isinstance(data, list) else "documents"
    if method == "DISTINCT":
        return _count(len(data), "value") if isinstance(data, list) else "values"
    if method == "LIST_COLLECTION_NAMES":
        return _count(len(data), "name") if isinstance(data, list) else "names"
    if method.startswith("COUNT") or method.startswith("ESTIMATED"):
        return f"count {data}"
    if method == "FIND_ONE" or method.startswith("FIND_ONE_AND"):
        return "no document" if data is None else "1 document"
    if not isinstance(data, dict):
        return compact(data, 40)
    if "inserted_ids" in data and method == "INSERT_MANY":
        return f"inserted {len(data.get('inserted_ids') or [])}"
    if "inserted_id" in data:
        inserted = data["inserted_id"]
        if isinstance(inserted, dict) and isinstance(inserted.get("$oid"), str) and len(inserted) == 1:
            return f"inserted _id ObjectId({inserted['$oid']})"
        return f"inserted _id {compact(inserted, 40)}"
    raw = data.get("raw_result") or data.get("bulk_api_result")
    if isinstance(raw, dict):
        parts = []
        for key, label in (
            ("nInserted", "inserted"),
            ("nMatched", "matched"),
            ("nModified", "modified"),
            ("nUpserted", "upserted"),
            ("nRemoved", "removed"),
        ):
            if isinstance(raw.get(key), int) and raw.get(key):
                parts.append(f"{label} {raw[key]}")
        if not parts and "n" in raw:
            n = raw.get("n")
            if method.startswith("DELETE"):
                parts.append(f"deleted {n}")
            else:
                parts.append(f"matched {n}")
                if "nModified" in raw:
                    parts.append(f"modified {raw['nModified']}")
        return ", ".join(parts) or "ok"
    if method == "COMMAND":
        return "ok" if data.get("ok") in (1, 1.0, True) else compact(data, 40)
    return compact(data, 40)
