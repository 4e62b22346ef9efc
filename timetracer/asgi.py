"""ASGI middleware: record each HTTP request's MongoDB calls into a cassette, or replay them from one.

The twin of :mod:`timetracer.wsgi` on the same request lifecycle (config read once, sampling,
errors-only, excluded paths, request body capture with its cap, redaction, cassette naming and
replay lookup by method, path, query and body): wrap any ASGI
application, or ``app.add_middleware(TimeTracerMiddleware)`` in Starlette or FastAPI. ``http``
requests run with the request's session active (tasks the app starts see it too); ``lifespan``
and ``websocket`` scopes pass through untouched. The session is put into the scope as
``scope["timetracer.session"]``.
"""

from __future__ import annotations

import http
import logging
from typing import Any, Awaitable, Callable, Dict, List, MutableMapping, Optional, Tuple

from timetracer._asgi_body import read_ahead
from timetracer._lifecycle import (
    REPLAY_HEADER,
    SESSION_KEY,
    RequestLifecycle,
    RequestTrace,
    replay_failure_text,
)
from timetracer._request import wsgi_text
from timetracer.config import Mode, TraceConfig
from timetracer.context import activate, active_session, deactivate
from timetracer.errors import TimeTracerError

__all__ = ["REPLAY_HEADER", "SESSION_KEY", "TimeTracerMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("timetracer")

_CONTENT_HEADERS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


def scope_meta(scope: Scope) -> Dict[str, str]:
    """The request headers of an ASGI scope as WSGI environ keys (``HTTP_X_NAME``), the form the
    shared lifecycle reads; repeated headers are joined with ``", "`` as WSGI servers do."""
    meta: Dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or ():
        name = raw_name.decode("latin-1").lower()
        key = _CONTENT_HEADERS.get(name) or "HTTP_" + name.upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        meta[key] = f"{meta[key]}, {value}" if key in meta else value
    meta["QUERY_STRING"] = _query(scope)
    return meta


def _query(scope: Scope) -> str:
    raw = scope.get("query_string") or b""
    return wsgi_text(raw.decode("latin-1")) if isinstance(raw, (bytes, bytearray)) else str(raw)


def _status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _text_headers(raw: Any) -> List[Tuple[str, str]]:
    return [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in raw or ()]


class _Capture:
    """Feeds the messages an app sends into the request's :class:`ResponseCapture`. Never raises."""

    def __init__(self, trace: RequestTrace) -> None:
        self.trace = trace

    def see(self, message: Message) -> bool:
        """Capture ``message``; True when it is the response's last body message."""
        kind = message.get("type")
        try:
            if kind == "http.response.start":
                self.trace.capture.start(
                    _status_line(int(message["status"])), _text_headers(message.get("headers"))
                )
            elif kind == "http.response.body":
                self.trace.capture.feed(message.get("body", b""))
                return not message.get("more_body", False)
        except Exception:  # a malformed message: the server reports it; we keep no response
            logger.debug("timetracer: could not capture an ASGI message of type %r", kind, exc_info=True)
        return False


class TimeTracerMiddleware(RequestLifecycle):
    """Record or replay the MongoDB calls of each HTTP request made to an ASGI application.

    :param app: the ASGI application to wrap.
    :param config: the settings; by default ``TraceConfig.from_env()``, read once, here (so a bad
        ``TIMETRACER_*`` value raises :class:`~timetracer.errors.ConfigError` at startup).

    Example::

        app = Starlette(routes=routes)
        app.add_middleware(TimeTracerMiddleware)            # or TimeTracerMiddleware(asgi_app)
    """

    def __init__(self, app: ASGIApp, config: Optional[TraceConfig] = None) -> None:
        super().__init__(config if config is not None else TraceConfig.from_env())
        self.app = app
        self._off = self.config.mode is Mode.OFF

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Applied twice (add_middleware and a wrapper, or around an app that has its own), the
        # outer layer owns the request: an inner one passes it on untouched.
        if self._off or scope.get("type") != "http" or active_session() is not None:
            await self.app(scope, receive, send)
            return
        method = scope.get("method") or "GET"
        path = scope.get("path") or "/"
        if not self._should_trace(path):
            await self.app(scope, receive, send)
            return
        meta = scope_meta(scope)
        # The body is part of the request's identity and stored for `timetracer verify`: read it
        # ahead (up to the cap); the app then receives the very same messages.
        body, receive = await read_ahead(receive, meta, self.config.max_body_bytes)
        try:
            trace = self._begin(method, path, meta["QUERY_STRING"], meta, lambda _limit: body, decided=True)
        except TimeTracerError as exc:
            await _failure_response(exc, send)
            return
        if trace is None:
            await self.app(scope, receive, send)
            return
        scope[SESSION_KEY] = trace.session
        if trace.session.replaying:
            await self._replay(trace, scope, receive, send)
        else:
            await self._record(trace, scope, receive, send)

    async def _run(self, trace: RequestTrace, scope: Scope, receive: Receive, send: Send) -> None:
        """Await the app with the session active; an exception is recorded, the request finished,
        and the exception re-raised unchanged."""
        token = activate(trace.session)
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            trace.fail(exc)
            trace.finish()
            raise
        finally:
            deactivate(token)

    async def _record(self, trace: RequestTrace, scope: Scope, receive: Receive, send: Send) -> None:
        capture = _Capture(trace)

        async def traced_send(message: Message) -> None:
            if capture.see(message):
                self._finish_before_last_body(trace)
            await send(message)

        await self._run(trace, scope, receive, traced_send)
        trace.finish()  # an app that never sent its last body message: finished here (once)

    @staticmethod
    def _finish_before_last_body(trace: RequestTrace) -> None:
        """Write the cassette before the response's last body message is sent: once the client
        has the whole response, the cassette is on disk (a test may replay it at once)."""
        trace.finish()

    async def _replay(self, trace: RequestTrace, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a replayed request to the end, then send it with ``X-Timetracer-Replay: <verdict>``.

        Replay buffers the response: the verdict is known only once the body is complete, and it
        has to travel in a header. An app that raises after it started its response (Starlette's
        error middleware sends its 500 page, then re-raises) had that response sent live: it is
        sent here too, as far as the app got, before the exception goes on to the server.
        """
        capture = _Capture(trace)
        start: Optional[Message] = None
        body: List[bytes] = []
        others: List[Message] = []
        complete = False

        async def buffered_send(message: Message) -> None:
            nonlocal start, complete
            if capture.see(message):
                complete = True
            kind = message.get("type")
            if kind == "http.response.start":
                start = dict(message)
            elif kind == "http.response.body":
                body.append(bytes(message.get("body", b"")))
            else:
                others.append(message)

        try:
            await self._run(trace, scope, receive, buffered_send)
        except Exception:
            if start is not None:
                try:
                    await _send_replayed(trace, send, start, body, others, complete)
                except Exception:  # the server or client gave up: the app's exception is the news
                    logger.debug("timetracer: the replayed response could not be sent", exc_info=True)
            raise
        trace.finish()
        if start is None:
            return  # the app sent no response; the server says so
        await _send_replayed(trace, send, start, body, others, True)


async def _send_replayed(
    trace: RequestTrace, send: Send, start: Message, body: List[bytes], others: List[Message], complete: bool
) -> None:
    """Send a replayed response the app buffered, with the verdict header; ``complete`` False
    leaves the body open, as the app left it."""
    verdict = trace.report.verdict if trace.report is not None else "mismatch"
    start["headers"] = [
        *list(start.get("headers") or ()),
        (REPLAY_HEADER.lower().encode(), verdict.encode()),
    ]
    await send(start)
    await send({"type": "http.response.body", "body": b"".join(body), "more_body": not complete})
    for message in others:
        await send(message)


async def _failure_response(exc: BaseException, send: Send) -> None:
    body = replay_failure_text(exc).encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
