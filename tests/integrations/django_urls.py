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


def boom(request: HttpRequest) -> HttpResponse:
    raise LookupError("view failed")


urlpatterns = [
    path("users/<str:user_id>", user),
    path("stream", stream),
    path("boom", boom),
]
