"""``python -m benchmarks.s3_upload``: what an ``s3://`` cassette folder costs, against moto's S3
server on loopback (needs the test extra: ``pip install -e '.[test]'``).

Prints medians (ms) of: a local cassette write, one S3 PUT (conditional, as recording does), what a
recorded request itself pays with an S3 folder (encoding plus handing the bytes to the uploader),
a replay read (conditional GET answered 304, parsed cassette reused), and the one-off cost of
importing boto3 and making its client in a fresh process.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List

ROUNDS = 200


def _median_ms(func: Callable[[int], object], rounds: int = ROUNDS) -> float:
    times: List[float] = []
    for index in range(rounds):
        started = time.perf_counter()
        func(index)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _document() -> Dict[str, object]:
    events = [
        {
            "eid": n,
            "signature": {"method": "FIND_ONE", "db": "shop", "collection": "users"},
            "args": {"filter": {"_id": str(n)}},
            "result": {"_id": str(n), "name": "Alice", "email": "alice@example.com", "age": 30},
        }
        for n in range(1, 6)
    ]
    return {"schema_version": "1.0", "session": {"id": "bench"}, "events": events}


def main() -> int:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    aws = {
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(aws)
    try:
        from timetracer._s3path import S3Path
        from timetracer.cassette import _s3
        from timetracer.cassette.storage import encode, write_cassette
        from timetracer.config import Compression

        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        _s3.client().create_bucket(Bucket=bucket)
        document = _document()
        data = encode(document, Compression.NONE)
        with tempfile.TemporaryDirectory() as folder:
            local = _median_ms(
                lambda i: write_cassette(Path(folder) / f"GET__x~{i + 2}.json", document, Compression.NONE)
            )
        put = _median_ms(lambda i: _s3._put(S3Path(bucket, f"put/GET__x~{i + 2}.json"), data, only_new=True))
        recordings = _s3.S3RecordingFolder(S3Path(bucket, "queued"))
        _s3.flush(30)

        def enqueue(i: int) -> None:
            claim = recordings.claim("GET", "/x", None, ".json", 0)
            assert claim is not None
            _s3.upload_later(claim.target, document, Compression.NONE)

        queued = _median_ms(enqueue)
        started = time.perf_counter()
        _s3.flush(120)
        drained = (time.perf_counter() - started) * 1000
        url = S3Path(bucket, "put/GET__x~2.json")
        _s3.read_cassette(url)
        reread = _median_ms(lambda i: _s3.read_cassette(url))
        code = (
            "import time; t=time.perf_counter(); import boto3; "
            "c=boto3.session.Session().client('s3'); print((time.perf_counter()-t)*1000)"
        )
        cold = [
            float(
                subprocess.run(
                    [sys.executable, "-c", code],
                    env={**os.environ, **aws},
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for _ in range(5)
        ]
    finally:
        server.stop()
    print(f"cassette: {len(data)} bytes; medians of {ROUNDS} rounds")
    print(f"local write_cassette (temp file, fsync, rename): {local:.2f} ms")
    print(f"S3 conditional PUT on loopback (moto):           {put:.2f} ms")
    print(f"request's share with an s3:// folder (enqueue):   {queued:.3f} ms")
    print(f"background queue of {ROUNDS} drained in:          {drained:.0f} ms after the last enqueue")
    print(f"replay re-read (conditional GET, 304, cached):    {reread:.2f} ms")
    print(f"boto3 import + client, fresh process (median of 5): {statistics.median(cold):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
