"""Redaction by field name: query parameters and JSON, form and multipart body fields.

The values of the named fields (any case) become ``[REDACTED]``; everything else is kept as sent.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Optional, Tuple
from urllib.parse import unquote_plus

from timetracer._response import REDACTED


def redact_query(query: str, names: frozenset[str]) -> str:
    """``query`` with the values of parameters named in ``names`` (any case) set to ``[REDACTED]``.

    Everything else is kept as sent, byte for byte, in order.
    """
    if not query or not names:
        return query
    pieces = query.split("&")
    changed = False
    for index, piece in enumerate(pieces):
        name, eq, _ = piece.partition("=")
        if eq and unquote_plus(name).strip().lower() in names:
            pieces[index] = f"{name}={REDACTED}"
            changed = True
    return "&".join(pieces) if changed else query


def _redact_json(value: Any, names: frozenset[str]) -> Tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        out: Dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in names:
                out[key] = REDACTED
                changed = True
            else:
                out[key], sub = _redact_json(item, names)
                changed = changed or sub
        return out, changed
    if isinstance(value, list):
        items = [_redact_json(item, names) for item in value]
        return [item for item, _ in items], any(sub for _, sub in items)
    return value, False


def _json_text_redactor(names: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    return re.compile(rf'("(?i:{alternatives})"\s*:\s*)("(?:[^"\\]|\\.)*("|$)|[^,}}\]\s]+)', re.DOTALL)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_json_type(content_type: str) -> bool:
    media = _media_type(content_type)
    return media == "application/json" or media.endswith("+json")


def is_form_type(content_type: str) -> bool:
    return _media_type(content_type) == "application/x-www-form-urlencoded"


_PART_NAME = re.compile(rb'content-disposition:[^\r\n]*?[; ]name="([^"]*)"', re.IGNORECASE)
_PART_FILE = re.compile(rb"content-disposition:[^\r\n]*?[; ]filename\*?=", re.IGNORECASE)


def _boundary(content_type: str) -> Optional[bytes]:
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary" and value.strip():
            return value.strip().strip('"').encode("latin-1", "replace")
    return None


def redact_multipart(data: bytes, content_type: str, names: frozenset[str]) -> bytes:
    """A ``multipart/form-data`` body with the values of fields named in ``names`` replaced.

    Uploaded files (parts with a ``filename``) are kept; a part cut by the size limit is redacted
    up to the cut.
    """
    if _media_type(content_type) != "multipart/form-data" or not names:
        return data
    boundary = _boundary(content_type)
    if boundary is None:
        return data
    delimiter = b"--" + boundary
    parts = data.split(delimiter)
    changed = False
    for index in range(1, len(parts)):
        part = parts[index]
        head_end = part.find(b"\r\n\r\n")
        if head_end < 0:
            continue
        head = part[:head_end]
        match = _PART_NAME.search(head)
        if match is None or _PART_FILE.search(head):
            continue
        if match.group(1).decode("utf-8", "replace").lower() not in names:
            continue
        content_start = head_end + 4
        last = index == len(parts) - 1  # cut by the size limit: no closing delimiter
        tail = b"" if last else (b"\r\n" if part.endswith(b"\r\n") else b"")
        parts[index] = part[:content_start] + REDACTED.encode("ascii") + tail
        changed = True
    return delimiter.join(parts) if changed else data


def redact_body(text: str, content_type: str, names: frozenset[str]) -> str:
    """A text body with the values of JSON or form fields named in ``names`` replaced.

    A JSON body that parses is written back compactly only if something was redacted; one that
    does not parse (cut by the size limit) has ``"name": value`` pairs replaced in its text.
    """
    if not names:
        return text
    if is_form_type(content_type):
        return redact_query(text, names)
    if not is_json_type(content_type):
        return text
    try:
        document = json.loads(text)
    except ValueError:
        return _json_text_redactor(names).sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    redacted, changed = _redact_json(document, names)
    return json.dumps(redacted, ensure_ascii=False, separators=(",", ":")) if changed else text
