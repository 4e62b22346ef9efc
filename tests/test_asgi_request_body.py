"""Request bodies through the ASGI middleware: part of each request's identity, stored (cut at
``TIMETRACER_MAX_BODY_BYTES``, secrets redacted) and read by the app exactly as sent.

A Starlette + PyMongo app runs against the real test server: POSTs and PUTs to one path with
different JSON bodies each keep their own recording and replay byte for byte with
``X-Timetracer-Replay: identical`` with the database gone; the app receives the same messages
(``request.stream()`` chunk by chunk, then ``http.disconnect``) with timetracer off, recording
and replaying.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pymongo
import pytest
from pymongo.database import Database

from timetracer.asgi import REPLAY_HEADER, TimeTracerMiddleware
from timetracer.cassette import read_cassette
from timetracer.config import TraceConfig

pytest.importorskip("starlette")
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

pytestmark = pytest.mark.usefixtures("isolated_pymongo_plugin")

Step = Tuple[str, str, Optional[Dict[str, Any]]]
Message = Dict[str, Any]

# (method, url, JSON body): requests that differ only in their bodies, and repeats.
SCRIPT: List[Step] = [
    ("POST", "/items", {"name": "d", "price": 4}),
    ("POST", "/items", {"name": "e", "price": 5}),
    ("PUT", "/items/a", {"price": 10}),
    ("PUT", "/items/a", {"price": 20}),
    ("PUT", "/items/a", {"price": 10}),  # the first PUT's body again: its repeat
    ("POST", "/login", {"user": "ann", "password": "hunter2"}),
    ("GET", "/items", None),
]


class Apps:
    """Starlette apps over one database, wrapped in the ASGI middleware."""

    def __init__(self, db_name: str, cassette_dir: Path) -> None:
        self.db_name = db_name
        self.cassette_dir = cassette_dir
        self.clients: List[pymongo.MongoClient[Any]] = []
        self.chunks: List[List[bytes]] = []  # what /upload read, request by request

    def __call__(self, mongo_uri: str, mode: str, **settings: Any) -> Any:
        mongo: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=300)
        self.clients.append(mongo)
        db = mongo[self.db_name]

        async def list_items(request: Request) -> Any:
            return JSONResponse({"items": list(db.items.find({}, {"_id": 0}).sort("name", 1))})

        async def create_item(request: Request) -> Any:
            data = await request.json()
            inserted = db.items.insert_one({"name": data["name"], "price": data["price"]})
            return JSONResponse({"id": str(inserted.inserted_id), "count": db.items.count_documents({})}, 201)

        async def update_item(request: Request) -> Any:
            data = await request.json()
            name = request.path_params["name"]
            result = db.items.update_one({"name": name}, {"$set": {"price": data["price"]}})
            item = db.items.find_one({"name": name}, {"_id": 0})
            return JSONResponse(
                {"matched": result.matched_count, "modified": result.modified_count, "item": item}
            )

        async def login(request: Request) -> Any:
            data = await request.json()
            user = db.users.find_one({"name": data["user"]}, {"_id": 0})
            given = hashlib.sha256(data["password"].encode()).hexdigest()
            ok = user is not None and user.pop("password_sha256") == given
            return JSONResponse({"user": user if ok else None})

        async def upload(request: Request) -> Any:
            chunks = [bytes(chunk) async for chunk in request.stream()]
            self.chunks.append(chunks)
            digest = hashlib.sha256(b"".join(chunks)).hexdigest()
            db.uploads.insert_one({"sha": digest})
            return JSONResponse({"sha": digest, "uploads": db.uploads.count_documents({})})

        app = Starlette(
            routes=[
                Route("/items", list_items, methods=["GET"]),
                Route("/items", create_item, methods=["POST"]),
                Route("/items/{name}", update_item, methods=["PUT"]),
                Route("/login", login, methods=["POST"]),
                Route("/upload", upload, methods=["POST"]),
            ]
        )
        config = TraceConfig.from_env({}, mode=mode, cassette_dir=self.cassette_dir, **settings)
        return TimeTracerMiddleware(app, config)

    def close(self) -> None:
        for mongo in self.clients:
            mongo.close()


@pytest.fixture
def apps(fresh_db: Database[Any], tmp_path: Path) -> Iterator[Apps]:
    fresh_db.items.insert_many([{"name": n, "price": p} for n, p in (("a", 1), ("b", 2), ("c", 3))])
    fresh_db.users.insert_one(
        {"name": "ann", "password_sha256": hashlib.sha256(b"hunter2").hexdigest(), "role": "admin"}
    )
    factory = Apps(fresh_db.name, tmp_path / "cassettes")
    yield factory
    factory.close()


def run(client: TestClient, step: Step) -> Any:
    method, url, body = step
    return client.request(method, url, json=body) if body is not None else client.request(method, url)


def names(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir())


def test_requests_differing_only_in_body_keep_their_own_recordings_and_replay_byte_for_byte(
    apps: Apps, mongo_uri: str, dead_mongo_uri: str
) -> None:
    recorder = TestClient(apps(mongo_uri, "record"))
    recorded = [run(recorder, step) for step in SCRIPT]
    assert [r.status_code for r in recorded] == [201, 201, 200, 200, 200, 200, 200]
    assert recorded[2].content != recorded[3].content  # different bodies, different answers
    assert recorded[0].content != recorded[1].content

    found = names(apps.cassette_dir)
    assert len(found) == len(SCRIPT)
    posts = [n for n in found if n.startswith("POST__items")]
    assert len(posts) == 2 and all(n.startswith("POST__items~q") for n in posts)  # body digests
    puts = [n for n in found if n.startswith("PUT__items_a")]
    assert len(puts) == 3 and sum(n.endswith("~2.json") for n in puts) == 1  # the repeat
    stored = {}
    for name in found:
        request = read_cassette(apps.cassette_dir / name)["request"]
        stored[name] = request
        assert name.startswith(f"{request['method']}__")
    sent_bodies = sorted(json.dumps(body, sort_keys=True) for _, _, body in SCRIPT if body is not None)
    kept = sorted(
        json.dumps(json.loads(r["body"]), sort_keys=True)
        for r in stored.values()
        if r.get("body") is not None
    )
    assert kept == sorted(b.replace('"hunter2"', '"[REDACTED]"') for b in sent_bodies)
    for name in found:  # the login's password never reaches the cassette
        assert "hunter2" not in (apps.cassette_dir / name).read_text(encoding="utf-8")

    replayer = TestClient(apps(dead_mongo_uri, "replay"))
    for step, live in zip(SCRIPT, recorded):
        replayed = run(replayer, step)
        assert (step, replayed.status_code) == (step, live.status_code)
        assert replayed.content == live.content, step
        assert replayed.headers[REPLAY_HEADER] == "identical", step


def test_a_body_never_recorded_gets_a_500_and_no_other_requests_data(
    apps: Apps, mongo_uri: str, dead_mongo_uri: str
) -> None:
    recorder = TestClient(apps(mongo_uri, "record"))
    recorded = run(recorder, ("PUT", "/items/a", {"price": 10}))
    assert recorded.status_code == 200
    replayer = TestClient(apps(dead_mongo_uri, "replay"))
    other = run(replayer, ("PUT", "/items/a", {"price": 30}))
    assert other.status_code == 500
    assert "PUT /items/a" in other.text
    assert b'"item"' not in other.content and recorded.content not in other.content


def _call(
    app: Any, messages: List[Message], scope_path: str = "/upload"
) -> Tuple[List[Message], List[Message]]:
    """Call ``app`` as a server would with the request body in ``messages`` (then
    ``http.disconnect``); return what the app sent and the messages the server handed out."""
    queue = [*messages, {"type": "http.disconnect"}]
    handed: List[Message] = []
    sent: List[Message] = []
    length = sum(len(m.get("body", b"")) for m in messages)

    async def receive() -> Message:
        message = queue.pop(0) if queue else {"type": "http.disconnect"}
        handed.append(message)
        return message

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": scope_path,
        "raw_path": scope_path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(length).encode()),
        ],
    }
    asyncio.run(app(scope, receive, send))
    return sent, handed


def _chunked(data: bytes, size: int) -> List[Message]:
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    return [
        {"type": "http.request", "body": part, "more_body": n < len(parts) - 1}
        for n, part in enumerate(parts)
    ]


def _response(sent: List[Message]) -> Tuple[int, bytes]:
    return int(sent[0]["status"]), b"".join(
        m.get("body", b"") for m in sent if m["type"] == "http.response.body"
    )


@pytest.mark.parametrize("cap", [1024 * 1024, 10], ids=["fits", "over-the-cap"])
def test_the_app_reads_the_same_chunks_off_recording_and_replaying(
    apps: Apps, mongo_uri: str, dead_mongo_uri: str, cap: int
) -> None:
    data = b"".join(f"line {n:03d};".encode() for n in range(12))  # 108 bytes
    messages = _chunked(data, 25)
    off_sent, _ = _call(apps(mongo_uri, "off"), messages)
    rec_sent, _ = _call(apps(mongo_uri, "record", max_body_bytes=cap), messages)
    rep_sent, _ = _call(apps(dead_mongo_uri, "replay", max_body_bytes=cap), messages)
    off, recording, replaying = apps.chunks
    assert recording == replaying == off  # same chunks, same order, every mode
    assert [c for c in off if c] == [data[i : i + 25] for i in range(0, len(data), 25)]
    assert _response(off_sent)[0] == _response(rec_sent)[0] == 200
    assert _response(rep_sent) == _response(rec_sent)
    assert dict(rep_sent[0]["headers"])[REPLAY_HEADER.lower().encode()] == b"identical"

    (name,) = names(apps.cassette_dir)
    request = read_cassette(apps.cassette_dir / name)["request"]
    if cap >= len(data):
        assert request["body"] == data.decode() and not request.get("body_truncated", False)
    else:  # cut in the cassette only: the app read all 108 bytes above
        assert request["body"] == data[:cap].decode() and request["body_truncated"] is True


def test_after_the_body_the_app_gets_the_servers_own_messages(tmp_path: Path) -> None:
    """A plain ASGI app reading every message until ``http.disconnect`` sees the same list with
    timetracer recording as without it."""
    seen: List[List[Message]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        got: List[Message] = []
        while True:
            message = await receive()
            got.append(message)
            if message["type"] == "http.disconnect":
                break
        seen.append(got)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    messages = _chunked(b"x" * 40, 7)
    config = TraceConfig.from_env({}, mode="record", max_body_bytes=16, cassette_dir=tmp_path)
    _, handed_plain = _call(app, messages)
    _, handed_traced = _call(TimeTracerMiddleware(app, config), messages)
    assert seen[0] == seen[1] == [*messages, {"type": "http.disconnect"}]
    assert handed_plain == handed_traced


def test_an_error_while_reading_ahead_reaches_the_app_when_it_asks_for_that_message(tmp_path: Path) -> None:
    seen: List[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        try:
            await receive()
        except ConnectionResetError as exc:
            seen.append(exc)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    calls = 0
    first = {"type": "http.request", "body": b"abc", "more_body": True}

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if calls == 1:
            return first
        raise ConnectionResetError("client went away")

    async def send(message: Message) -> None:
        pass

    config = TraceConfig.from_env({}, mode="record", cassette_dir=tmp_path)
    scope = {"type": "http", "method": "POST", "path": "/x", "query_string": b"", "headers": []}
    asyncio.run(TimeTracerMiddleware(app, config)(scope, receive, send))
    assert seen[0] is first
    assert isinstance(seen[1], ConnectionResetError) and str(seen[1]) == "client went away"
    assert calls == 2  # the failed read is not retried


# -- a real uvicorn process -------------------------------------------------------------------

UVICORN_APP = """
import hashlib, os
import pymongo
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from timetracer.asgi import TimeTracerMiddleware
from timetracer.plugins import enable_pymongo

enable_pymongo()
db = pymongo.MongoClient(os.environ["APP_MONGO_URI"], serverSelectionTimeoutMS=300)[os.environ["APP_DB"]]


async def update_item(request):
    data = await request.json()
    result = db.items.update_one({"name": request.path_params["name"]}, {"$set": {"price": data["price"]}})
    item = db.items.find_one({"name": request.path_params["name"]}, {"_id": 0})
    return JSONResponse({"modified": result.modified_count, "item": item})


async def upload(request):
    # How the server splits a chunked upload depends on TCP timing, so the
    # database call carries only what every run agrees on: the total.
    size = sum([len(chunk) async for chunk in request.stream()])
    db.uploads.insert_one({"size": size})
    return JSONResponse({"size": size, "uploads": db.uploads.count_documents({})})


app = TimeTracerMiddleware(
    Starlette(routes=[Route("/items/{name}", update_item, methods=["PUT"]), Route("/upload", upload, methods=["POST"])])
)
"""


def _serve(tmp_path: Path, mode: str, mongo_uri: str, db_name: str, **settings: str) -> Any:
    import os
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETRACER_")}
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
        TIMETRACER_MODE=mode,
        TIMETRACER_CASSETTE_DIR=str(tmp_path / "c"),
        APP_MONGO_URI=mongo_uri,
        APP_DB=db_name,
        **settings,
    )
    command = [sys.executable, "-m", "uvicorn", "body_app:app", "--port", str(port), "--log-level", "warning"]
    log = tmp_path / f"{mode}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)


def _send(port: int, method: str, path: str, body: Any) -> Tuple[int, bytes, Dict[str, str]]:
    """One request over a real socket; ``body``: JSON, or a list of byte chunks sent chunked."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if isinstance(body, list):
            connection.request(
                method,
                path,
                body=iter(body),
                encode_chunked=True,
                headers={"Content-Type": "application/octet-stream"},
            )
        else:
            connection.request(
                method, path, body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
        reply = connection.getresponse()
        return reply.status, reply.read(), {k.lower(): v for k, v in reply.getheaders()}
    finally:
        connection.close()


def test_under_uvicorn_bodies_are_identity_and_chunked_uploads_replay(
    apps: Apps, tmp_path: Path, mongo_uri: str, dead_mongo_uri: str
) -> None:
    pytest.importorskip("uvicorn")
    (tmp_path / "body_app.py").write_text(UVICORN_APP, encoding="utf-8")
    chunks = [b"a" * 5000, b"b" * 3000, b"c" * 7000]
    script: List[Tuple[str, str, Any]] = [
        ("PUT", "/items/a", {"price": 10}),
        ("PUT", "/items/a", {"price": 20}),
        ("POST", "/upload", chunks),
    ]
    process, port = _serve(tmp_path, "record", mongo_uri, apps.db_name, TIMETRACER_MAX_BODY_BYTES="4096")
    try:
        recorded = [_send(port, *step) for step in script]
    finally:
        process.terminate()
        process.wait(10)
    assert [r[0] for r in recorded] == [200, 200, 200]
    assert recorded[0][1] != recorded[1][1]
    assert json.loads(recorded[2][1])["size"] == 15000  # the app read the whole upload
    found = names(tmp_path / "c")
    assert len(found) == 3, found
    (upload,) = [n for n in found if n.startswith("POST__upload")]
    stored = read_cassette(tmp_path / "c" / upload)["request"]
    assert stored["body"] == "a" * 4096 and stored["body_truncated"] is True  # cut in the cassette only

    process, port = _serve(tmp_path, "replay", dead_mongo_uri, apps.db_name, TIMETRACER_MAX_BODY_BYTES="4096")
    try:
        for step, (status, body, _) in zip(script, recorded):
            replayed = _send(port, *step)
            assert replayed[:2] == (status, body), step
            assert replayed[2]["x-timetracer-replay"] == "identical", step
    finally:
        process.terminate()
        process.wait(10)
