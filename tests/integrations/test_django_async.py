"""The Django middleware under ASGI: async views awaited with the session active, through Django's
``AsyncClient`` (its ASGI request handler), recorded and replayed."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

django = pytest.importorskip("django")
if django.VERSION < (4, 2):  # async streaming responses and the async middleware hooks used here
    pytest.skip("the Django middleware's async support needs Django 4.2+", allow_module_level=True)

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="timetracer-tests",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=f"{__package__}.django_async_urls",
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from asgiref.sync import iscoroutinefunction  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import AsyncClient, override_settings  # noqa: E402

from timetracer import context  # noqa: E402
from timetracer.integrations.django import TimeTracerMiddleware  # noqa: E402

from . import django_async_urls  # noqa: E402

MIDDLEWARE = "timetracer.integrations.django.TimeTracerMiddleware"
pytestmark = pytest.mark.usefixtures("isolated_pymongo_plugin")


def settings_for(tmp_path: Path, mode: str) -> Any:
    return override_settings(
        ROOT_URLCONF=f"{__package__}.django_async_urls",
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=[MIDDLEWARE],
        TIMETRACER={"mode": mode, "cassette_dir": tmp_path},
    )


def get(tmp_path: Path, mode: str, path: str) -> Any:
    async def main() -> Any:
        response = await AsyncClient(raise_request_exception=False).get(path)
        if response.streaming:
            response.body = b"".join([chunk async for chunk in response.streaming_content])
        else:
            response.body = response.content
        return response

    with settings_for(tmp_path, mode):
        return asyncio.run(main())


def read(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_middleware_is_async_under_asgi_and_sync_under_wsgi(tmp_path: Path) -> None:
    async def view(request: Any) -> HttpResponse:
        return HttpResponse("x")

    def sync_view(request: Any) -> HttpResponse:
        return HttpResponse("x")

    with settings_for(tmp_path, "record"):
        assert TimeTracerMiddleware.async_capable and TimeTracerMiddleware.sync_capable
        assert iscoroutinefunction(TimeTracerMiddleware(view))
        assert not iscoroutinefunction(TimeTracerMiddleware(sync_view))


def test_an_async_view_runs_with_the_session_active_in_it_and_its_tasks(tmp_path: Path) -> None:
    response = get(tmp_path, "record", "/users/7")
    assert response.status_code == 200
    assert json.loads(response.body) == {"_id": "7", "traced": True, "task_traced": True}
    document = read(tmp_path / "GET__users_7.json")
    assert document["response"]["status"] == 200
    assert json.loads(document["response"]["body"]["data"]) == json.loads(response.body)
    assert context.current() is None

    replayed = get(tmp_path, "replay", "/users/7")
    assert replayed.body == response.body
    assert replayed["X-Timetracer-Replay"] == "identical"


def test_a_sync_view_under_asgi_sees_the_session_too(tmp_path: Path) -> None:
    response = get(tmp_path, "record", "/sync/9")
    assert json.loads(response.body) == {"_id": "9", "traced": True}
    assert (tmp_path / "GET__sync_9.json").exists()


def test_an_async_streamed_response_is_captured_and_replayed(tmp_path: Path) -> None:
    response = get(tmp_path, "record", "/stream")
    assert response.body == b"a=True;b=True;c=True;"
    assert read(tmp_path / "GET__stream.json")["response"]["body"]["data"] == "a=True;b=True;c=True;"
    replayed = get(tmp_path, "replay", "/stream")
    assert replayed.body == response.body
    assert replayed["X-Timetracer-Replay"] == "identical"


def test_an_async_stream_failing_midway_replays_what_it_sent_then_fails(tmp_path: Path) -> None:
    def serve(mode: str) -> Any:
        async def main() -> Any:
            response = await AsyncClient().get("/stream-fails")
            chunks = response.streaming_content.__aiter__()
            first = await chunks.__anext__()  # live, this went out before the stream failed
            with pytest.raises(LookupError, match="async stream failed"):
                await chunks.__anext__()
            return response, first

        with settings_for(tmp_path, mode):
            return asyncio.run(main())

    recorded, recorded_first = serve("record")
    replayed, replayed_first = serve("replay")
    assert replayed_first == recorded_first == b"a;"
    assert replayed.status_code == recorded.status_code == 200
    assert replayed["X-Timetracer-Replay"] == "identical"


def test_an_async_stream_has_its_cassette_on_disk_before_its_last_chunk_is_handed_on(tmp_path: Path) -> None:
    cassette = tmp_path / "GET__stream.json"
    seen = []

    async def main() -> None:
        response = await AsyncClient().get("/stream")
        async for chunk in response.streaming_content:
            seen.append((bytes(chunk), cassette.exists()))

    with settings_for(tmp_path, "record"):
        asyncio.run(main())
    # Every chunk but the last leaves before the cassette is written; the last one only after it.
    assert seen == [(b"a=True;", False), (b"b=True;", False), (b"c=True;", True)]
    assert read(cassette)["response"]["body"]["data"] == "a=True;b=True;c=True;"


def test_an_async_view_exception_is_recorded(tmp_path: Path) -> None:
    response = get(tmp_path, "record", "/boom")
    assert response.status_code == 500
    document = read(tmp_path / "GET__boom.json")
    assert document["error"] == {"type": "builtins.LookupError", "message": "async view failed"}
    assert document["response"]["status"] == 500


@pytest.fixture
def shop(mongo_client: Any, mongo_uri: str) -> Iterator[None]:
    name = f"tt_django_{uuid.uuid4().hex[:10]}"
    mongo_client[name].products.insert_many([{"name": "Mouse"}, {"name": "Keyboard"}])
    django_async_urls.MONGO.update(uri=mongo_uri, db=name)
    yield
    mongo_client.drop_database(name)


@pytest.mark.usefixtures("shop")
def test_motor_calls_of_an_async_view_are_recorded_and_replayed(tmp_path: Path, dead_mongo_uri: str) -> None:
    pytest.importorskip("motor")
    from timetracer.plugins import disable_motor, enable_motor

    enable_motor()
    try:
        recorded = get(tmp_path, "record", "/products")
        assert json.loads(recorded.body) == {"names": ["Keyboard", "Mouse"], "count": 2}
        events = read(tmp_path / "GET__products.json")["events"]
        assert [e["signature"]["method"] for e in events] == ["FIND", "COUNT_DOCUMENTS"]
        django_async_urls.MONGO["uri"] = dead_mongo_uri
        replayed = get(tmp_path, "replay", "/products")
    finally:
        disable_motor()
    assert replayed.body == recorded.body
    assert replayed["X-Timetracer-Replay"] == "identical"
