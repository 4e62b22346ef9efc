"""A response its server never closes still gets its cassette, also at interpreter shutdown.

Each case runs a fresh interpreter that starts a recorded request and keeps the unfinished
response in a module global when it exits. ``atexit`` finishes it; with that hook removed, the
wrapper's finaliser runs during module teardown, when ``sys.meta_path`` is already None and
nothing can be imported: the write must not need an import then.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from timetracer.cassette import read_cassette

SCRIPT = """
import atexit, io, sys
import timetracer._lifecycle
from timetracer.config import TraceConfig
from timetracer.wsgi import TimeTracerMiddleware

folder, compression, hook = sys.argv[1], sys.argv[2], sys.argv[3]
if hook == "no-atexit":
    atexit.unregister(timetracer._lifecycle.finish_pending)

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"first,", b"second"]

middleware = TimeTracerMiddleware(app, TraceConfig(mode="record", cassette_dir=folder, compression=compression))
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/users/1", "QUERY_STRING": "", "wsgi.input": io.BytesIO()}
response = middleware(environ, lambda status, headers, exc_info=None: None)
first = next(response)  # one chunk handed on, the response neither finished nor closed
print("started", first)
"""


@pytest.mark.parametrize("hook", ["atexit", "no-atexit"], ids=["finished-by-atexit", "finished-at-teardown"])
@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_unclosed_response_is_written_at_exit(tmp_path: Path, compression: str, hook: str) -> None:
    if compression == "zstd":
        pytest.importorskip("zstandard")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), compression, hook],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "started b'first,'"
    assert done.stderr == ""  # no "sys.meta_path is None", no ignored exception in __del__
    suffix = {"none": ".json", "gzip": ".json.gz", "zstd": ".json.zst"}[compression]
    document = read_cassette(tmp_path / f"GET__users_1{suffix}")
    assert document["response"]["status"] == 200
    assert document["response"]["body"]["data"] == "first,"
    assert json.dumps(document)  # a complete, valid document


PYMONGO_SCRIPT = """
import atexit, io, sys
import pymongo
import timetracer._lifecycle
import timetracer.plugins
from timetracer.config import TraceConfig
from timetracer.wsgi import TimeTracerMiddleware

folder, compression, uri, db_name = sys.argv[1:5]
atexit.unregister(timetracer._lifecycle.finish_pending)  # finished by the finaliser at teardown
timetracer.plugins.enable_pymongo()
client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)
items = client[db_name]["items"]

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    first = items.find_one({"n": 1}, {"_id": 0})
    cursor = items.find({}, {"_id": 0}).sort("n", 1)
    return [repr(first).encode(), b";", repr(next(cursor)).encode()]

middleware = TimeTracerMiddleware(app, TraceConfig(mode="record", cassette_dir=folder, compression=compression))
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/items", "QUERY_STRING": "", "wsgi.input": io.BytesIO()}
response = middleware(environ, lambda status, headers, exc_info=None: None)
print("started", next(response))
"""


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_unclosed_response_with_pymongo_events_is_written_at_teardown(
    tmp_path: Path, compression: str, mongo_client: Any, mongo_uri: str
) -> None:
    if compression == "zstd":
        pytest.importorskip("zstandard")
    db_name = f"tt_shutdown_{compression}"
    mongo_client.drop_database(db_name)
    mongo_client[db_name]["items"].insert_many([{"n": 1, "name": "a"}, {"n": 2, "name": "b"}])
    try:
        done = subprocess.run(
            [sys.executable, "-c", PYMONGO_SCRIPT, str(tmp_path), compression, mongo_uri, db_name],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        mongo_client.drop_database(db_name)
    assert done.returncode == 0, done.stderr
    assert "meta_path" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    suffix = {"gzip": ".json.gz", "zstd": ".json.zst"}[compression]
    document = read_cassette(tmp_path / f"GET__items{suffix}")
    assert [event["signature"]["method"] for event in document["events"]] == ["FIND_ONE", "FIND"]
    assert document["response"]["body"]["data"] == "{'n': 1, 'name': 'a'}"
