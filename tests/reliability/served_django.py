"""A small Django + PyMongo project recorded by timetracer's Django middleware, for the kill tests.

Served as ``served_django:application`` by gunicorn. ``SERVED_MONGODB_URI`` is the MongoDB server
it reads from; the ``TIMETRACER_*`` variables configure recording.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="reliability-tests",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["timetracer.integrations.django.TimeTracerMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from pymongo import MongoClient  # noqa: E402

import timetracer.plugins  # noqa: E402

timetracer.plugins.enable_pymongo()
client: MongoClient[Any] = MongoClient(os.environ["SERVED_MONGODB_URI"], serverSelectionTimeoutMS=10000)
items = client[os.environ.get("SERVED_DB", "reliability")]["items"]


def item(request: HttpRequest) -> JsonResponse:
    found = items.find_one({"name": "widget"}, {"_id": 0})
    return JsonResponse({"found": found, "padding": "x" * 4096})


def stream(request: HttpRequest) -> StreamingHttpResponse:
    found = list(items.find({}, {"_id": 0}).sort("n", 1))

    def body() -> Iterator[bytes]:
        for document in found:
            yield f"{document['name']}\n".encode()
        yield b"end\n"

    return StreamingHttpResponse(body(), content_type="text/plain")


urlpatterns = [path("item", item), path("stream", stream)]
application = get_wsgi_application()
