"""Django adapter: a ``MIDDLEWARE`` entry that records or replays each request's MongoDB calls.

Add ``"timetracer.integrations.django.TimeTracerMiddleware"`` near the top of ``MIDDLEWARE``. The
settings are the ``TIMETRACER_*`` environment variables, overridden by an optional ``TIMETRACER``
dict in the Django settings whose keys are :class:`~timetracer.config.TraceConfig` fields
(``TIMETRACER = {"mode": "record", "cassette_dir": BASE_DIR / "cassettes"}``), read once at startup.
The request lifecycle is the one of :mod:`timetracer.wsgi`; the session is put into
``request.META["timetracer.session"]``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Mapping, Optional, Tuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.http import HttpRequest, HttpResponseServerError
from django.http.response import HttpResponseBase  # not re-exported by django.http before 4.0

from timetracer._body import Body, capture_body
from timetracer._lifecycle import REPLAY_HEADER, SESSION_KEY, RequestLifecycle, replay_failure_text
from timetracer._request import wsgi_text
from timetracer._response import TracedIterable
from timetracer.config import Mode, TraceConfig
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
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        config = config_from_settings()
        if config.mode is Mode.OFF:
            raise MiddlewareNotUsed("timetracer is off (set TIMETRACER_MODE or settings.TIMETRACER)")
        super().__init__(config)
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        meta = request.META
        method = request.method or "GET"
        try:
            query = wsgi_text(meta.get("QUERY_STRING", ""))
            trace = self._begin(method, request.path_info, query, meta, _body_reader(request))
        except TimeTracerError as exc:
            return HttpResponseServerError(replay_failure_text(exc), content_type="text/plain; charset=utf-8")
        if trace is None:
            return self.get_response(request)
        meta[SESSION_KEY] = trace.session
        response = trace.run(self.get_response, request)
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
                try:
                    chunks = list(traced)
                finally:
                    traced.close()
                response.streaming_content = chunks  # type: ignore[attr-defined]
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
