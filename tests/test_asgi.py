"""Tests of the ASGI middleware: called as an ASGI server calls it, and through Starlette's TestClient.

The DB side (Motor, AsyncMongoClient) under a real uvicorn process is in
``tests/examples/test_asgi_app.py``; here the apps are plain ASGI callables that note what they see.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from timetracer import context
from timetracer.asgi import SESSION_KEY, TimeTracerMiddleware, scope_meta
from timetracer.cassette import read_cassette
from timetracer.config import TraceConfig
from timetracer.session import Session

pytestmark = pytest.mark.usefixtures("isolated_pymongo_plugin")

JSON_BODY = b'{"id": "123", "name": "Alice"}'
Message = Dict[str, Any]


def make_config(cassette_dir: Path, **overrides: Any) -> TraceConfig:
    overrides.setdefault("mode", "record")
    return TraceConfig.from_env({}, cassette_dir=cassette_dir, **overrides)


@pytest.fixture
def cassettes(tmp_path: Path) -> Path:
    return tmp_path / "cassettes"


def http_scope(path: str = "/users/123", method: str = "GET", **extra: Any) -> Dict[str, Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", b"Bearer secret"), (b"accept", b"*/*")],
    }
    scope.update(extra)
    return scope


class Server:
    """Calls an ASGI app as a server does, keeping every message it sends."""

    def __init__(self, body: bytes = b"") -> None:
        self.sent: List[Message] = []
        self._body = body
        self.on_send = None

    async def receive(self) -> Message:
        return {"type": "http.request", "body": self._body, "more_body": False}

    async def send(self, message: Message) -> None:
        if self.on_send is not None:
            self.on_send(message)
        self.sent.append(message)

    def call(self, app: Any, scope: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        scope = scope if scope is not None else http_scope()
        asyncio.run(app(scope, self.receive, self.send))
        return scope

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> Dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.sent[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def json_app(*chunks: bytes, status: int = 200, seen: Optional[List[Any]] = None) -> Any:
    chunks = chunks or (JSON_BODY,)

    async def app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if seen is not None:
            seen.append(context.current())
        headers = [
            (b"content-type", b"application/json"),
            (b"set-cookie", b"sid=secret"),
            (b"x-plain", b"kept"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for n, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": n < len(chunks) - 1})
        if seen is not None:
            seen.append(context.current())

    return app


# -- record ---------------------------------------------------------------------------------


def test_off_mode_passes_the_call_through_untouched(cassettes: Path) -> None:
    calls: List[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append((scope, receive, send, context.current()))

    server = Server()
    scope = server.call(TimeTracerMiddleware(app, make_config(cassettes, mode="off")))
    assert calls == [(scope, server.receive, server.send, None)]
    assert not cassettes.exists()


def test_record_writes_the_cassette_named_after_the_request(cassettes: Path) -> None:
    seen: List[Any] = []
    server = Server()
    scope = server.call(
        TimeTracerMiddleware(
            json_app(b'{"id": "123", ', b'"name": "Alice"}', seen=seen), make_config(cassettes)
        )
    )
    assert server.status == 200 and server.body == JSON_BODY
    session = scope[SESSION_KEY]
    assert isinstance(session, Session) and seen == [session, session]
    cassette = read_cassette(cassettes / "GET__users_123.json")
    assert cassette["request"]["method"] == "GET" and cassette["request"]["path"] == "/users/123"
    assert cassette["request"]["headers"]["authorization"] == "[REDACTED]"
    assert cassette["request"]["headers"]["accept"] == "*/*"
    response = cassette["response"]
    assert response["status"] == 200 and response["reason"] == "OK"
    assert ["set-cookie", "[REDACTED]"] in response["headers"] and ["x-plain", "kept"] in response["headers"]
    assert response["body"] == {
        "encoding": "utf-8",
        "data": JSON_BODY.decode(),
        "size": len(JSON_BODY),
        "truncated": False,
    }


def test_the_cassette_is_on_disk_before_the_last_body_message_is_sent(cassettes: Path) -> None:
    on_disk: List[bool] = []
    server = Server()
    server.on_send = lambda message: on_disk.append((cassettes / "GET__users_123.json").exists())
    server.call(TimeTracerMiddleware(json_app(b"a", b"b", b"c"), make_config(cassettes)))
    assert on_disk == [False, False, False, True]


def test_body_over_the_cap_is_truncated_with_its_full_size(cassettes: Path) -> None:
    Server().call(
        TimeTracerMiddleware(json_app(b"x" * 10, b"y" * 10), make_config(cassettes, max_body_bytes=12))
    )
    body = read_cassette(cassettes / "GET__users_123.json")["response"]["body"]
    assert body == {"encoding": "utf-8", "data": "x" * 10 + "yy", "size": 20, "truncated": True}


@pytest.mark.parametrize("before_start", [True, False], ids=["before-start", "mid-stream"])
def test_an_exception_is_recorded_and_reraised_unchanged(cassettes: Path, before_start: bool) -> None:
    error = RuntimeError("boom")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if not before_start:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise error

    with pytest.raises(RuntimeError) as raised:
        Server().call(TimeTracerMiddleware(app, make_config(cassettes)))
    assert raised.value is error
    cassette = read_cassette(cassettes / "GET__users_123.json")
    assert cassette["error"] == {"type": "builtins.RuntimeError", "message": "boom"}
    assert ("response" in cassette) is not before_start


@pytest.mark.parametrize("status, written", [(200, False), (404, False), (500, True), (503, True)])
def test_errors_only_records_server_errors(cassettes: Path, status: int, written: bool) -> None:
    Server().call(TimeTracerMiddleware(json_app(status=status), make_config(cassettes, errors_only=True)))
    assert (cassettes / "GET__users_123.json").exists() is written


@pytest.mark.parametrize("path, traced", [("/health", False), ("/health/deep", False), ("/users/1", True)])
def test_excluded_paths_pass_straight_through(cassettes: Path, path: str, traced: bool) -> None:
    seen: List[Any] = []
    server = Server()
    server.call(
        TimeTracerMiddleware(json_app(seen=seen), make_config(cassettes, exclude_paths="/health")),
        http_scope(path),
    )
    assert (seen[0] is not None) is traced
    assert cassettes.exists() is traced


def test_sample_rate_zero_records_nothing(cassettes: Path) -> None:
    seen: List[Any] = []
    Server().call(TimeTracerMiddleware(json_app(seen=seen), make_config(cassettes, sample_rate=0.0)))
    assert seen == [None, None] and not cassettes.exists()


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
def test_lifespan_and_websocket_scopes_pass_through_untouched(cassettes: Path, kind: str) -> None:
    calls: List[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append((scope, receive, send, context.current()))

    server = Server()
    scope = {"type": kind, "path": "/ws", "headers": []}
    server.call(TimeTracerMiddleware(app, make_config(cassettes)), scope)
    assert calls == [(scope, server.receive, server.send, None)]
    assert SESSION_KEY not in scope and not cassettes.exists()


def test_tasks_started_by_the_app_see_the_request_session(cassettes: Path) -> None:
    seen: List[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def worker() -> None:
            await asyncio.sleep(0)
            seen.append(context.current())

        await asyncio.gather(asyncio.create_task(worker()), worker())
        await json_app()(scope, receive, send)

    scope = Server().call(TimeTracerMiddleware(app, make_config(cassettes)))
    assert seen == [scope[SESSION_KEY]] * 2


def test_concurrent_requests_keep_their_own_sessions(cassettes: Path) -> None:
    seen: Dict[str, List[Any]] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        mine = seen.setdefault(scope["path"], [])
        for _ in range(3):
            mine.append(context.current())
            await asyncio.sleep(0.001)
        await json_app()(scope, receive, send)

    middleware = TimeTracerMiddleware(app, make_config(cassettes))
    scopes = [http_scope(f"/users/{n}") for n in range(5)]

    async def main() -> None:
        await asyncio.gather(*(middleware(s, Server().receive, Server().send) for s in scopes))

    asyncio.run(main())
    for scope in scopes:
        assert seen[scope["path"]] == [scope[SESSION_KEY]] * 3
    assert len({id(s[SESSION_KEY]) for s in scopes}) == 5
    assert sorted(p.name for p in cassettes.iterdir()) == [f"GET__users_{n}.json" for n in range(5)]


def test_scope_headers_become_the_lifecycles_environ_keys() -> None:
    scope = http_scope(
        headers=[
            (b"Content-Type", b"text/plain"),
            (b"x-multi", b"a"),
            (b"x-multi", b"b"),
            (b"content-length", b"4"),
        ],
        query_string=b"q=1&r=%C3%A9",
    )
    assert scope_meta(scope) == {
        "CONTENT_TYPE": "text/plain",
        "HTTP_X_MULTI": "a, b",
        "CONTENT_LENGTH": "4",
        "QUERY_STRING": "q=1&r=%C3%A9",
    }


# -- replay ---------------------------------------------------------------------------------


def record_then(cassettes: Path, *chunks: bytes) -> Path:
    Server().call(TimeTracerMiddleware(json_app(*chunks), make_config(cassettes)))
    return cassettes / "GET__users_123.json"


def test_replay_buffers_the_response_and_adds_the_verdict_header(cassettes: Path) -> None:
    path = record_then(cassettes, b'{"id": "123", ', b'"name": "Alice"}')
    seen: List[Any] = []
    server = Server()
    scope = server.call(
        TimeTracerMiddleware(
            json_app(b'{"id": "123", ', b'"name": "Alice"}', seen=seen), make_config(cassettes, mode="replay")
        )
    )
    session = scope[SESSION_KEY]
    assert session.replaying and session.cassette_path == path and seen == [session, session]
    assert server.headers["x-timetracer-replay"] == "identical"
    assert server.headers["content-type"] == "application/json"
    assert [m["type"] for m in server.sent] == ["http.response.start", "http.response.body"]
    assert server.body == JSON_BODY and server.sent[-1]["more_body"] is False


def test_replay_says_when_the_response_differs(cassettes: Path, caplog: pytest.LogCaptureFixture) -> None:
    record_then(cassettes)
    caplog.set_level(logging.INFO, logger="timetracer")
    server = Server()
    server.call(TimeTracerMiddleware(json_app(status=404), make_config(cassettes, mode="replay")))
    assert server.status == 404 and server.headers["x-timetracer-replay"] == "different"
    assert any("response different (status: 404 != 200" in r.getMessage() for r in caplog.records)


def test_replay_of_a_missing_cassette_is_a_500_naming_the_file(cassettes: Path) -> None:
    calls: List[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope)

    server = Server()
    server.call(TimeTracerMiddleware(app, make_config(cassettes, mode="replay")))
    assert server.status == 500 and not calls
    text = server.body.decode()
    assert str(cassettes / "GET__users_123.json") in text and "TIMETRACER_MODE=record" in text


def test_replay_reraises_the_apps_exception(cassettes: Path) -> None:
    record_then(cassettes)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise KeyError("gone")

    server = Server()
    with pytest.raises(KeyError):
        server.call(TimeTracerMiddleware(app, make_config(cassettes, mode="replay")))
    assert server.sent == []


@pytest.mark.parametrize("complete", [True, False], ids=["after-its-response", "mid-body"])
def test_replay_sends_what_the_app_sent_before_it_raised(cassettes: Path, complete: bool) -> None:
    # Starlette's error middleware sends its 500 page, then re-raises: live, the client has the page.
    error = RuntimeError("boom")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"Internal Server Error", "more_body": not complete})
        raise error

    recorded, replayed = Server(), Server()
    with pytest.raises(RuntimeError):
        recorded.call(TimeTracerMiddleware(app, make_config(cassettes)))
    with pytest.raises(RuntimeError) as raised:
        replayed.call(TimeTracerMiddleware(app, make_config(cassettes, mode="replay")))
    assert raised.value is error
    assert replayed.status == recorded.status == 500
    assert replayed.body == recorded.body == b"Internal Server Error"
    assert replayed.sent[-1]["more_body"] is recorded.sent[-1]["more_body"] is (not complete)
    headers = replayed.headers
    assert headers.pop("x-timetracer-replay") == "identical" and headers == recorded.headers


# -- Starlette ------------------------------------------------------------------------------


def test_starlette_add_middleware_records_and_replays(
    cassettes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starlette = pytest.importorskip("starlette.applications")
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    seen: List[Any] = []

    async def user(request: Any) -> Any:
        seen.append(request.scope[SESSION_KEY])
        assert context.current() is request.scope[SESSION_KEY]
        return JSONResponse({"id": request.path_params["user_id"], "query": request.url.query})

    async def stream(request: Any) -> Any:
        async def parts() -> Any:
            for n in range(3):
                yield f"part{n};".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    def make_app() -> Any:
        app = starlette.Starlette(routes=[Route("/users/{user_id}", user), Route("/stream", stream)])
        app.add_middleware(TimeTracerMiddleware)
        return app

    monkeypatch.setenv("TIMETRACER_CASSETTE_DIR", str(cassettes))
    monkeypatch.setenv("TIMETRACER_MODE", "record")
    with TestClient(make_app()) as client:  # runs the lifespan too
        recorded = [client.get("/users/7?x=1"), client.get("/stream")]
    names = sorted(p.name for p in cassettes.iterdir())
    # A query string makes its own recording (issue #11): GET__users_7~q<digest>.json
    assert len(names) == 2 and names[0] == "GET__stream.json" and names[1].startswith("GET__users_7~q")
    assert read_cassette(cassettes / "GET__stream.json")["response"]["body"]["data"] == "part0;part1;part2;"
    assert read_cassette(cassettes / names[1])["request"]["query"] == "x=1"

    monkeypatch.setenv("TIMETRACER_MODE", "replay")
    with TestClient(make_app()) as client:
        replayed = [client.get("/users/7?x=1"), client.get("/stream")]
    for before, after in zip(recorded, replayed):
        assert after.status_code == before.status_code == 200
        assert after.content == before.content
        assert after.headers["x-timetracer-replay"] == "identical"
    assert [s.recording for s in seen] == [True, False]


def test_starlette_error_page_is_replayed_and_the_exception_still_reaches_the_server(
    cassettes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starlette = pytest.importorskip("starlette.applications")
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def broken(request: Any) -> Any:
        raise LookupError("no such user")

    def make_app() -> Any:  # wrapped whole: Starlette's error middleware (its 500 page) is inside
        return TimeTracerMiddleware(starlette.Starlette(routes=[Route("/users/{user_id}", broken)]))

    monkeypatch.setenv("TIMETRACER_CASSETTE_DIR", str(cassettes))
    monkeypatch.setenv("TIMETRACER_MODE", "record")
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        recorded = client.get("/users/7")
    monkeypatch.setenv("TIMETRACER_MODE", "replay")
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        replayed = client.get("/users/7")
    with TestClient(make_app()) as client, pytest.raises(LookupError):
        client.get("/users/7")  # replayed too: the exception still reaches the server
    assert replayed.status_code == recorded.status_code == 500
    assert replayed.content == recorded.content == b"Internal Server Error"
    assert replayed.headers["x-timetracer-replay"] == "identical"
    assert replayed.headers["content-type"] == recorded.headers["content-type"]


# -- a real server --------------------------------------------------------------------------

PLAIN_APP = """
from timetracer.asgi import TimeTracerMiddleware


async def chunked(scope, receive, send):
    if scope["type"] != "http":  # uvicorn's lifespan: answered by the app itself, untouched
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for part in (b"one;", b"two;", b"three;"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


app = TimeTracerMiddleware(chunked)
"""


def test_a_plain_asgi_callable_under_uvicorn(tmp_path: Path) -> None:
    """Record and replay a chunked response through a real uvicorn process; the cassette is on
    disk as soon as the client has the response."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    pytest.importorskip("uvicorn")
    (tmp_path / "plain_app.py").write_text(PLAIN_APP)
    repo = Path(__file__).resolve().parent.parent

    def serve(mode: str) -> Any:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETRACER_")}
        env.update(PYTHONPATH=str(repo), TIMETRACER_MODE=mode, TIMETRACER_CASSETTE_DIR=str(tmp_path / "c"))
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "plain_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        log = tmp_path / f"{mode}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        return process, f"http://127.0.0.1:{port}/items/1"

    process, url = serve("record")
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            recorded = reply.read()
        assert (tmp_path / "c" / "GET__items_1.json").exists()  # no waiting: written before the last chunk
    finally:
        process.terminate()
        process.wait(10)
    assert recorded == b"one;two;three;"
    assert read_cassette(tmp_path / "c" / "GET__items_1.json")["response"]["body"]["data"] == "one;two;three;"

    process, url = serve("replay")
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.read() == recorded
            assert reply.headers["x-timetracer-replay"] == "identical"
    finally:
        process.terminate()
        process.wait(10)


def test_applied_twice_the_outer_middleware_owns_the_request(cassettes: Path) -> None:
    seen: List[Any] = []
    inner = TimeTracerMiddleware(json_app(seen=seen), make_config(cassettes / "inner"))
    scope = Server().call(TimeTracerMiddleware(inner, make_config(cassettes)))
    assert seen == [scope[SESSION_KEY]] * 2
    assert sorted(p.name for p in cassettes.iterdir()) == ["GET__users_123.json"]
