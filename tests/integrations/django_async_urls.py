"""Async views of the Django test project (see ``test_django_async.py``)."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Dict

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

from timetracer import context

# The MongoDB URI the ``/motor`` view uses (set by the test).
MONGO: Dict[str, Any] = {"uri": "", "db": ""}


def _traced(request: HttpRequest) -> bool:
    session = request.META.get("timetracer.session")
    return session is not None and context.current() is session


async def user(request: HttpRequest, user_id: str) -> HttpResponse:
    async def in_a_task() -> bool:
        await asyncio.sleep(0)
        return _traced(request)

    task_traced = await asyncio.create_task(in_a_task())
    return JsonResponse({"_id": user_id, "traced": _traced(request), "task_traced": task_traced})


def sync_user(request: HttpRequest, user_id: str) -> HttpResponse:
    return JsonResponse({"_id": user_id, "traced": _traced(request)})


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for part in ("a", "b", "c"):
            await asyncio.sleep(0)
            yield f"{part}={_traced(request)};".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def stream_fails(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a;"
        raise LookupError("async stream failed")

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def boom(request: HttpRequest) -> HttpResponse:
    raise LookupError("async view failed")


async def products(request: HttpRequest) -> HttpResponse:
    from motor.motor_asyncio import AsyncIOMotorClient

    client = AsyncIOMotorClient(MONGO["uri"], serverSelectionTimeoutMS=2000)
    try:
        db = client[MONGO["db"]]
        names = [p["name"] async for p in db.products.find({}, {"_id": 0}).sort("name", 1)]
        count = await db.products.count_documents({})
    finally:
        client.close()
    return JsonResponse({"names": names, "count": count})


urlpatterns = [
    path("users/<str:user_id>", user),
    path("sync/<str:user_id>", sync_user),
    path("stream", stream),
    path("stream-fails", stream_fails),
    path("boom", boom),
    path("products", products),
]
