"""URLs and views of the Django test project (see ``test_django.py``)."""

from __future__ import annotations

from typing import Iterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

from timetracer import context


def _traced(request: HttpRequest) -> bool:
    session = request.META.get("timetracer.session")
    return session is not None and context.current() is session


def user(request: HttpRequest, user_id: str) -> HttpResponse:
    return JsonResponse({"_id": user_id, "name": "Alice", "traced": _traced(request)})


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        for part in ("a", "b", "c"):
            yield f"{part}={_traced(request)};".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def stream_fails(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        yield b"a;"
        raise LookupError("stream failed")

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def boom(request: HttpRequest) -> HttpResponse:
    raise LookupError("view failed")


def echo(request: HttpRequest) -> HttpResponse:
    """The body as the view reads it: raw for JSON, parsed for forms."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return JsonResponse({key: request.POST.getlist(key) for key in request.POST})
    return HttpResponse(request.body, content_type="application/octet-stream")


urlpatterns = [
    path("echo", echo),
    path("users/<str:user_id>", user),
    path("stream", stream),
    path("stream-fails", stream_fails),
    path("boom", boom),
]
