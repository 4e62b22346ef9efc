"""Tests of the Django adapter, through Django's test client and through its WSGI application."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="timetracer-tests",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=f"{__package__}.django_urls",
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client as DjangoClient  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from timetracer import context  # noqa: E402
from timetracer.config import TraceConfig  # noqa: E402
from timetracer.integrations.django import TimeTracerMiddleware as DjangoMiddleware  # noqa: E402
from timetracer.wsgi import TimeTracerMiddleware  # noqa: E402

MIDDLEWARE = "timetracer.integrations.django.TimeTracerMiddleware"
BASE: Dict[str, Any] = {"ROOT_URLCONF": f"{__package__}.django_urls", "ALLOWED_HOSTS": ["*"]}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test process's TIMETRACER_* variables must not leak in (tests set what they need)."""
    import os

    for name in [n for n in os.environ if n.startswith("TIMETRACER_")]:
        monkeypatch.delenv(name)
    yield


def read(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def recording(tmp_path: Path, **extra: Any) -> Any:
    return override_settings(
        **BASE, MIDDLEWARE=[MIDDLEWARE], TIMETRACER={"mode": "record", "cassette_dir": tmp_path, **extra}
    )


def test_records_a_normal_view(tmp_path: Path) -> None:
    with recording(tmp_path):
        response = DjangoClient().get("/users/123?full=1", HTTP_AUTHORIZATION="Bearer x", HTTP_X_TRACE="t")
    assert response.status_code == 200
    assert response.json() == {"_id": "123", "name": "Alice", "traced": True}

    (name,) = [p.name for p in tmp_path.iterdir()]
    assert name.startswith("GET__users_123~q")  # the query string is part of the request's identity
    document = read(tmp_path / name)
    request = document["request"]
    assert (request["method"], request["path"], request["query"]) == ("GET", "/users/123", "full=1")
    assert request["headers"]["authorization"] == "[REDACTED]"
    assert request["headers"]["x-trace"] == "t"
    recorded = document["response"]
    assert (recorded["status"], recorded["reason"]) == (200, "OK")
    assert ["Content-Type", "application/json"] in recorded["headers"]
    assert json.loads(recorded["body"]["data"])["name"] == "Alice"
    assert recorded["body"]["size"] == len(response.content)
    assert context.current() is None


def test_records_a_streaming_view_as_it_streams(tmp_path: Path) -> None:
    target = tmp_path / "GET__stream.json"
    with recording(tmp_path):
        response = DjangoClient().get("/stream")
        assert response.streaming
        assert not target.exists()  # written when the stream ends
        body = b"".join(response.streaming_content)
    assert body == b"a=True;b=True;c=True;"  # the session was active around every chunk
    recorded = read(target)["response"]
    assert recorded["body"] == {
        "encoding": "utf-8",
        "data": body.decode(),
        "size": len(body),
        "truncated": False,
    }


def test_streaming_cassette_is_on_disk_before_the_last_chunk_is_handed_on(tmp_path: Path) -> None:
    target = tmp_path / "GET__stream.json"
    with recording(tmp_path):
        response = DjangoClient().get("/stream")
        chunks = iter(response.streaming_content)
        assert next(chunks) == b"a=True;" and next(chunks) == b"b=True;"
        assert not target.exists()  # the body is not complete yet: it still streams
        assert next(chunks) == b"c=True;"
        # The last chunk is only handed on once the cassette is written.
        assert read(target)["response"]["body"]["data"] == "a=True;b=True;c=True;"
        assert list(chunks) == []
        response.close()


def test_replay_with_a_missing_fixed_cassette_fails_at_startup(tmp_path: Path) -> None:
    from timetracer.errors import ConfigError
    from timetracer.integrations.django import TimeTracerMiddleware

    fixed = tmp_path / "missing.json"
    with override_settings(**BASE, TIMETRACER={"mode": "replay", "cassette": fixed}):
        with pytest.raises(ConfigError, match="does not exist") as info:
            TimeTracerMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]
    assert str(fixed) in str(info.value)


def test_view_exception_is_recorded(tmp_path: Path) -> None:
    with recording(tmp_path):
        response = DjangoClient(raise_request_exception=False).get("/boom")
    assert response.status_code == 500
    document = read(tmp_path / "GET__boom.json")
    assert document["error"] == {"type": "builtins.LookupError", "message": "view failed"}
    assert document["response"]["status"] == 500


def test_exception_escaping_get_response_is_recorded_and_reraised(tmp_path: Path) -> None:
    error = RuntimeError("below the middleware")

    def get_response(request: Any) -> HttpResponse:
        raise error

    with recording(tmp_path):
        middleware = DjangoMiddleware(get_response)
        with pytest.raises(RuntimeError) as caught:
            middleware(RequestFactory().get("/users/9"))
    assert caught.value is error
    assert read(tmp_path / "GET__users_9.json")["error"]["message"] == "below the middleware"


def test_non_streaming_cassette_is_written_before_the_response_returns(tmp_path: Path) -> None:
    with recording(tmp_path):
        middleware = DjangoMiddleware(lambda request: HttpResponse(b"done", status=201))
        response = middleware(RequestFactory().post("/orders", data={"a": "1", "password": "hunter2"}))
        assert response.status_code == 201
        (name,) = [p.name for p in tmp_path.iterdir()]
        assert name.startswith("POST__orders~q")  # the body is part of the request's identity
        recorded = read(tmp_path / name)
    assert recorded["request"]["headers"]["content-type"].startswith("multipart/form-data")
    body = recorded["request"]["body"]
    assert 'name="a"\r\n\r\n1\r\n' in body and "hunter2" not in body
    assert 'name="password"\r\n\r\n[REDACTED]\r\n' in body
    assert (recorded["response"]["status"], recorded["response"]["body"]["data"]) == (201, "done")


def test_off_mode_raises_middleware_not_used() -> None:
    with override_settings(**BASE, TIMETRACER={"mode": "off"}):
        with pytest.raises(MiddlewareNotUsed):
            DjangoMiddleware(lambda request: HttpResponse())


def test_off_by_default_and_django_drops_it() -> None:
    with override_settings(**BASE, MIDDLEWARE=[MIDDLEWARE]):
        response = DjangoClient().get("/users/1")
    assert response.json()["traced"] is False


@pytest.mark.parametrize(
    ("env", "setting", "records"),
    [
        pytest.param({"TIMETRACER_MODE": "off"}, {"mode": "record"}, True, id="setting-overrides-env-off"),
        pytest.param(
            {"TIMETRACER_MODE": "record"}, {"mode": "off"}, False, id="setting-overrides-env-record"
        ),
        pytest.param({"TIMETRACER_MODE": "record"}, {}, True, id="env-used-without-setting"),
        pytest.param({}, {"mode": "record"}, True, id="setting-alone"),
    ],
)
def test_settings_override_the_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: Dict[str, str],
    setting: Dict[str, Any],
    records: bool,
) -> None:
    monkeypatch.setenv("TIMETRACER_CASSETTE_DIR", str(tmp_path / "from-env"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    setting = {**setting, "cassette_dir": tmp_path / "from-settings"} if setting else {}
    with override_settings(**BASE, MIDDLEWARE=[MIDDLEWARE], TIMETRACER=setting):
        DjangoClient().get("/users/7")
    folder = tmp_path / ("from-settings" if setting else "from-env")
    assert (folder / "GET__users_7.json").exists() is records


@pytest.mark.parametrize(
    ("setting", "error", "match"),
    [
        pytest.param({"mdoe": "record"}, ImproperlyConfigured, "mdoe", id="unknown-key"),
        pytest.param(["record"], ImproperlyConfigured, "dict", id="not-a-dict"),
        pytest.param({"mode": "recrod"}, ValueError, "recrod", id="bad-value"),
    ],
)
def test_bad_settings_are_refused_at_startup(setting: Any, error: type, match: str) -> None:
    with override_settings(**BASE, TIMETRACER=setting):
        with pytest.raises(error, match=match):
            DjangoMiddleware(lambda request: HttpResponse())


def test_replay_of_a_missing_cassette_is_a_500(tmp_path: Path) -> None:
    with override_settings(
        **BASE, MIDDLEWARE=[MIDDLEWARE], TIMETRACER={"mode": "replay", "cassette_dir": tmp_path}
    ):
        response = DjangoClient().get("/users/404")
    assert response.status_code == 500
    assert str(tmp_path / "GET__users_404.json") in response.content.decode()


def test_record_then_replay(tmp_path: Path) -> None:
    with recording(tmp_path):
        DjangoClient().get("/users/5")
    with override_settings(
        **BASE, MIDDLEWARE=[MIDDLEWARE], TIMETRACER={"mode": "replay", "cassette_dir": tmp_path}
    ):
        response = DjangoClient().get("/users/5")
    assert response.json()["traced"] is True


def test_a_stream_failing_midway_replays_what_it_sent_then_fails(tmp_path: Path) -> None:
    def serve(mode: str) -> Any:
        with override_settings(**BASE, MIDDLEWARE=[MIDDLEWARE], TIMETRACER={"mode": mode, "cassette_dir": tmp_path}):
            response = DjangoClient().get("/stream-fails")
            chunks = iter(response.streaming_content)
            first = next(chunks)  # live, this went out before the stream failed
            with pytest.raises(LookupError, match="stream failed"):
                next(chunks)
        return response, first

    recorded, recorded_first = serve("record")
    replayed, replayed_first = serve("replay")
    assert replayed_first == recorded_first == b"a;"
    assert replayed.status_code == recorded.status_code == 200
    assert replayed["X-Timetracer-Replay"] == "identical"
    assert read(tmp_path / "GET__stream-fails.json")["error"]["message"] == "stream failed"


def test_wsgi_middleware_around_get_wsgi_application(tmp_path: Path) -> None:
    with override_settings(**BASE, MIDDLEWARE=[]):
        config = TraceConfig.from_env({}, mode="record", cassette_dir=tmp_path)
        client = Client(TimeTracerMiddleware(get_wsgi_application(), config))
        response = client.get("/users/123", buffered=True)
        assert json.loads(response.data) == {"_id": "123", "name": "Alice", "traced": True}
        streamed = client.get("/stream", buffered=True)
        assert streamed.get_data() == b"a=True;b=True;c=True;"
    assert read(tmp_path / "GET__users_123.json")["response"]["status"] == 200
    assert read(tmp_path / "GET__stream.json")["response"]["body"]["data"] == "a=True;b=True;c=True;"


def test_django_middleware_through_the_wsgi_handler(tmp_path: Path) -> None:
    with recording(tmp_path):
        client = Client(get_wsgi_application())
        with client.get("/stream") as response:
            assert response.get_data() == b"a=True;b=True;c=True;"
    assert read(tmp_path / "GET__stream.json")["response"]["body"]["size"] == 21


@pytest.mark.parametrize(
    "body, content_type, stored",
    [
        pytest.param(
            b'{"user": "ann", "password": "hunter2"}',
            "application/json",
            '{"user":"ann","password":"[REDACTED]"}',
            id="json",
        ),
        pytest.param(
            b"user=ann&password=hunter2&tag=a&tag=b",
            "application/x-www-form-urlencoded",
            "user=ann&password=[REDACTED]&tag=a&tag=b",
            id="form",
        ),
    ],
)
def test_the_request_body_is_captured_and_the_view_reads_it_unchanged(
    tmp_path: Path, body: bytes, content_type: str, stored: str
) -> None:
    with override_settings(**BASE, MIDDLEWARE=[]):
        plain = DjangoClient().post("/echo?token=t1&page=2", data=body, content_type=content_type)
    with recording(tmp_path):
        traced = DjangoClient().post("/echo?token=t1&page=2", data=body, content_type=content_type)
    assert traced.content == plain.content
    assert b"hunter2" in traced.content  # the view sees the real value
    (cassette,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    request = read(cassette)["request"]
    assert request["query"] == "token=[REDACTED]&page=2"
    assert (request["body"], request["body_encoding"], request["body_truncated"]) == (stored, "text", False)


def test_a_multipart_upload_is_parsed_by_the_view_and_its_secret_fields_redacted(tmp_path: Path) -> None:
    data = {"user": "ann", "password": "hunter2", "tag": ["a", "b"]}
    with override_settings(**BASE, MIDDLEWARE=[]):
        plain = DjangoClient().post("/echo", data=data)
    with recording(tmp_path):
        traced = DjangoClient().post("/echo", data=data)
    assert traced.json() == plain.json() == {"user": ["ann"], "password": ["hunter2"], "tag": ["a", "b"]}
    (cassette,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    body = read(cassette)["request"]["body"]
    assert "hunter2" not in body and 'name="password"\r\n\r\n[REDACTED]\r\n' in body
    assert 'name="user"\r\n\r\nann\r\n' in body
