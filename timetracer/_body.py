"""A request body read ahead of the application, which then reads the very same bytes.

:func:`capture_body` reads up to ``max_body_bytes`` of a request body before the application runs
(bounded by ``CONTENT_LENGTH``; without one, only from a stream the server ends at the body's end)
and returns a :class:`BufferedInput` that hands the application exactly the bytes, in the same
calls, that the original stream would have.
"""

from __future__ import annotations

from typing import Any, Iterator, List, Mapping, Optional, Tuple

# Read-ahead chunk size; a stream may return fewer bytes than asked, so reads loop.
_CHUNK = 64 * 1024


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

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

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
