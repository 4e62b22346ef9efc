"""Django adapter: a ``MIDDLEWARE`` entry that records or replays each request's MongoDB calls.

Add ``"timetracer.integrations.django.TimeTracerMiddleware"`` near the top of ``MIDDLEWARE``. The
settings are the ``TIMETRACER_*`` environment variables, overridden by an optional ``TIMETRACER``
dict in the Django settings whose keys are :class:`~timetracer.config.TraceConfig` fields
(``TIMETRACER = {"mode": "record", "cassette_dir": BASE_DIR / "cassettes"}``), read once at startup.
The request lifecycle is the one of :mod:`timetracer.wsgi`; the session is put into
``request.META["timetracer.session"]``. Under ASGI the middleware runs async (async views are
awaited with the session active, no thread hop); under WSGI it runs sync.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Iterator, List, Mapping, Optional, Tuple

import django
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.http import HttpRequest, HttpResponseServerError
from django.http.response import HttpResponseBase  # not re-exported by django.http before 4.0

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
from timetracer.context import activate, deactivate
from timetracer.errors import TimeTracerError

SETTINGS_NAME = "TIMETRACER"

__all__ = ["SETTINGS_NAME", "TimeTracerMiddleware", "config_from_settings"]


def config_from_settings() -> TraceConfig:
    """The config: ``settings.TIMETRACER`` entries > ``TIMETRACER_*`` environment > defaults."""
    overrides = getattr(settings, SETTINGS_NAME, None) or {}
    if not isinstance(overrides, Mapping):
        raise ImproperlyConfigured(
            f"settings.{SETTINGS_NAME} must be a dict of TraceConfig fields, e.g. {{'mode': 'record'}}; "
            f"got {type(overrides).__name__}"
        )
    try:
        return TraceConfig.from_env(**overrides)
    except TypeError as exc:  # an unknown key
        raise ImproperlyConfigured(f"settings.{SETTINGS_NAME}: {exc}") from exc


def _response_headers(response: HttpResponseBase) -> List[Tuple[str, str]]:
    headers = list(response.items())
    headers.extend(("Set-Cookie", morsel.OutputString()) for morsel in response.cookies.values())
    return headers


def _body_reader(request: HttpRequest) -> Callable[[int], Optional[Body]]:
    """Read the body ahead from the request's stream (``request._stream``, which Django already
    bounds by ``CONTENT_LENGTH``) and give the view a stream with the same bytes."""

    def read(limit: int) -> Optional[Body]:
        stream = getattr(request, "_stream", None)
        if stream is None or getattr(request, "_read_started", False):
            return None
        body, replacement = capture_body(stream, request.META, limit, terminated=True)
        request._stream = replacement  # type: ignore[attr-defined]
        return body

    return read


class TimeTracerMiddleware(RequestLifecycle):
    """Record or replay the MongoDB calls of each request Django handles.

    :param get_response: the next layer, given by Django.

    Raises ``MiddlewareNotUsed`` when the mode is ``off``, so Django drops it at startup.

    Example::

        MIDDLEWARE = ["timetracer.integrations.django.TimeTracerMiddleware", ...]
        TIMETRACER = {"mode": "record", "cassette_dir": "cassettes"}
    """

    sync_capable = True
    # Async requests (ASGI, async views, async streaming) from Django 4.2; before, Django runs this
    # middleware as a sync one in both worlds.
    async_capable = django.VERSION >= (4, 2)

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        config = config_from_settings()
        if config.mode is Mode.OFF:
            raise MiddlewareNotUsed("timetracer is off (set TIMETRACER_MODE or settings.TIMETRACER)")
        super().__init__(config)
        self.get_response = get_response
        # Under ASGI, Django hands an async get_response to an async-capable middleware: this
        # middleware is then a coroutine function too (no thread hop for async views).
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self._acall(request)
        trace, failure = self._start(request)
        if failure is not None:
            return failure
        if trace is None:
            return self.get_response(request)
        response = trace.run(self.get_response, request)
        return self._respond(trace, response)

    def _start(self, request: HttpRequest) -> Tuple[Optional[RequestTrace], Optional[HttpResponseBase]]:
        """``(trace, None)`` for a traced request (its session put into ``request.META``),
        ``(None, None)`` to let it pass, ``(None, 500 response)`` when its replay cannot start."""
        meta = request.META
        try:
            query = wsgi_text(meta.get("QUERY_STRING", ""))
            trace = self._begin(request.method or "GET", request.path_info, query, meta, _body_reader(request))
        except TimeTracerError as exc:
            failure = HttpResponseServerError(
                replay_failure_text(exc), content_type="text/plain; charset=utf-8"
            )
            return None, failure
        if trace is not None:
            meta[SESSION_KEY] = trace.session
        return trace, None

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        """The async twin of ``__call__``: the same lifecycle, the view awaited with the session active."""
        trace, failure = self._start(request)
        if failure is not None:
            return failure
        if trace is None:
            return await self.get_response(request)  # type: ignore[misc, no-any-return]
        token = activate(trace.session)
        try:
            response = await self.get_response(request)  # type: ignore[misc]
        except BaseException as exc:
            trace.fail(exc)
            trace.finish()
            raise
        finally:
            deactivate(token)
        if response.streaming and getattr(response, "is_async", False):
            return await _async_streaming(trace, response)
        return self._respond(trace, response)

    def _respond(self, trace: RequestTrace, response: HttpResponseBase) -> HttpResponseBase:
        """Capture the response (wrap a streamed one) and finish, or add the replay verdict."""
        try:
            status_line = f"{response.status_code} {response.reason_phrase}"
            trace.capture.start(status_line, _response_headers(response))
        except Exception:  # never let capture change the response
            trace.capture.status = None
        replaying = trace.session.replaying
        if response.streaming and not getattr(response, "is_async", False):
            content: Iterator[bytes] = response.streaming_content  # type: ignore[attr-defined]
            traced = TracedIterable(content, trace)
            if replaying:  # the verdict header needs the whole body: read it now
                chunks: List[bytes] = []
                try:
                    chunks.extend(traced)
                except Exception as exc:  # live, what came before went out; then the server saw it
                    response.streaming_content = then_raise(chunks, exc)  # type: ignore[attr-defined]
                else:
                    response.streaming_content = chunks  # type: ignore[attr-defined]
                finally:
                    traced.close()
            else:
                response.streaming_content = traced  # type: ignore[attr-defined]
        else:
            if not response.streaming:
                trace.capture.feed(response.content)  # type: ignore[attr-defined]
            trace.finish()
        if replaying:
            response[REPLAY_HEADER] = trace.report.verdict if trace.report is not None else "mismatch"
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> Optional[Any]:
        """Record an exception raised by the view (Django turns it into a response afterwards)."""
        session = request.META.get(SESSION_KEY)
        if session is not None and session.error is None:
            session.record_error(exception)
        return None


class _TracedAsyncContent:
    """An async ``streaming_content`` run with its request's session active, one chunk behind:
    when the content ends, the cassette is written *before* its last chunk is handed on (as
    :class:`~timetracer._response.TracedIterable` does for sync bodies), so it is on disk before the
    client has the whole response. Finished exactly once (at its end, on an error, or on
    ``aclose()``). A class, not an async generator: one closed before its first step would never
    run its ``finally``."""

    def __init__(self, content: AsyncIterator[bytes], trace: RequestTrace) -> None:
        self._content = content.__aiter__()
        self._trace = trace
        self._held: List[Any] = []  # the chunk not handed on yet (at most one)
        self._error: Optional[BaseException] = None  # raised by the content while a chunk was held
        self._ended = False

    def __aiter__(self) -> _TracedAsyncContent:
        return self

    async def _pull(self) -> Any:
        trace = self._trace
        token = activate(trace.session)
        try:
            return await self._content.__anext__()
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            trace.fail(exc)
            raise
        finally:
            deactivate(token)

    async def __anext__(self) -> Any:
        trace = self._trace
        if self._error is not None:
            error, self._error = self._error, None
            trace.finish()
            raise error
        if self._ended:
            raise StopAsyncIteration
        try:
            if not self._held:
                self._held.append(await self._pull())
            following = await self._pull()
        except StopAsyncIteration:
            self._ended = True
            if not self._held:
                trace.finish()
                raise
            last = self._held.pop()
            trace.complete(_as_bytes(last))
            return last
        except BaseException as exc:
            if not self._held:
                trace.finish()
                raise
            self._error = exc  # hand on the chunk already made; the error comes next
            chunk = self._held.pop()
            trace.capture.feed(_as_bytes(chunk))
            return chunk
        chunk = self._held.pop()
        self._held.append(following)
        trace.capture.feed(_as_bytes(chunk))
        return chunk

    async def aclose(self) -> None:
        close = getattr(self._content, "aclose", None)
        try:
            if close is not None:
                await close()
        finally:
            self._trace.finish()


def _as_bytes(chunk: Any) -> bytes:
    return bytes(chunk) if isinstance(chunk, (bytes, bytearray, memoryview)) else str(chunk).encode()


async def _async_streaming(trace: RequestTrace, response: Any) -> HttpResponseBase:
    """An async streamed response: captured as it is sent, or (replay) read whole for the verdict."""
    try:
        trace.capture.start(f"{response.status_code} {response.reason_phrase}", _response_headers(response))
    except Exception:  # never let capture change the response
        trace.capture.status = None
    traced = _TracedAsyncContent(response.streaming_content, trace)
    if not trace.session.replaying:
        response.streaming_content = traced
        return response  # type: ignore[no-any-return]
    chunks: List[bytes] = []
    failure: Optional[Exception] = None
    try:
        async for chunk in traced:
            chunks.append(chunk)
    except Exception as exc:  # live, what came before went out; then the server saw it
        failure = exc
    finally:
        await traced.aclose()

    async def replayed() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
        if failure is not None:
            raise failure

    response.streaming_content = replayed()
    response[REPLAY_HEADER] = trace.report.verdict if trace.report is not None else "mismatch"
    return response  # type: ignore[no-any-return]
