"""The request side of a cassette: the body read ahead for the app, redaction, and request identity.

:func:`capture_body` reads a request body ahead of the application (up to ``max_body_bytes``) and
gives back a stream that hands the application exactly the bytes, in the same calls, that the
original stream would have. :func:`request_section` builds the cassette's ``request`` object with
secret query parameters and JSON/form body fields redacted by name, and :func:`fingerprint` derives
from that object the identity that names and finds a request's recordings: method and path aside,
the normalised redacted query string and body.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode

from timetracer._response import REDACTED

# Read-ahead chunk size; a stream may return fewer bytes than asked, so reads loop.
_CHUNK = 64 * 1024


def wsgi_text(value: str) -> str:
    """A WSGI "native string" (bytes as latin-1) as the text the client sent (UTF-8)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


class BufferedInput:
    """A request stream whose first bytes were already read: ``prefix``, then the rest of ``inner``.

    The application sees the same bytes as from the original stream. An error raised while the
    prefix was read ahead (a client that disconnected) is raised again when the application reads
    past the prefix, as it would have been without timetracer.

    :param prefix: the bytes read ahead.
    :param inner: the original stream, positioned after ``prefix``.
    :param error: the exception that stopped the read-ahead, if any.

    Example::

        environ["wsgi.input"] = BufferedInput(b'{"a": 1}', environ["wsgi.input"])
    """

    def __init__(self, prefix: bytes, inner: Any, error: Optional[BaseException] = None) -> None:
        self._prefix = prefix
        self._pos = 0
        self._inner = inner
        self._error = error

    def _rest(self) -> bool:
        """Whether reads go on to the original stream (raising the read-ahead error if any)."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._inner is not None

    def _take(self, size: int) -> bytes:
        end = len(self._prefix) if size < 0 else min(len(self._prefix), self._pos + size)
        piece = self._prefix[self._pos : end]
        self._pos = end
        return piece

    def read(self, size: Optional[int] = -1) -> bytes:
        size = -1 if size is None else size
        piece = self._take(size)
        if (size < 0 or len(piece) < size) and self._rest():
            more = self._inner.read() if size < 0 else self._inner.read(size - len(piece))
            piece += more or b""
        return piece

    def readline(self, size: Optional[int] = -1) -> bytes:
        size = -1 if size is None else size
        start = self._pos
        newline = self._prefix.find(b"\n", start)
        end = len(self._prefix) if newline < 0 else newline + 1
        if size >= 0:
            end = min(end, start + size)
        piece = self._take(end - start)
        if piece.endswith(b"\n") or (size >= 0 and len(piece) >= size):
            return piece
        if self._rest():
            more = self._inner.readline() if size < 0 else self._inner.readline(size - len(piece))
            piece += more or b""
        return piece

    def readlines(self, hint: Optional[int] = -1) -> List[bytes]:
        lines: List[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class Body:
    """A captured request body: the kept bytes, whether the limit cut it, and its content type."""

    __slots__ = ("content_type", "data", "truncated")

    def __init__(self, data: bytes, truncated: bool, content_type: str) -> None:
        self.data = data
        self.truncated = truncated
        self.content_type = content_type


def _content_length(meta: Mapping[str, Any]) -> Optional[int]:
    text = meta.get("CONTENT_LENGTH")
    if text is None or not str(text).strip():
        return None
    try:
        length = int(str(text).strip())
    except ValueError:
        return None
    return max(length, 0)


def _read_ahead(stream: Any, want: int) -> Tuple[bytes, Optional[BaseException]]:
    chunks: List[bytes] = []
    got = 0
    error: Optional[BaseException] = None
    try:
        while got < want:
            chunk = stream.read(min(_CHUNK, want - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except Exception as exc:  # a client gone mid-body: the app meets it when it reads on
        error = exc
    return b"".join(chunks), error


def capture_body(
    stream: Any, meta: Mapping[str, Any], limit: int, *, terminated: bool = False
) -> Tuple[Optional[Body], Any]:
    """Read up to ``limit`` bytes of a request body; return ``(body, stream_for_the_app)``.

    ``CONTENT_LENGTH`` bounds the read; without it the body is read only when the server marks its
    stream as ending at the body's end (``terminated``: ``wsgi.input_terminated``, chunked requests),
    otherwise there is no body, as for WSGI frameworks. ``body`` is ``None`` when there is none (or
    ``limit`` is 0 and there is nothing to say); the returned stream is ``stream`` itself when
    nothing was read.
    """
    content_type = str(meta.get("CONTENT_TYPE") or "")
    length = _content_length(meta)
    if stream is None or (length is None and not terminated) or length == 0:
        return None, stream
    if limit <= 0:
        return Body(b"", True, content_type), stream
    if length is not None:
        data, error = _read_ahead(stream, min(length, limit))
        truncated = length > limit and len(data) == limit
        kept = data
    else:
        data, error = _read_ahead(stream, limit + 1)
        truncated = len(data) > limit
        kept = data[:limit]
    if not data and error is None:
        return None, stream
    return Body(kept, truncated, content_type), BufferedInput(data, stream, error)


# -- redaction ----------------------------------------------------------------------------------


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
