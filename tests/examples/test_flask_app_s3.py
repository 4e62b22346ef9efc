"""``examples/pymongo_flask_app`` recording into and replaying from ``s3://bucket/prefix``, against
a real S3 API on loopback (moto's server, started by the tests) and the mongoeco database."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from timetracer.cassette.storage import decode

from ._support import example_env, free_port, run_app
from .test_flask_app import APP_DIR, CASSETTES, REQUESTS, flask_command, seed

SUFFIX = {"none": ".json", "gzip": ".json.gz", "zstd": ".json.zst"}
MAGIC = {"none": b"{", "gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}


def s3_app_env(s3: Any, **values: str) -> Dict[str, str]:
    """The example's environment with AWS pointed at the loopback server only."""
    env = {name: value for name, value in example_env(**values).items() if not name.startswith("AWS_")}
    env.update(s3.env)
    return env


def wait_for_objects(s3: Any, bucket: str, prefix: str, count: int, timeout: float = 30.0) -> List[str]:
    """The keys under ``prefix`` once there are ``count`` of them (uploads run in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        keys = s3.keys(bucket, prefix)
        if len(keys) >= count:
            return keys
        if time.monotonic() > deadline:
            pytest.fail(f"{count} objects not all uploaded under s3://{bucket}/{prefix}; found {keys}")
        time.sleep(0.05)


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_record_into_s3_then_replay_with_the_database_stopped(
    compression: str, tmp_path: Path, s3_server: Any, mongo_server_factory: Callable[..., Any]
) -> None:
    server = mongo_server_factory()
    seed(server.uri)
    bucket = s3_server.bucket()
    env = s3_app_env(
        s3_server,
        MONGODB_URI=server.uri,
        TIMETRACER_CASSETTE_DIR=f"s3://{bucket}/shop/recordings",
        TIMETRACER_COMPRESSION=compression,
    )
    port = free_port()
    with run_app(
        flask_command(port), APP_DIR, {**env, "TIMETRACER_MODE": "record"}, port, tmp_path / "rec.log"
    ) as app:
        recorded = [app.request(method, path, payload) for method, path, payload in REQUESTS]
        keys = wait_for_objects(s3_server, bucket, "shop/recordings/", len(CASSETTES))
    assert [r.status for r in recorded] == [200, 200, 201]
    expected = sorted(f"shop/recordings/{name[: -len('.json')]}{SUFFIX[compression]}" for name in CASSETTES)
    assert keys == expected
    for key in keys:
        data = s3_server.get(bucket, key)
        assert data.startswith(MAGIC[compression])
        document = decode(data, key)
        assert document["events"], key
    user = decode(s3_server.get(bucket, f"shop/recordings/GET__users_123{SUFFIX[compression]}"), "x")
    assert [e["signature"]["method"] for e in user["events"]] == ["FIND_ONE"]
    # No local staging left in the app's folder.
    assert not (APP_DIR / "cassettes").exists()

    server.stop()

    port = free_port()
    with run_app(
        flask_command(port), APP_DIR, {**env, "TIMETRACER_MODE": "replay"}, port, tmp_path / "rep.log"
    ) as app:
        replayed = [app.request(method, path, payload) for method, path, payload in REQUESTS]
    for before, after in zip(recorded, replayed):
        assert after.status == before.status
        assert after.body == before.body
        assert after.headers["X-Timetracer-Replay"] == "identical"


def test_two_app_processes_record_into_one_prefix(
    tmp_path: Path, s3_server: Any, mongo_server_factory: Callable[..., Any]
) -> None:
    """Both processes record the same request at once: every recording lands under its own name,
    none overwritten, and a replay answers each of them in turn."""
    server = mongo_server_factory()
    seed(server.uri)
    bucket = s3_server.bucket()
    folder = f"s3://{bucket}/shared"
    env = s3_app_env(
        s3_server, MONGODB_URI=server.uri, TIMETRACER_CASSETTE_DIR=folder, TIMETRACER_MODE="record"
    )
    per_app = 6
    ports = [free_port(), free_port()]
    with (
        run_app(flask_command(ports[0]), APP_DIR, env, ports[0], tmp_path / "a.log") as first,
        run_app(flask_command(ports[1]), APP_DIR, env, ports[1], tmp_path / "b.log") as second,
    ):
        results: List[Any] = []
        barrier = threading.Barrier(2)

        def hammer(app: Any) -> None:
            barrier.wait()
            for _ in range(per_app):
                results.append(app.request("GET", "/users/123"))

        threads = [threading.Thread(target=hammer, args=(app,)) for app in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        keys = wait_for_objects(s3_server, bucket, "shared/", 2 * per_app)
    assert [r.status for r in results] == [200] * (2 * per_app)
    numbered = ["shared/GET__users_123.json"] + [
        f"shared/GET__users_123~{n}.json" for n in range(2, 2 * per_app + 1)
    ]
    assert sorted(keys) == sorted(numbered)
    # Each object is one whole cassette of one request (no two writers shared a name).
    ids = {json.loads(s3_server.get(bucket, key))["session"]["id"] for key in keys}
    assert len(ids) == 2 * per_app

    server.stop()
    port = free_port()
    replay_env = {**env, "TIMETRACER_MODE": "replay"}
    with run_app(flask_command(port), APP_DIR, replay_env, port, tmp_path / "replay.log") as app:
        replayed = [app.request("GET", "/users/123") for _ in range(2 * per_app)]
    assert [r.status for r in replayed] == [200] * (2 * per_app)
    assert {r.body for r in replayed} == {results[0].body}
    assert {r.headers["X-Timetracer-Replay"] for r in replayed} == {"identical"}


@pytest.mark.parametrize("failure", ["missing bucket", "endpoint down"])
def test_storage_failure_while_recording_leaves_the_response_alone(
    failure: str, tmp_path: Path, s3_server: Any, mongo_server_factory: Callable[..., Any]
) -> None:
    server = mongo_server_factory()
    seed(server.uri)
    bucket = "tt-no-such-bucket" if failure == "missing bucket" else s3_server.bucket()
    env = s3_app_env(s3_server, MONGODB_URI=server.uri)
    if failure == "endpoint down":
        env["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{free_port()}"
    port = free_port()
    with run_app(
        flask_command(port), APP_DIR, {**env, "TIMETRACER_MODE": "off"}, port, tmp_path / "off.log"
    ) as app:
        plain = [app.request(method, path, None) for method, path, _ in REQUESTS[:2]]
    env.update(
        TIMETRACER_MODE="record", TIMETRACER_CASSETTE_DIR=f"s3://{bucket}/rec", TIMETRACER_S3_TIMEOUT="2"
    )
    port = free_port()
    log = tmp_path / "record.log"
    with run_app(flask_command(port), APP_DIR, env, port, log) as app:
        started = time.monotonic()
        recorded = [app.request(method, path, None) for method, path, _ in REQUESTS[:2]]
        elapsed = time.monotonic() - started
        # Uploads run on several threads: wait for the report of each, in whatever order.
        expected = [f"could not upload cassette s3://{bucket}/rec/{name}" for name in CASSETTES[:2]]
        deadline = time.monotonic() + 30
        while not all(line in app.output() for line in expected) and time.monotonic() < deadline:
            time.sleep(0.1)
        output = app.output()
    for before, after in zip(plain, recorded):
        assert (after.status, after.body) == (before.status, before.body)
        assert "X-Timetracer-Replay" not in after.headers
    assert elapsed < 5, f"responses took {elapsed:.1f}s while the upload failed"
    for line in expected:
        assert line in output
    assert ("NoSuchBucket" if failure == "missing bucket" else "EndpointConnectionError") in output
    if failure == "endpoint down":
        assert s3_server.keys(bucket) == []


def test_missing_object_in_replay_is_a_500_naming_the_url(
    tmp_path: Path, s3_server: Any, dead_mongo_uri: str
) -> None:
    bucket = s3_server.bucket()
    env = s3_app_env(
        s3_server,
        MONGODB_URI=dead_mongo_uri,
        TIMETRACER_MODE="replay",
        TIMETRACER_CASSETTE_DIR=f"s3://{bucket}/empty",
    )
    port = free_port()
    with run_app(flask_command(port), APP_DIR, env, port, tmp_path / "replay.log") as app:
        missing = app.request("GET", "/users/123")
    assert missing.status == 500
    text = missing.body.decode()
    assert f"looked for s3://{bucket}/empty/GET__users_123.json" in text
    assert "Record it first" in text


def test_gzip_object_is_one_whole_member(tmp_path: Path, s3_env: Any) -> None:
    """What the uploader PUTs for a gzip cassette is a complete gzip stream of the JSON document."""
    from timetracer.cassette import read_cassette, write_cassette
    from timetracer.config import Compression, Mode, TraceConfig
    from timetracer.session import Session

    bucket = s3_env.bucket()
    document = Session(TraceConfig(), Mode.RECORD, request={"name": "job"}).to_cassette()
    write_cassette(f"s3://{bucket}/p/job.json.gz", document, Compression.GZIP)
    raw = s3_env.get(bucket, "p/job.json.gz")
    assert json.loads(gzip.decompress(raw)) == document
    assert read_cassette(f"s3://{bucket}/p/job.json.gz") == document
