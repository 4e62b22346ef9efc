"""``timetracer diff A B``: what differs between two cassettes, field by field.

Compared: the schema version, the session's service/env/name, the request (method, path, query,
body), the response (status and body; JSON bodies structurally), the error that ended the run, and
the calls by position (method, namespace, arguments, result). Ignored: the session id,
``recorded_at``, ``timetracer_version``, durations and offsets, and headers (they carry dates,
client versions and hosts that differ between any two recordings).
"""

from __future__ import annotations

import argparse
import base64
import json
from typing import Any, Dict, List, Optional

from timetracer.commands._common import EXIT_NEGATIVE, EXIT_OK, display_path, events, load, location

HELP = "compare two cassettes field by field (exit 0 when equivalent, 1 when not)"

_SESSION_IGNORED = frozenset({"id", "recorded_at", "duration_ms", "timetracer_version"})
_REQUEST_FIELDS = ("method", "path", "query", "name", "body", "body_encoding", "body_truncated")
_EVENT_IGNORED = frozenset({"eid", "start_offset_ms", "duration_ms"})
_MISSING = object()


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("diff", help=HELP, description=HELP + ". " + __doc__.split("\n\n")[1])
    parser.add_argument("a", metavar="A", help="the first cassette (a file or an s3:// URL)")
    parser.add_argument("b", metavar="B", help="the second cassette (a file or an s3:// URL)")
    parser.set_defaults(run=run)


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


def compare(a: Any, b: Any, path: str, out: List[str]) -> None:
    """Append ``path: A -> B`` lines for every leaf that differs (type included: 1 vs 1.0)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            compare(a.get(key, _MISSING), b.get(key, _MISSING), sub, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        for index in range(max(len(a), len(b))):
            compare(
                a[index] if index < len(a) else _MISSING,
                b[index] if index < len(b) else _MISSING,
                f"{path}[{index}]",
                out,
            )
        return
    if a is _MISSING and b is _MISSING:
        return
    if type(a) is not type(b) or a != b:
        out.append(f"{path}: {_show(a)} -> {_show(b)}")


def _body(response: Dict[str, Any]) -> Any:
    """A response body for comparison: parsed JSON when it is JSON, else text, else bytes' size."""
    body = response.get("body")
    if not isinstance(body, dict):
        return body
    data = body.get("data", "")
    if body.get("encoding") == "base64":
        try:
            raw = base64.b64decode(str(data))
        except ValueError:
            return data
    else:
        raw = str(data).encode("utf-8")
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(raw)} bytes: {raw[:16].hex()}…>"


def _request_body(request: Dict[str, Any], body: Any) -> Any:
    if not isinstance(body, str) or request.get("body_encoding", "text") != "text":
        return body
    try:
        return json.loads(body)
    except ValueError:
        return body


def _section(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    """Every difference between two cassette documents, as readable lines."""
    out: List[str] = []
    compare(a.get("schema_version"), b.get("schema_version"), "schema_version", out)
    session_a = {k: v for k, v in _section(a.get("session")).items() if k not in _SESSION_IGNORED}
    session_b = {k: v for k, v in _section(b.get("session")).items() if k not in _SESSION_IGNORED}
    compare(session_a, session_b, "session", out)
    request_a, request_b = _section(a.get("request")), _section(b.get("request"))
    for name in _REQUEST_FIELDS:
        value_a, value_b = request_a.get(name, _MISSING), request_b.get(name, _MISSING)
        if name == "body":  # JSON bodies compared field by field
            value_a, value_b = _request_body(request_a, value_a), _request_body(request_b, value_b)
        compare(value_a, value_b, f"request.{name}", out)
    response_a, response_b = a.get("response"), b.get("response")
    if isinstance(response_a, dict) and isinstance(response_b, dict):
        compare(response_a.get("status"), response_b.get("status"), "response.status", out)
        compare(_body(response_a), _body(response_b), "response.body", out)
    elif response_a is not None or response_b is not None:
        out.append(
            f"response: {'present' if response_a else '(absent)'} -> {'present' if response_b else '(absent)'}"
        )
    compare(a.get("error", _MISSING), b.get("error", _MISSING), "error", out)
    calls_a, calls_b = events(a), events(b)
    for index in range(max(len(calls_a), len(calls_b))):
        out.extend(
            _call_differences(
                index,
                calls_a[index] if index < len(calls_a) else None,
                calls_b[index] if index < len(calls_b) else None,
            )
        )
    return out


def _label(event: Dict[str, Any]) -> str:
    signature = _section(event.get("signature"))
    return f"{signature.get('method', '?')} {signature.get('url', '?')}"


def _call_differences(index: int, a: Optional[Dict[str, Any]], b: Optional[Dict[str, Any]]) -> List[str]:
    position = f"call {index + 1}"
    if a is None and b is not None:
        return [f"{position}: added in B: {_label(b)}"]
    if b is None and a is not None:
        return [f"{position}: removed in B: {_label(a)}"]
    assert a is not None and b is not None
    fields: List[str] = []
    trimmed_a = {k: v for k, v in a.items() if k not in _EVENT_IGNORED}
    trimmed_b = {k: v for k, v in b.items() if k not in _EVENT_IGNORED}
    if "args" in a and "args" in b:  # the hash of the arguments says nothing the arguments do not
        for trimmed in (trimmed_a, trimmed_b):
            trimmed["signature"] = {
                k: v for k, v in _section(trimmed.get("signature")).items() if k != "body_hash"
            }
    compare(trimmed_a, trimmed_b, "", fields)
    label = _label(a) if _label(a) == _label(b) else f"{_label(a)} / {_label(b)}"
    return [f"{position} ({label}): {line}" for line in fields]


def run(options: argparse.Namespace) -> int:
    a, b = load(location(options.a)), load(location(options.b))
    lines = differences(a.document, b.document)
    names = f"{display_path(a.path)} and {display_path(b.path)}"
    if not lines:
        print(f"equivalent: {names} (ignoring session ids, dates, durations, offsets and headers)")
        return EXIT_OK
    print(f"--- A {display_path(a.path)}")
    print(f"+++ B {display_path(b.path)}")
    for line in lines:
        print(line)
    print(f"{len(lines)} difference{'s' if len(lines) != 1 else ''} between {names}")
    return EXIT_NEGATIVE
