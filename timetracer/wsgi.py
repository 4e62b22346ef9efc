"""WSGI middleware: record each request's MongoDB calls into a cassette, or replay them from one.

Wrap any WSGI application. In ``record`` mode every sampled request runs with a recording session
active and its cassette is written as soon as the body is complete, before its last chunk goes to
the server (so it is on disk before the client has the whole response); in ``replay`` mode the
request's cassette is loaded and its calls are answered from it; in ``off`` mode the application is
called directly. The request's session is put into the environ as ``environ["timetracer.session"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple

from timetracer._body import Body, capture_body
from timetracer._lifecycle import (
    REPLAY_HEADER,
    SESSION_KEY,
    RequestLifecycle,
    RequestTrace,
    replay_failure_text,
)
from timetracer._request import wsgi_text
from timetracer._response import TracedIterable, then_raise
from timetracer.config import Mode, TraceConfig
from timetracer.errors import TimeTracerError

if TYPE_CHECKING:
    from types import TracebackType

    ExcInfo = Tuple[type, BaseException, TracebackType]
    StartResponse = Callable[..., Callable[[bytes], Any]]
    WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]

__all__ = ["REPLAY_HEADER", "SESSION_KEY", "TimeTracerMiddleware"]


class _HeldWrite:
    """The last chunk the application passed to ``write()``, held back until the next one.

    Like the response iterable, ``write()`` output runs one chunk behind: the last piece is handed
    on by :class:`TracedIterable` (ahead of the iterable's own chunks) once the cassette is written,
    or by :meth:`flush` if the application raises.
    """

    __slots__ = ("chunk", "write")

    def __init__(self) -> None:
        self.chunk: Optional[bytes] = None
        self.write: Optional[Callable[[bytes], Any]] = None

    def take(self) -> Optional[bytes]:
        chunk, self.chunk = self.chunk, None
        self.write = None  # write() after the application returned is passed straight through
        return chunk

    def flush(self) -> None:
        chunk, write = self.chunk, self.write
        self.chunk = None
        if chunk is not None and write is not None:
            write(chunk)


def _traced_start_response(
    trace: RequestTrace, start_response: StartResponse, held: _HeldWrite
) -> StartResponse:
    """Wrap the server's ``start_response`` so the status, headers and ``write()`` bytes are captured.

    ``exc_info`` is passed through: the server re-raises it if the headers were already sent, and
    that exception then travels through the application like any other.
    """
    capture = trace.capture

    def traced(status: str, headers: List[Tuple[str, str]], exc_info: Optional[ExcInfo] = None) -> Any:
        try:
            if exc_info is None:
                write = start_response(status, headers)
            else:
                write = start_response(status, headers, exc_info)
        finally:
            exc_info = None  # no traceback -> frame -> traceback cycle (PEP 3333)
        capture.start(status, headers)
        held.write = write

        def traced_write(data: bytes) -> Any:
            if held.write is None:  # the application already returned its iterable
                result = write(data)
                capture.feed(data)
                return result
            previous, held.chunk = held.chunk, bytes(data)
            if previous is not None:
                write(previous)
                capture.feed(previous)
            return None

        return traced_write

    return traced


def _body_reader(environ: dict) -> Callable[[int], Optional[Body]]:
    """Read the body ahead from ``wsgi.input`` and put a stream giving the app the same bytes."""

    def read(limit: int) -> Optional[Body]:
        terminated = bool(environ.get("wsgi.input_terminated"))
        body, stream = capture_body(environ.get("wsgi.input"), environ, limit, terminated=terminated)
        environ["wsgi.input"] = stream
        return body

    return read


def _failure_response(exc: BaseException, start_response: StartResponse) -> List[bytes]:
    body = replay_failure_text(exc).encode("utf-8")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    start_response("500 Internal Server Error", headers)
    return [body]


def _replay(app: WSGIApp, trace: RequestTrace, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    """Run a replayed request to the end, then send it with ``X-Timetracer-Replay: <verdict>``.

    Replay buffers the response: the verdict (identical, different, mismatch) is known only once
    the body is complete, and it has to travel in a header. An app that raises after some of its
    body was out (a streamed response failing midway) had that much sent live: it is sent here
    too, and then the exception goes on to the server, as it did live.
    """
    held: Dict[str, Any] = {}
    chunks: List[bytes] = []

    def buffered_start(
        status: str, headers: List[Tuple[str, str]], exc_info: Optional[ExcInfo] = None
    ) -> Any:
        del exc_info  # nothing was sent yet, so a later call simply replaces the first
        held["status"], held["headers"] = status, list(headers)
        trace.capture.start(status, headers)

        def write(data: bytes) -> None:
            chunks.append(data)
            trace.capture.feed(data)

        return write

    try:
        iterable = TracedIterable(trace.run(app, environ, buffered_start), trace)
        try:
            chunks.extend(iterable)
        finally:
            iterable.close()
    except Exception as exc:
        # Live, a server sends the headers with the first non-empty piece of body; before that it
        # can still answer with its own error page, and does so here too.
        if "status" not in held or not any(chunks):
            raise
        _start_replayed(trace, start_response, held)
        return then_raise(chunks, exc)
    _start_replayed(trace, start_response, held)
    return chunks


def _start_replayed(trace: RequestTrace, start_response: StartResponse, held: Dict[str, Any]) -> None:
    verdict = trace.report.verdict if trace.report is not None else "mismatch"
    headers = [*held.get("headers", []), (REPLAY_HEADER, verdict)]
    start_response(held.get("status", "500 Internal Server Error"), headers)


class TimeTracerMiddleware(RequestLifecycle):
    """Record or replay the MongoDB calls of each request made to a WSGI application.

    :param app: the WSGI application to wrap.
    :param config: the settings; by default ``TraceConfig.from_env()``, read once, here (so a bad
        ``TIMETRACER_*`` value raises :class:`~timetracer.errors.ConfigError` at startup).

    Example::

        app.wsgi_app = TimeTracerMiddleware(app.wsgi_app, TraceConfig.from_env(mode="record"))
    """

    def __init__(self, app: WSGIApp, config: Optional[TraceConfig] = None) -> None:
        super().__init__(config if config is not None else TraceConfig.from_env())
        self.app = app
        self._off = self.config.mode is Mode.OFF

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if self._off:
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD") or "GET"
        path = wsgi_text(environ.get("PATH_INFO") or "/")
        try:
            query = wsgi_text(environ.get("QUERY_STRING", ""))
            trace = self._begin(method, path, query, environ, _body_reader(environ))
        except TimeTracerError as exc:
            return _failure_response(exc, start_response)
        if trace is None:
            return self.app(environ, start_response)
        environ[SESSION_KEY] = trace.session
        if trace.session.replaying:
            return _replay(self.app, trace, environ, start_response)
        held = _HeldWrite()
        try:
            result = trace.run(self.app, environ, _traced_start_response(trace, start_response, held))
        except BaseException:
            held.flush()  # the cassette is written (run finished the request); send what was written
            raise
        return TracedIterable(result, trace, held.take)
