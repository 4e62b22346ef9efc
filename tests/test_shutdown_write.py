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
