"""The cassette's ``request`` object, and the identity of a request derived from it.

:func:`request_section` builds the ``request`` object (method, path, query, headers, body) with
secret query parameters and body fields redacted by name (:mod:`timetracer._redact`; the body is
read ahead by :mod:`timetracer._body`). :func:`fingerprint` derives from that object the identity
that names and finds a request's recordings, method and path aside: the normalised, redacted
query string and body. :func:`request_differences` says how two such objects differ.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import parse_qsl, quote, urlencode

from timetracer._body import Body
from timetracer._redact import is_form_type, is_json_type, redact_body, redact_multipart, redact_query

__all__ = [
    "describe",
    "fingerprint",
    "redact_body",
    "redact_query",
    "request_differences",
    "request_section",
    "wsgi_text",
]


def wsgi_text(value: str) -> str:
    """A WSGI "native string" (bytes as latin-1) as the text the client sent (UTF-8)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _text(data: bytes, truncated: bool) -> Optional[str]:
    """``data`` as UTF-8 text, a cut multi-byte character at the end dropped; ``None`` if binary."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if truncated and exc.reason == "unexpected end of data":
            return data[: exc.start].decode("utf-8")
        return None


# -- the cassette's request object --------------------------------------------------------------


def request_section(
    method: str,
    path: str,
    query: str,
    headers: Dict[str, str],
    body: Optional[Body],
    redacted: frozenset[str],
) -> Dict[str, Any]:
    """The cassette's ``request`` object: query and body with secret fields redacted.

    ``body`` is the text of the body (``body_encoding: "text"``) or, when it is not UTF-8, its
    base64 (``"base64"``); ``null`` when there is none. ``body_truncated`` says the size limit cut it.
    """
    section: Dict[str, Any] = {
        "method": method,
        "path": path,
        "query": redact_query(query, redacted),
        "headers": headers,
        "body": None,
    }
    if body is None:
        return section
    data = redact_multipart(body.data, body.content_type, redacted)
    text = _text(data, body.truncated)
    if text is None:
        section["body"] = base64.b64encode(data).decode("ascii")
        section["body_encoding"] = "base64"
    else:
        section["body"] = redact_body(text, body.content_type, redacted)
        section["body_encoding"] = "text"
    section["body_truncated"] = body.truncated
    return section


def _normal_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    pairs.sort(key=lambda pair: pair[0])  # stable: repeated names keep their order
    return urlencode(pairs, quote_via=quote)


def _normal_body(request: Mapping[str, Any]) -> str:
    body = request.get("body")
    if body is None:
        return ""
    text = str(body)
    content_type = str((request.get("headers") or {}).get("content-type") or "")
    truncated = "+cut" if request.get("body_truncated") else ""
    if request.get("body_encoding", "text") == "base64":
        return f"base64{truncated}:{text}"
    if is_form_type(content_type):
        return f"form{truncated}:{_normal_query(text)}"
    if is_json_type(content_type) and not truncated:
        try:
            canonical = json.dumps(
                json.loads(text), sort_keys=True, ensure_ascii=False, separators=(",", ":")
            )
        except ValueError:
            pass
        else:
            return f"json:{canonical}"
    return f"text{truncated}:{text}"


def fingerprint(request: Mapping[str, Any]) -> Optional[str]:
    """A short digest naming a request's query string and body, ``None`` when it has neither.

    Computed from the cassette's (redacted) ``request`` object, so a recording can always be
    checked against a live request: query parameters in name order (repeated names keep their
    order), JSON bodies with keys sorted, form bodies like queries, other bodies as stored.
    """
    query = _normal_query(str(request.get("query") or ""))
    body = _normal_body(request)
    if not query and not body:
        return None
    text = f"query:{query}\nbody:{body}"
    return "q" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def request_differences(
    recorded: Mapping[str, Any], live: Mapping[str, Any], names: frozenset[str]
) -> List[str]:
    """How the request a cassette was recorded for differs from a live one (empty: the same).

    Method, path, query string (redacted, normalised) and, where the cassette stored it, the body.
    A cassette recorded before bodies were stored (no ``body`` key) is compared without the body.
    """
    out: List[str] = []
    for name in ("method", "path"):
        if recorded.get(name) != live.get(name):
            out.append(f"{name} {live.get(name)!r} != recorded {recorded.get(name)!r}")
    rec_query = redact_query(str(recorded.get("query") or ""), names)
    if fingerprint({"query": rec_query}) != fingerprint({"query": live.get("query")}):
        out.append(f"query {live.get('query')!r} != recorded {rec_query!r}")
    if "body" in recorded:
        with_body = dict(live, query="")
        if fingerprint(dict(recorded, query="")) != fingerprint(with_body):
            out.append("body differs from the recorded body")
    return out


def describe(request: Mapping[str, Any]) -> str:
    """``GET /items?page=2`` (with a body size note) for messages."""
    query = request.get("query")
    line = f"{request.get('method')} {request.get('path')}{'?' + str(query) if query else ''}"
    body = request.get("body")
    if body is not None:
        line += f" with a {len(str(body))}-character body"
    return line
