"""Response capture: what a cassette keeps of a response, and the wrapper of its iterable.

:class:`ResponseCapture` keeps the status, the headers and the body up to ``max_body_bytes`` (with
the body's full size) of a traced response. :class:`TracedIterable` wraps a WSGI response iterable
or a Django ``streaming_content`` so that the request's session is active around every ``next()``
and ``close()``, whatever thread the server uses, and the request is finished exactly once.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from timetracer.context import activate, deactivate

if TYPE_CHECKING:
    from timetracer._lifecycle import RequestTrace

REDACTED = "[REDACTED]"


def redact_pairs(headers: Iterable[Tuple[str, str]], redacted: frozenset[str]) -> List[List[str]]:
    """``[[name, value], ...]`` with the values of ``redacted`` (lower-case) names replaced."""
    return [[str(name), REDACTED if str(name).lower() in redacted else str(value)] for name, value in headers]


def encode_body(data: bytes, size: int) -> Dict[str, Any]:
    """The cassette's ``body`` object for the kept bytes ``data`` of a body of ``size`` bytes.

    Text that is valid UTF-8 is stored as is; anything else as base64. A cut made by the size limit
    inside a multi-byte character drops that character's partial bytes rather than the text form.
    """
    truncated = size > len(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not (truncated and exc.reason == "unexpected end of data"):
            return {
                "encoding": "base64",
                "data": base64.b64encode(data).decode("ascii"),
                "size": size,
                "truncated": truncated,
            }
        text = data[: exc.start].decode("utf-8")
    return {"encoding": "utf-8", "data": text, "size": size, "truncated": truncated}


class ResponseCapture:
    """The status, headers and (capped) body of one response, as they are sent.

    :param limit: bytes of body kept; the full size is counted either way.

    Example::

        capture = ResponseCapture(limit=4)
        capture.start("200 OK", [("Content-Type", "text/plain")])
        capture.feed(b"hello")
        capture.to_dict(frozenset())["body"]  # {"data": "hell", "size": 5, "truncated": True, ...}
    """

    __slots__ = ("_chunks", "_kept", "headers", "limit", "reason", "size", "status")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.status: Optional[int] = None
        self.reason = ""
        self.headers: List[Tuple[str, str]] = []
        self.size = 0
        self._kept = 0
        self._chunks: List[bytes] = []

    def start(self, status_line: str, headers: Iterable[Tuple[str, str]]) -> None:
        """Note the status line (``"200 OK"``) and headers; a later call replaces them."""
        code, _, reason = str(status_line).partition(" ")
        try:
            self.status = int(code)
        except ValueError:  # a broken app; the server will say so, we just keep no response
            self.status = None
        self.reason = reason.strip()
        self.headers = list(headers)

    def feed(self, data: Any) -> None:
        """Count a chunk of body and keep it while under the limit. Never raises."""
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                return  # not a valid WSGI chunk; the server reports it
            data = bytes(data)
        size = len(data)
        self.size += size
        room = self.limit - self._kept
        if room > 0 and size:
            piece = data if size <= room else data[:room]
            self._chunks.append(piece)
            self._kept += len(piece)

    def to_dict(self, redacted: frozenset[str]) -> Optional[Dict[str, Any]]:
        """The cassette's ``response`` section, or ``None`` if no valid status was sent."""
        if self.status is None:
            return None
        return {
            "status": self.status,
            "reason": self.reason,
            "headers": redact_pairs(self.headers, redacted),
            "body": encode_body(b"".join(self._chunks), self.size),
        }


_NONE: Any = object()  # no chunk held


class TracedIterable:
    """A response iterable run with its request's session active, finished before its last chunk.

    Like werkzeug's ``ClosingIterator`` this is a class, not a generator, so that ``close()`` works
    even before the first ``next()``. It runs one chunk behind the application: each chunk is
    handed on when the next one exists, and when the application's iterable is exhausted the
    request is finished (the cassette written) *before* the last chunk is returned, so the
    cassette is on disk before the client can have the whole response. The body still streams.
    An exception from the inner iterable is recorded and the request finished; a chunk held at
    that moment is still handed on and the exception raised by the following ``next()``.
    ``close()`` closes the inner iterable and finishes the request if that has not happened. If
    the server never calls ``close()``, the request is finished when the wrapper is garbage
    collected, or at interpreter exit (see :func:`timetracer._lifecycle.finish_pending`).

    :param iterable: the application's response iterable.
    :param trace: the request it belongs to.
    :param before: called once at the first ``next()``; returns body bytes that must go out
        before the iterable's (the WSGI adapter's held-back last ``write()``), or ``None``.

    Example::

        return TracedIterable(app(environ, start_response), trace)
    """

    __slots__ = ("_before", "_closed", "_ended", "_error", "_held", "_iterable", "_iterator", "_trace")

    def __init__(
        self,
        iterable: Iterable[bytes],
        trace: RequestTrace,
        before: Optional[Callable[[], Optional[bytes]]] = None,
    ) -> None:
        self._iterable = iterable
        self._iterator: Optional[Iterator[bytes]] = None
        self._trace = trace
        self._before = before
        self._held: Any = _NONE
        self._ended = False
        self._error: Optional[BaseException] = None
        self._closed = False

    def __iter__(self) -> TracedIterable:
        return self

    def __next__(self) -> bytes:
        if self._ended:
            error, self._error = self._error, None
            if error is not None:
                raise error
            raise StopIteration
        trace = self._trace
        token = activate(trace.session)
        try:
            iterator = self._iterator
            if iterator is None:
                iterator = self._iterator = iter(self._iterable)
                if self._before is not None:
                    written = self._before()
                    if written is not None:
                        self._held = written
            chunk = self._held
            if chunk is _NONE:
                chunk = next(iterator)  # StopIteration here: an empty body
            try:
                self._held = next(iterator)
            except StopIteration:
                # The body is complete: make the cassette durable, then hand on the last chunk.
                self._held = _NONE
                self._ended = True
                trace.complete(chunk)
                return chunk  # type: ignore[no-any-return]
            except BaseException as exc:
                self._held = _NONE
                self._ended = True
                trace.fail(exc)
                trace.capture.feed(chunk)
                trace.finish()
                self._error = exc
                return chunk  # type: ignore[no-any-return]
        except StopIteration:
            self._ended = True
            trace.finish()
            raise
        except BaseException as exc:
            self._ended = True
            trace.fail(exc)
            trace.finish()
            raise
        finally:
            deactivate(token)
        trace.capture.feed(chunk)
        return chunk  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the inner iterable, then finish the request; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        self._ended = True
        self._error = None
        trace = self._trace
        token = activate(trace.session)
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            trace.fail(exc)
            raise
        finally:
            try:
                trace.finish()
            finally:
                deactivate(token)

    def __del__(self) -> None:
        # Last resort for servers that never call close(): PEP 3333 requires it, not all obey.
        trace = getattr(self, "_trace", None)
        if trace is not None and not trace.done:
            try:
                trace.finish()
            except Exception:  # pragma: no cover - interpreter shutdown
                pass


def then_raise(chunks: List[bytes], error: BaseException) -> Iterator[bytes]:
    """A replayed body that failed midway: the pieces the app produced before ``error``, then
    ``error`` itself, raised to the server as it was live (after what had been sent)."""
    yield from chunks
    raise error
