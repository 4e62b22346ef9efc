"""Tests of the WSGI middleware, driven through werkzeug's test client or called as a server would."""

from __future__ import annotations

import gc
import gzip
import json
import logging
import random
import re
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from werkzeug.serving import make_server
from werkzeug.test import Client, EnvironBuilder

from timetracer import context
from timetracer._lifecycle import request_headers
from timetracer._response import ResponseCapture, encode_body
from timetracer.cassette import load_schema, read_cassette, write_cassette
from timetracer.config import Mode, TraceConfig
from timetracer.errors import ConfigError
from timetracer.session import Session
from timetracer.wsgi import SESSION_KEY, TimeTracerMiddleware

JSON_BODY = b'{"id": "123", "name": "Alice"}'


# -- helpers ---------------------------------------------------------------------------------


def make_config(cassette_dir: Path, **overrides: Any) -> TraceConfig:
    """A config from explicit values only (the test process's TIMETRACER_* variables are ignored)."""
    overrides.setdefault("mode", "record")
    return TraceConfig.from_env({}, cassette_dir=cassette_dir, **overrides)


def json_app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Set-Cookie", "sid=secret"), ("X-Plain", "kept")],
    )
    return [JSON_BODY]


def status_app(status: str) -> Callable[..., List[bytes]]:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        start_response(status, [("Content-Type", "text/plain")])
        return [status.encode()]

    return app


class Closable:
    """A response iterable that notes what happens to it and which session was active then."""

    def __init__(self, chunks: List[bytes]) -> None:
        self.chunks = chunks
        self.closed = 0
        self.seen: List[Optional[Session]] = []

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.seen.append(context.current())
            yield chunk

    def close(self) -> None:
        self.closed += 1
        self.seen.append(context.current())


class Server:
    """Calls a WSGI app the way a server does, keeping what start_response and write() got."""

    def __init__(self, *, reraise: bool = False) -> None:
        self.status: Optional[str] = None
        self.headers: List[Tuple[str, str]] = []
        self.exc_info: Any = None
        self.written: List[bytes] = []
        self.reraise = reraise

    def start_response(self, status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None:
            self.exc_info = exc_info
            if self.reraise:
                raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, headers
        return self.written.append

    def call(self, app: Callable[..., Any], path: str = "/users/123", **builder: Any) -> Tuple[Dict, Any]:
        environ = EnvironBuilder(path="/", **builder).get_environ()
        environ["PATH_INFO"] = path
        return environ, app(environ, self.start_response)


def cassette(directory: Path, name: str = "GET__users_123.json") -> Dict[str, Any]:
    return json.loads((directory / name).read_text(encoding="utf-8"))


def files_under(root: Path) -> List[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def cassettes(tmp_path: Path) -> Path:
    return tmp_path / "cassettes"


# -- configuration ---------------------------------------------------------------------------


def test_config_is_read_from_env_at_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMETRACER_MODE", "recrod")
    with pytest.raises(ConfigError, match="recrod"):
        TimeTracerMiddleware(json_app)


def test_creation_marks_middleware_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "middleware_installed", False)
    TimeTracerMiddleware(json_app, TraceConfig.from_env({}))
    assert context.middleware_installed is True


def test_off_mode_calls_the_app_directly() -> None:
    body = [b"plain"]

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        assert context.current() is None
        start_response("200 OK", [])
        return body

    middleware = TimeTracerMiddleware(app, TraceConfig.from_env({}, mode="off"))
    environ, result = Server().call(middleware)
    assert result is body
    assert SESSION_KEY not in environ


# -- recording -------------------------------------------------------------------------------


def test_record_writes_cassette_named_after_request(cassettes: Path) -> None:
    config = make_config(cassettes, service="shop", env="test", redact_headers="x-team-token")
    client = Client(TimeTracerMiddleware(json_app, config))
    response = client.get(
        "/users/123?full=1",
        headers={"Authorization": "Bearer t", "X-Team-Token": "t2", "X-Trace": "abc"},
        buffered=True,
    )
    assert response.status_code == 200
    assert response.get_data() == JSON_BODY

    # A query string puts a digest of it in the name (GET /users/123 alone is GET__users_123.json).
    (name,) = [p.name for p in cassettes.iterdir()]
    assert re.fullmatch(r"GET__users_123~q[0-9a-f]{10}\.json", name), name
    document = cassette(cassettes, name)
    assert {"schema_version", "session", "request", "response", "events"} <= set(document)
    assert document["schema_version"] == "1.1"
    assert {"id", "recorded_at", "service", "env"} <= set(document["session"])
    assert (document["session"]["service"], document["session"]["env"]) == ("shop", "test")
    request = document["request"]
    assert (request["method"], request["path"], request["query"]) == ("GET", "/users/123", "full=1")
    assert request["headers"]["authorization"] == "[REDACTED]"
    assert request["headers"]["x-team-token"] == "[REDACTED]"
    assert request["headers"]["x-trace"] == "abc"
    assert document["events"] == []
    assert document["response"] == {
        "status": 200,
        "reason": "OK",
        "headers": [
            ["Content-Type", "application/json"],
            ["Set-Cookie", "[REDACTED]"],
            ["X-Plain", "kept"],
        ],
        "body": {"encoding": "utf-8", "data": JSON_BODY.decode(), "size": len(JSON_BODY), "truncated": False},
    }


def test_recorded_cassette_conforms_to_schema(cassettes: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    Client(TimeTracerMiddleware(json_app, make_config(cassettes))).get("/users/123", buffered=True)
    jsonschema.validate(cassette(cassettes), load_schema())


def test_fixed_cassette_path_is_used_for_every_request(tmp_path: Path) -> None:
    target = tmp_path / "one.json"
    config = make_config(tmp_path / "unused", cassette=target)
    Client(TimeTracerMiddleware(json_app, config)).get("/anything", buffered=True)
    assert json.loads(target.read_text())["request"]["path"] == "/anything"
    assert not (tmp_path / "unused").exists()


def test_gzip_compression_writes_json_gz(cassettes: Path) -> None:
    config = make_config(cassettes, compression="gzip")
    Client(TimeTracerMiddleware(json_app, config)).get("/users/123", buffered=True)
    data = (cassettes / "GET__users_123.json.gz").read_bytes()
    assert json.loads(gzip.decompress(data))["request"]["path"] == "/users/123"


def test_body_over_the_cap_is_truncated_with_full_size(cassettes: Path) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello", b" ", b"world"]

    response = Client(TimeTracerMiddleware(app, make_config(cassettes, max_body_bytes=4))).get(
        "/users/123", buffered=True
    )
    assert response.get_data() == b"hello world"  # the client gets everything
    body = cassette(cassettes)["response"]["body"]
    assert body == {"encoding": "utf-8", "data": "hell", "size": 11, "truncated": True}


@pytest.mark.parametrize(
    ("data", "size", "expected"),
    [
        pytest.param(b"abc", 3, {"encoding": "utf-8", "data": "abc", "truncated": False}, id="text"),
        pytest.param(b"", 0, {"encoding": "utf-8", "data": "", "truncated": False}, id="empty"),
        pytest.param(
            "é".encode(), 2, {"encoding": "utf-8", "data": "é", "truncated": False}, id="multibyte-text"
        ),
        pytest.param(
            b"\x89PNG\xff", 5, {"encoding": "base64", "data": "iVBOR/8=", "truncated": False}, id="binary"
        ),
        pytest.param(
            b"ab\xc3", 10, {"encoding": "utf-8", "data": "ab", "truncated": True}, id="cut-inside-a-character"
        ),
        pytest.param(
            b"\xffab", 10, {"encoding": "base64", "data": "/2Fi", "truncated": True}, id="truncated-binary"
        ),
    ],
)
def test_encode_body(data: bytes, size: int, expected: Dict[str, Any]) -> None:
    assert encode_body(data, size) == {**expected, "size": size}


@pytest.mark.parametrize(
    ("status_line", "status", "reason"),
    [
        pytest.param("200 OK", 200, "OK", id="ok"),
        pytest.param("404 Not Found", 404, "Not Found", id="two-word-reason"),
        pytest.param("599", 599, "", id="no-reason"),
        pytest.param("abc nope", None, "nope", id="not-a-number"),
    ],
)
def test_status_line_parsing(status_line: str, status: Optional[int], reason: str) -> None:
    capture = ResponseCapture(limit=10)
    capture.start(status_line, [])
    assert (capture.status, capture.reason) == (status, reason)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({"HTTP_X_TRACE": "a"}, {"x-trace": "a"}, id="http-prefix-lowered-dashed"),
        pytest.param({"HTTP_AUTHORIZATION": "Bearer x"}, {"authorization": "[REDACTED]"}, id="redacted"),
        pytest.param({"HTTP_COOKIE": "a=b"}, {"cookie": "[REDACTED]"}, id="cookie-redacted"),
        pytest.param(
            {"CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "3"},
            {"content-type": "text/plain", "content-length": "3"},
            id="content-headers",
        ),
        pytest.param({"CONTENT_TYPE": "", "CONTENT_LENGTH": ""}, {}, id="empty-content-headers-skipped"),
        pytest.param({"PATH_INFO": "/x", "wsgi.input": object()}, {}, id="non-headers-skipped"),
        pytest.param({"HTTP_X_OBJ": object()}, {}, id="non-string-skipped"),
    ],
)
def test_request_headers(environ: Dict[str, Any], expected: Dict[str, str]) -> None:
    assert request_headers(environ, TraceConfig().redacted_headers) == expected


def test_write_callable_bytes_are_captured_before_the_iterable(cassettes: Path) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"head-")
        return [b"tail"]

    server = Server()
    _, result = server.call(TimeTracerMiddleware(app, make_config(cassettes)))
    # The last write() is held back like the iterable's chunks (one chunk behind the app, so the
    # cassette is written before the last chunk leaves): the client gets the same bytes in order.
    assert server.written == []
    assert next(result) == b"head-"
    assert not (cassettes / "GET__users_123.json").exists()
    assert next(result) == b"tail"
    assert cassette(cassettes)["response"]["body"]["data"] == "head-tail"  # before the last chunk
    assert list(result) == []
    result.close()
    assert server.written == []


def test_many_writes_go_out_in_order_one_behind(cassettes: Path) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        for piece in (b"a", b"b", b"c"):
            write(piece)
        return []

    server = Server()
    _, result = server.call(TimeTracerMiddleware(app, make_config(cassettes)))
    assert server.written == [b"a", b"b"]
    assert not (cassettes / "GET__users_123.json").exists()
    assert next(result) == b"c"
    assert cassette(cassettes)["response"]["body"]["data"] == "abc"
    assert list(result) == []
    result.close()


def test_held_write_is_sent_when_the_app_raises(cassettes: Path) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"partial")
        raise RuntimeError("boom")

    server = Server()
    with pytest.raises(RuntimeError, match="boom"):
        server.call(TimeTracerMiddleware(app, make_config(cassettes)))
    assert server.written == [b"partial"]
    document = cassette(cassettes)
    assert document["error"]["type"] == "builtins.RuntimeError"


def test_exc_info_is_passed_to_the_server_before_headers_are_sent(cassettes: Path) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise KeyError("lost")
        except KeyError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"sorry"]

    server = Server()
    _, result = server.call(TimeTracerMiddleware(app, make_config(cassettes)))
    list(result)
    result.close()
    assert server.exc_info is not None and isinstance(server.exc_info[1], KeyError)
    assert server.status == "500 Internal Server Error"
    response = cassette(cassettes)["response"]
    assert (response["status"], response["body"]["data"]) == (500, "sorry")


def test_exc_info_reraised_by_the_server_propagates_unchanged(cassettes: Path) -> None:
    error = KeyError("after headers")

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial"
        try:
            raise error
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    server = Server(reraise=True)
    _, result = server.call(TimeTracerMiddleware(app, make_config(cassettes)))
    assert next(result) == b"partial"
    with pytest.raises(KeyError) as caught:
        next(result)
    assert caught.value is error
    result.close()
    document = cassette(cassettes)
    assert document["error"] == {"type": "builtins.KeyError", "message": "'after headers'"}
    assert (document["response"]["status"], document["response"]["body"]["data"]) == (200, "partial")


def test_exception_from_the_app_is_recorded_and_reraised(cassettes: Path) -> None:
    error = RuntimeError("database down")

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        raise error

    with pytest.raises(RuntimeError) as caught:
        Client(TimeTracerMiddleware(app, make_config(cassettes))).get("/users/123")
    assert caught.value is error
    document = cassette(cassettes)
    assert document["error"] == {"type": "builtins.RuntimeError", "message": "database down"}
    assert "response" not in document


def test_exception_mid_stream_is_recorded_and_reraised(cassettes: Path) -> None:
    error = ValueError("boom")

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first;"
        raise error

    with pytest.raises(ValueError) as caught:
        Client(TimeTracerMiddleware(app, make_config(cassettes))).get("/users/123", buffered=True)
    assert caught.value is error
    document = cassette(cassettes)
    assert document["error"] == {"type": "builtins.ValueError", "message": "boom"}
    assert document["response"]["body"]["data"] == "first;"


def test_cassette_written_when_iteration_raises_even_before_close(cassettes: Path) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"x"
        raise ValueError("mid")

    _, result = Server().call(TimeTracerMiddleware(app, make_config(cassettes)))
    next(result)
    with pytest.raises(ValueError):
        next(result)
    assert cassette(cassettes)["error"]["message"] == "mid"
    (cassettes / "GET__users_123.json").unlink()
    result.close()  # the request is already finished: nothing is written twice
    assert not (cassettes / "GET__users_123.json").exists()


def test_response_closed_without_iteration_is_still_written(cassettes: Path) -> None:
    body = Closable([b"never", b"read"])

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Closable:
        start_response("204 No Content", [])
        return body

    environ, result = Server().call(TimeTracerMiddleware(app, make_config(cassettes)))
    result.close()
    assert body.closed == 1
    assert body.seen == [environ[SESSION_KEY]]  # close() ran with the session active
    response = cassette(cassettes)["response"]
    assert response["status"] == 204 and response["body"]["size"] == 0


def test_response_closed_early_keeps_what_was_sent(cassettes: Path) -> None:
    finally_ran_in: List[Optional[Session]] = []

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            yield b"one,"
            yield b"two"
        finally:
            finally_ran_in.append(context.current())

    environ, result = Server().call(TimeTracerMiddleware(app, make_config(cassettes)))
    assert next(result) == b"one,"
    result.close()
    result.close()  # idempotent
    assert finally_ran_in == [environ[SESSION_KEY]]
    body = cassette(cassettes)["response"]["body"]
    assert (body["data"], body["size"]) == ("one,", 4)


def test_inner_iterable_closed_once_and_cassette_written_once(cassettes: Path) -> None:
    body = Closable([b"a"])

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Closable:
        start_response("200 OK", [])
        return body

    _, result = Server().call(TimeTracerMiddleware(app, make_config(cassettes)))
    list(result)
    assert cassette(cassettes)["response"]["body"]["data"] == "a"  # written before the last chunk
    (cassettes / "GET__users_123.json").unlink()
    result.close()
    result.close()
    assert body.closed == 1
    assert not (cassettes / "GET__users_123.json").exists()


def test_response_never_iterated_nor_closed_is_written_when_dropped(cassettes: Path) -> None:
    _, result = Server().call(TimeTracerMiddleware(json_app, make_config(cassettes)))
    assert not (cassettes / "GET__users_123.json").exists()  # the body is not complete yet
    del result
    gc.collect()
    assert cassette(cassettes)["response"]["status"] == 200


@pytest.mark.parametrize(
    ("app", "written"),
    [
        pytest.param(status_app("200 OK"), False, id="ok-not-written"),
        pytest.param(status_app("404 Not Found"), False, id="client-error-not-written"),
        pytest.param(status_app("500 Internal Server Error"), True, id="server-error-written"),
        pytest.param(status_app("503 Service Unavailable"), True, id="unavailable-written"),
    ],
)
def test_errors_only_by_status(cassettes: Path, app: Callable[..., Any], written: bool) -> None:
    Client(TimeTracerMiddleware(app, make_config(cassettes, errors_only=True))).get(
        "/users/123", buffered=True
    )
    assert (cassettes / "GET__users_123.json").exists() is written


def test_errors_only_writes_a_raising_request(cassettes: Path) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"x"
        raise OSError("disk")

    with pytest.raises(OSError):
        Client(TimeTracerMiddleware(app, make_config(cassettes, errors_only=True))).get(
            "/users/123", buffered=True
        )
    assert cassette(cassettes)["error"]["message"] == "disk"


@pytest.mark.parametrize(
    ("path", "traced"),
    [
        pytest.param("/health", False, id="exact-prefix"),
        pytest.param("/health/live", False, id="below-prefix"),
        pytest.param("/static/app.js", False, id="second-prefix"),
        pytest.param("/users/123", True, id="not-excluded"),
    ],
)
def test_excluded_paths_pass_straight_through(cassettes: Path, path: str, traced: bool) -> None:
    seen: List[Optional[Session]] = []

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        seen.append(context.current())
        start_response("200 OK", [])
        return [b"ok"]

    config = make_config(cassettes, exclude_paths="/health,/static/")
    Client(TimeTracerMiddleware(app, config)).get(path, buffered=True)
    assert (seen[0] is not None) is traced
    assert bool(files_under(cassettes) if cassettes.exists() else []) is traced


@pytest.mark.parametrize(
    ("rate", "draw", "recorded"),
    [
        pytest.param(0.0, 0.0, False, id="rate-0-never"),
        pytest.param(1.0, 0.999999, True, id="rate-1-always"),
        pytest.param(0.5, 0.49, True, id="draw-below-rate"),
        pytest.param(0.5, 0.5, False, id="draw-at-rate"),
    ],
)
def test_sampling(
    cassettes: Path, monkeypatch: pytest.MonkeyPatch, rate: float, draw: float, recorded: bool
) -> None:
    monkeypatch.setattr("timetracer._lifecycle._sampler.random", lambda: draw)
    Client(TimeTracerMiddleware(json_app, make_config(cassettes, sample_rate=rate))).get(
        "/users/123", buffered=True
    )
    assert (cassettes / "GET__users_123.json").exists() is recorded


@pytest.mark.parametrize("rate", [1.0, 0.5, 0.0])
def test_recording_leaves_the_apps_seeded_random_sequence_alone(cassettes: Path, rate: float) -> None:
    # An app (or its tests) that seeds the random module sees the same numbers recorded as live.
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(random.random()).encode()]

    def draws(mode: str) -> List[bytes]:
        client = Client(TimeTracerMiddleware(app, make_config(cassettes, mode=mode, sample_rate=rate)))
        random.seed(12345)
        return [client.get(f"/n/{n}", buffered=True).get_data() for n in range(8)]

    assert draws("record") == draws("off")


def test_sample_rate_zero_writes_nothing(cassettes: Path) -> None:
    client = Client(TimeTracerMiddleware(json_app, make_config(cassettes, sample_rate=0.0)))
    for _ in range(20):
        assert client.get("/users/123", buffered=True).get_data() == JSON_BODY
    assert not cassettes.exists()


def test_unwritable_cassette_dir_leaves_the_response_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cassette folder should be")
    target_dir = blocker / "cassettes"
    caplog.set_level(logging.ERROR, logger="timetracer")
    response = Client(TimeTracerMiddleware(json_app, make_config(target_dir))).get(
        "/users/123", buffered=True
    )
    assert response.status_code == 200 and response.get_data() == JSON_BODY
    errors = [r for r in caplog.records if r.name == "timetracer" and r.levelno >= logging.ERROR]
    assert errors and str(target_dir / "GET__users_123.json") in errors[0].getMessage()


def test_unserialisable_event_is_logged_not_raised(cassettes: Path, caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        session = context.current()
        assert session is not None
        event = session.start_event({"lib": "test", "method": "FIND", "url": "db.c", "body_hash": "x"})
        session.end_event(event, {"status": 0, "body": {"captured": True, "data": object()}})
        start_response("200 OK", [])
        return [b"fine"]

    caplog.set_level(logging.ERROR, logger="timetracer")
    response = Client(TimeTracerMiddleware(app, make_config(cassettes))).get("/users/123", buffered=True)
    assert response.get_data() == b"fine"
    assert any("GET__users_123.json" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/../../escape", id="dot-dot"),
        pytest.param("/a/../../../../x", id="dot-dot-deep"),
        pytest.param("/a%2F..%2F..%2Fx", id="encoded-slash"),
        pytest.param("/..%2f..%2fx", id="encoded-slash-lower"),
        pytest.param("/a\x00b", id="nul"),
        pytest.param("/..", id="only-dots"),
        pytest.param("\\..\\..\\x", id="backslashes"),
        pytest.param("/" + "a/" * 300, id="very-long"),
    ],
)
def test_hostile_paths_never_write_outside_the_dir(tmp_path: Path, path: str) -> None:
    cassettes = tmp_path / "deep" / "cassettes"
    _, result = Server().call(TimeTracerMiddleware(json_app, make_config(cassettes)), path=path)
    list(result)
    result.close()
    written = files_under(tmp_path)
    assert len(written) == 1
    assert written[0].parent == cassettes
    assert json.loads(written[0].read_text())["request"]["path"] == path


def test_session_is_active_in_app_and_iterator_on_another_thread(cassettes: Path) -> None:
    in_app: List[Optional[Session]] = []
    body = Closable([b"a", b"b"])

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Closable:
        in_app.append(context.current())
        start_response("200 OK", [])
        return body

    environ, result = Server().call(TimeTracerMiddleware(app, make_config(cassettes)))
    session = environ[SESSION_KEY]
    assert isinstance(session, Session) and session.recording
    assert context.current() is None  # not leaked into the server's context

    chunks: List[bytes] = []

    def consume() -> None:
        chunks.extend(result)
        result.close()

    worker = threading.Thread(target=consume)
    worker.start()
    worker.join()
    assert chunks == [b"a", b"b"]
    assert in_app == [session]
    assert body.seen == [session, session, session]  # two chunks and close()
    assert cassette(cassettes)["response"]["body"]["data"] == "ab"


def test_concurrent_requests_keep_their_own_sessions(cassettes: Path) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [])
        for _ in range(3):
            time.sleep(0.001)
            yield str(context.current() is environ[SESSION_KEY]).encode()

    client = Client(TimeTracerMiddleware(app, make_config(cassettes)))
    results: List[bytes] = []

    def hit(n: int) -> None:
        results.append(client.get(f"/items/{n}", buffered=True).get_data())

    threads = [threading.Thread(target=hit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b"TrueTrueTrue"] * 8
    assert len(files_under(cassettes)) == 8


# -- replay ----------------------------------------------------------------------------------


def record_then(cassettes: Path, app: Callable[..., Any] = json_app, **overrides: Any) -> Path:
    config = make_config(cassettes, **overrides)
    Client(TimeTracerMiddleware(app, config)).get("/users/123", buffered=True)
    return cassettes / f"GET__users_123{config.compression.suffix}"


def test_replay_runs_the_app_with_a_replaying_session(
    cassettes: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = record_then(cassettes)
    seen: List[Optional[Session]] = []

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        seen.append(context.current())
        start_response("200 OK", [("Content-Type", "application/json")])
        seen.append(context.current())
        yield JSON_BODY

    caplog.set_level(logging.INFO, logger="timetracer")
    server = Server()
    environ, result = server.call(TimeTracerMiddleware(app, make_config(cassettes, mode="replay")))
    assert b"".join(result) == JSON_BODY
    session = environ[SESSION_KEY]
    assert session.replaying and session.cassette_path == path
    assert ("X-Timetracer-Replay", "identical") in server.headers
    assert seen == [session, session]
    assert session.response["status"] == 200
    assert session.response["body"]["data"] == JSON_BODY.decode()
    summary = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert summary == [
        f"timetracer replay {path}: 0 calls matched exactly, 0 by fallback, 0 unmatched, "
        "0 recorded calls unused, response identical"
    ]


@pytest.mark.parametrize("sent", [[b"first;"], []], ids=["midway", "before-any-body"])
def test_replay_sends_the_body_a_streamed_response_had_sent_when_it_raised(
    cassettes: Path, sent: List[bytes]
) -> None:
    error = ValueError("boom")

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield from sent
        raise error

    def serve(mode: str) -> Tuple[Server, List[bytes]]:
        server, received = Server(), []
        with pytest.raises(ValueError) as caught:
            _, result = server.call(TimeTracerMiddleware(app, make_config(cassettes, mode=mode)))
            for chunk in result:  # as a server does: each piece goes out as it comes
                received.append(chunk)
        assert caught.value is error
        return server, received

    recorded, recorded_body = serve("record")
    replayed, replayed_body = serve("replay")
    assert b"".join(replayed_body) == b"".join(recorded_body) == b"".join(sent)
    if sent:  # live, the headers went out with the first piece: replay sends them too
        assert replayed.status == recorded.status == "200 OK"
        assert replayed.headers == [*recorded.headers, ("X-Timetracer-Replay", "identical")]
    else:  # nothing had gone out: the server still answers with its own error page
        assert replayed.status is None


def test_replay_summary_notes_a_different_response(cassettes: Path, caplog: pytest.LogCaptureFixture) -> None:
    record_then(cassettes)
    caplog.set_level(logging.INFO, logger="timetracer")
    response = Client(
        TimeTracerMiddleware(status_app("404 Not Found"), make_config(cassettes, mode="replay"))
    ).get("/users/123", buffered=True)
    assert response.headers["X-Timetracer-Replay"] == "different"
    assert any("response different (status: 404 != 200" in r.getMessage() for r in caplog.records)


def test_replay_of_a_missing_cassette_is_a_500_naming_the_file(
    cassettes: Path, caplog: pytest.LogCaptureFixture
) -> None:
    called: List[bool] = []

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        called.append(True)
        return []

    caplog.set_level(logging.ERROR, logger="timetracer")
    response = Client(TimeTracerMiddleware(app, make_config(cassettes, mode="replay"))).get("/users/404")
    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/plain")
    assert str(cassettes / "GET__users_404.json") in text
    assert "TIMETRACER_CASSETTE" in text
    assert not called
    assert any("GET__users_404.json" in r.getMessage() for r in caplog.records if r.name == "timetracer")


def test_replay_of_a_missing_fixed_cassette_fails_when_the_middleware_is_created(tmp_path: Path) -> None:
    fixed = tmp_path / "nope.json"
    config = make_config(tmp_path, mode="replay", cassette=fixed)
    with pytest.raises(ConfigError, match="TIMETRACER_CASSETTE") as info:
        TimeTracerMiddleware(json_app, config)
    assert str(fixed) in str(info.value) and "does not exist" in str(info.value)


def test_replay_of_a_fixed_cassette_that_is_a_folder_fails_at_creation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        TimeTracerMiddleware(json_app, make_config(tmp_path, mode="replay", cassette=tmp_path))


def test_replay_of_a_fixed_cassette_removed_after_startup_is_a_500_naming_it(tmp_path: Path) -> None:
    fixed = tmp_path / "gone.json"
    Client(TimeTracerMiddleware(json_app, make_config(tmp_path, mode="record", cassette=fixed))).get("/users/123")
    middleware = TimeTracerMiddleware(json_app, make_config(tmp_path, mode="replay", cassette=fixed))
    fixed.unlink()
    response = Client(middleware).get("/users/123")
    assert response.status_code == 500
    assert str(fixed) in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"{not json", "not valid JSON", id="bad-json"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b'{"events": []}', "schema_version", id="no-version"),
        pytest.param(b"\x1f\x8b\x08garbage", "cannot decompress", id="bad-gzip"),
    ],
)
def test_replay_of_a_corrupt_cassette_is_a_500_naming_file_and_reason(
    cassettes: Path, content: bytes, reason: str
) -> None:
    cassettes.mkdir()
    (cassettes / "GET__users_123.json").write_bytes(content)
    response = Client(TimeTracerMiddleware(json_app, make_config(cassettes, mode="replay"))).get("/users/123")
    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "GET__users_123.json" in text and reason in text


def test_replay_with_a_fixed_cassette(tmp_path: Path) -> None:
    path = record_then(tmp_path / "recorded")
    seen: List[Any] = []

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        seen.append(environ[SESSION_KEY].cassette_path)
        start_response("200 OK", [])
        return [b""]

    config = make_config(tmp_path / "elsewhere", mode="replay", cassette=path)
    response = Client(TimeTracerMiddleware(app, config)).get("/some/other/path", buffered=True)
    assert response.status_code == 200
    assert seen == [path]


@pytest.mark.parametrize(
    ("recorded", "configured", "found"),
    [
        pytest.param(["none"], "none", ".json", id="plain"),
        pytest.param(["gzip"], "none", ".json.gz", id="gzip-found-when-plain-configured"),
        pytest.param(["none", "gzip"], "gzip", ".json.gz", id="configured-suffix-first"),
        pytest.param(["gzip", "none"], "none", ".json", id="plain-preferred-when-configured"),
    ],
)
def test_replay_finds_the_cassette_by_suffix(
    cassettes: Path, recorded: List[str], configured: str, found: str
) -> None:
    first = record_then(cassettes, compression=recorded[0])
    for compression in recorded[1:]:  # the same recording in another compression, same name
        config = make_config(cassettes, compression=compression)
        write_cassette(
            cassettes / f"GET__users_123{config.compression.suffix}", read_cassette(first), config.compression
        )
    environ, result = Server().call(
        TimeTracerMiddleware(json_app, make_config(cassettes, mode="replay", compression=configured))
    )
    assert b"".join(result) == JSON_BODY  # replay hands back the whole, buffered response
    assert environ[SESSION_KEY].cassette_path == cassettes / f"GET__users_123{found}"


def test_replayed_cassettes_are_parsed_once(cassettes: Path) -> None:
    path = record_then(cassettes)
    assert read_cassette(path) is read_cassette(path)
    sessions = []
    for _ in range(2):  # two middlewares (one recording answers one request of each)
        environ, result = Server().call(TimeTracerMiddleware(json_app, make_config(cassettes, mode="replay")))
        assert b"".join(result) == JSON_BODY
        sessions.append(environ[SESSION_KEY])
    assert sessions[0] is not sessions[1]
    assert sessions[0].cassette is sessions[1].cassette is read_cassette(path)


def test_replay_mode_does_not_write(cassettes: Path) -> None:
    path = record_then(cassettes)
    before = path.stat().st_mtime_ns
    Client(TimeTracerMiddleware(json_app, make_config(cassettes, mode="replay"))).get(
        "/users/123", buffered=True
    )
    assert path.stat().st_mtime_ns == before
    assert files_under(cassettes) == [path]


# -- through a real HTTP server --------------------------------------------------------------


def test_end_to_end_through_a_real_server(cassettes: Path) -> None:
    server = make_server(
        "127.0.0.1", 0, TimeTracerMiddleware(json_app, make_config(cassettes)), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/users/123?x=1"
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200
            assert reply.read() == JSON_BODY
        deadline = time.monotonic() + 5
        while not list(cassettes.glob("GET__users_123~q*.json")) and time.monotonic() < deadline:
            time.sleep(0.01)
        (target,) = cassettes.glob("GET__users_123~q*.json")
        document = cassette(cassettes, target.name)
        assert document["request"]["query"] == "x=1"
        assert document["response"]["body"]["data"] == JSON_BODY.decode()
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def test_mode_object_values_are_accepted(cassettes: Path) -> None:
    config = make_config(cassettes, mode=Mode.RECORD)
    Client(TimeTracerMiddleware(json_app, config)).get("/users/123", buffered=True)
    assert (cassettes / "GET__users_123.json").exists()
