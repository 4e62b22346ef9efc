"""``s3://`` cassette locations against a real S3 API on loopback (moto's server): settings, the
storage API tools use, script mode and the ``timetracer`` command, the exit flush, and local paths
that never import boto3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict

import pymongo
import pytest

from timetracer._s3path import S3Path
from timetracer.config import Compression, TraceConfig
from timetracer.errors import CassetteNotFoundError, ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent

def _cassette(name: str) -> Dict[str, Any]:
    """A real (empty) cassette document, as a recording session writes it."""
    from timetracer.config import Mode
    from timetracer.session import Session

    return Session(TraceConfig(), Mode.RECORD, request={"name": name}).to_cassette()


CASSETTE = _cassette("one")


def run_python(args: list, cwd: Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TIMETRACER_", "AWS_", "APP_"))}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), full.get("PYTHONPATH")]))
    full["PYTHONDONTWRITEBYTECODE"] = "1"
    full.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=str(cwd), env=full, capture_output=True, text=True, timeout=120
    )


# -- settings --------------------------------------------------------------------------------


def test_settings_take_s3_urls() -> None:
    config = TraceConfig.from_env(
        {
            "TIMETRACER_CASSETTE_DIR": "s3://shop-recordings/prod/api/",
            "TIMETRACER_CASSETTE": "s3://b-1/one.json.gz",
        }
    )
    assert config.cassette_dir == S3Path("shop-recordings", "prod/api")
    assert str(config.cassette_dir / "GET__items.json") == "s3://shop-recordings/prod/api/GET__items.json"
    assert str(config.cassette) == "s3://b-1/one.json.gz"
    assert config.cassette is not None and config.cassette.name == "one.json.gz"
    assert str(TraceConfig.from_env({"TIMETRACER_CASSETTE_DIR": "s3://bucket"}).cassette_dir) == "s3://bucket"


@pytest.mark.parametrize("value", ["s3://", "s3:///prefix"])
def test_a_malformed_url_is_a_config_error_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match=r"TIMETRACER_CASSETTE_DIR='s3://.*s3://bucket/prefix"):
        TraceConfig.from_env({"TIMETRACER_CASSETTE_DIR": value})


def test_a_bad_s3_setting_is_a_config_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMETRACER_S3_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match=r"TIMETRACER_S3_TIMEOUT='soon' is not valid; use a number >= 0.1"):
        TraceConfig.from_env({"TIMETRACER_CASSETTE_DIR": "s3://bucket/p"})
    assert TraceConfig.from_env({"TIMETRACER_CASSETTE_DIR": "local"}).cassette_dir == Path("local")


LOCAL_ONLY = textwrap.dedent(
    """
    import sys
    from werkzeug.test import Client
    from timetracer.config import TraceConfig
    from timetracer.wsgi import TimeTracerMiddleware

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    for mode in ("record", "replay"):
        config = TraceConfig.from_env(mode=mode, cassette_dir="cassettes")
        client = Client(TimeTracerMiddleware(app, config))
        reply = client.get("/hello")
        assert reply.status_code == 200, reply.data
        reply.close()  # the cassette is written when the response is closed
    print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "timetracer")
                            and ("s3" in m or m.startswith("boto"))))
    """
)


def test_local_paths_never_import_the_s3_code(tmp_path: Path) -> None:
    (tmp_path / "local_only.py").write_text(LOCAL_ONLY, encoding="utf-8")
    done = run_python(["local_only.py"], tmp_path, {})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded: ['timetracer._s3path']"
    assert (tmp_path / "cassettes" / "GET__hello.json").is_file()


# -- the storage API (for `timetracer ls/show/...`) -----------------------------------------------


def test_storage_api_lists_reads_and_stats(s3_env: Any) -> None:
    from timetracer.cassette import _s3, read_cassette, write_cassette

    bucket = s3_env.bucket()
    folder = S3Path(bucket, "team/api")
    write_cassette(folder / "GET__items.json", CASSETTE, Compression.NONE)
    write_cassette(folder / "GET__items~2.json.zst", CASSETTE, Compression.ZSTD)
    s3_env.client().put_object(Bucket=bucket, Key="team/api/notes.txt", Body=b"x")
    s3_env.client().put_object(Bucket=bucket, Key="team/api/deeper/GET__x.json", Body=b"{}")

    listed = _s3.list_cassettes(folder)
    assert [info.name for info in listed] == ["GET__items.json", "GET__items~2.json.zst"]
    assert [str(info.url) for info in listed] == [
        f"s3://{bucket}/team/api/GET__items.json",
        f"s3://{bucket}/team/api/GET__items~2.json.zst",
    ]
    deeper = _s3.list_cassettes(folder, recursive=True)
    assert [info.url.key for info in deeper] == [
        "team/api/GET__items.json",
        "team/api/GET__items~2.json.zst",
        "team/api/deeper/GET__x.json",
    ]
    info = _s3.stat(folder / "GET__items.json")
    assert info.size == len(s3_env.get(bucket, "team/api/GET__items.json")) and info.etag.strip('"')
    assert _s3.read_bytes(folder / "GET__items~2.json.zst").startswith(b"\x28\xb5\x2f\xfd")
    assert (folder / "GET__items.json").exists() and not (folder / "GET__nope.json").exists()
    assert read_cassette(folder / "GET__items~2.json.zst") == CASSETTE

    with pytest.raises(
        CassetteNotFoundError, match=f"cassette s3://{bucket}/team/api/GET__nope.json does not exist"
    ):
        read_cassette(f"s3://{bucket}/team/api/GET__nope.json")
    with pytest.raises(CassetteNotFoundError, match="s3://tt-missing-bucket/x does not exist"):
        _s3.list_cassettes(S3Path("tt-missing-bucket", "x"))


def test_replay_reuses_a_parsed_cassette_until_the_object_changes(s3_env: Any) -> None:
    from timetracer.cassette import read_cassette, write_cassette

    url = f"s3://{s3_env.bucket()}/c/GET__items.json"
    write_cassette(url, CASSETTE, Compression.NONE)
    first = read_cassette(url)
    assert read_cassette(url) is first  # ETag unchanged: the parsed document is reused
    changed = _cassette("two")
    write_cassette(url, changed, Compression.NONE)
    assert read_cassette(url) == changed


def test_storage_failure_in_a_read_names_the_url(s3_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from timetracer.cassette import read_cassette
    from timetracer.errors import CassetteError

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("TIMETRACER_S3_TIMEOUT", "1")
    with pytest.raises(
        CassetteError, match=r"cassette s3://bkt/a\.json: cannot read \(EndpointConnectionError"
    ):
        read_cassette("s3://bkt/a.json")


# -- script mode, record()/replay(), the timetracer command, the exit flush -----------------------


JOB = textwrap.dedent(
    """
    import os
    from pymongo import MongoClient
    from timetracer.plugins import enable_pymongo

    enable_pymongo()
    client = MongoClient(os.environ["APP_MONGO_URI"], serverSelectionTimeoutMS=1500)
    print("users:", [u["email"] for u in client.etl.users.find({}, {"_id": 0}).sort("email", 1)])
    """
)


@pytest.fixture
def database(mongo_server_factory: Callable[..., Any]) -> Any:
    server = mongo_server_factory()
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000)
    client.etl.users.insert_many([{"email": "ann@example.com"}, {"email": "bob@example.com"}])
    client.close()
    return server


def test_cli_and_script_mode_record_into_s3_and_replay_from_it(
    tmp_path: Path, s3_server: Any, database: Any
) -> None:
    bucket = s3_server.bucket()
    (tmp_path / "job.py").write_text(JOB, encoding="utf-8")
    env = {**s3_server.env, "APP_MONGO_URI": database.uri}
    url = f"s3://{bucket}/jobs/report.json.gz"
    recorded = run_python(["-m", "timetracer", "record", "--cassette", url, "job.py"], tmp_path, env)
    assert recorded.returncode == 0, recorded.stderr
    assert f"timetracer: recorded 1 call → {url}" in recorded.stderr  # the whole URL, as written
    script = run_python(
        ["job.py"],
        tmp_path,
        {**env, "TIMETRACER_MODE": "record", "TIMETRACER_CASSETTE_DIR": f"s3://{bucket}/etl"},
    )
    assert script.returncode == 0, script.stderr
    assert s3_server.keys(bucket) == ["etl/job.json", "jobs/report.json.gz"]
    assert s3_server.get(bucket, "jobs/report.json.gz").startswith(b"\x1f\x8b")
    assert not (tmp_path / "cassettes").exists()

    database.stop()
    replayed = run_python(["-m", "timetracer", "replay", url, "job.py"], tmp_path, env)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout == "users: ['ann@example.com', 'bob@example.com']\n"
    from_dir = run_python(
        ["job.py"],
        tmp_path,
        {**env, "TIMETRACER_MODE": "replay", "TIMETRACER_CASSETTE_DIR": f"s3://{bucket}/etl"},
    )
    assert from_dir.returncode == 0, from_dir.stderr
    assert from_dir.stdout == recorded.stdout
    missing = run_python(
        ["-m", "timetracer", "replay", f"s3://{bucket}/jobs/nope.json", "job.py"], tmp_path, env
    )
    assert missing.returncode != 0
    assert f"cassette s3://{bucket}/jobs/nope.json does not exist" in missing.stderr


EXITING_APP = textwrap.dedent(
    """
    from werkzeug.test import Client
    from timetracer.config import TraceConfig
    from timetracer.wsgi import TimeTracerMiddleware

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    client = Client(TimeTracerMiddleware(app, TraceConfig.from_env(mode="record")))
    for _ in range(5):
        reply = client.get("/hello")
        assert reply.data == b"hello"
        reply.close()
    # The process ends right away: the pending uploads are flushed at exit.
    """
)


def test_pending_uploads_are_flushed_at_exit(tmp_path: Path, s3_server: Any) -> None:
    bucket = s3_server.bucket()
    (tmp_path / "exiting_app.py").write_text(EXITING_APP, encoding="utf-8")
    env = {**s3_server.env, "TIMETRACER_CASSETTE_DIR": f"s3://{bucket}/web"}
    done = run_python(["exiting_app.py"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert s3_server.keys(bucket) == ["web/GET__hello.json"] + [
        f"web/GET__hello~{n}.json" for n in range(2, 6)
    ]
    assert json.loads(s3_server.get(bucket, "web/GET__hello~5.json"))["response"]["status"] == 200
    assert list(tmp_path.iterdir()) == [tmp_path / "exiting_app.py"]


# -- the pytest plugin -----------------------------------------------------------------------------

pytest_plugins = ["pytester"]

MARKED_TEST = textwrap.dedent(
    """
    import os

    import pytest
    from pymongo import MongoClient


    @pytest.mark.timetracer
    def test_user():
        client = MongoClient(os.environ["TT_URI"], serverSelectionTimeoutMS=500)
        ann = {"email": "ann@example.com"}
        assert client.etl.users.find_one(ann, {"_id": 0}) == ann
    """
)


def test_pytest_plugin_records_into_and_replays_from_an_s3_folder(
    pytester: pytest.Pytester,
    s3_env: Any,
    database: Any,
    dead_mongo_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = s3_env.bucket()
    pytester.makepyfile(test_marked=MARKED_TEST)
    folder = f"s3://{bucket}/tests"
    monkeypatch.setenv("TT_URI", database.uri)
    recorded = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--timetracer-record-mode=once",
        f"--timetracer-cassette-dir={folder}",
        timeout=120,
    )
    recorded.assert_outcomes(passed=1)
    assert s3_env.keys(bucket) == ["tests/test_marked__test_user.json"]
    assert not (pytester.path / "cassettes").exists()

    monkeypatch.setenv("TT_URI", dead_mongo_uri)
    monkeypatch.setenv("TIMETRACER_CASSETTE_DIR", folder)
    replayed = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    replayed.assert_outcomes(passed=1)


def test_cassette_paths_and_the_generic_endpoint_variable(
    s3_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``AWS_ENDPOINT_URL`` (all services) is honoured as well as ``AWS_ENDPOINT_URL_S3``."""
    from timetracer.cassette import cassette_path, read_cassette, write_cassette

    bucket = s3_env.bucket()
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_env.endpoint)
    config = TraceConfig.from_env(
        {"TIMETRACER_CASSETTE_DIR": f"s3://{bucket}/api", "TIMETRACER_COMPRESSION": "gzip"}
    )
    target = cassette_path(config, "GET", "/users/123")
    assert str(target) == f"s3://{bucket}/api/GET__users_123.json.gz"
    write_cassette(target, CASSETTE, config.compression)
    assert s3_env.keys(bucket) == ["api/GET__users_123.json.gz"]
    assert read_cassette(target) == CASSETTE


def test_uploads_beyond_the_bound_are_dropped_and_logged(
    s3_env: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint that accepts connections and never answers: the request's share stays tiny,
    what does not fit in TIMETRACER_S3_QUEUE_BYTES is dropped with an error, the stuck upload
    times out and is reported, each naming its URL."""
    import socket
    import time

    from timetracer.cassette import _s3

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("TIMETRACER_S3_TIMEOUT", "0.5")
        monkeypatch.setenv("TIMETRACER_S3_QUEUE_BYTES", "1")
        monkeypatch.setattr(_s3, "_uploader", None)  # a fresh one, with these settings
        caplog.set_level("ERROR", logger="timetracer")
        started = time.monotonic()
        assert _s3.upload_later(S3Path("bkt", "p/a.json"), CASSETTE, Compression.NONE) is True
        assert _s3.upload_later(S3Path("bkt", "p/b.json"), CASSETTE, Compression.NONE) is False
        assert time.monotonic() - started < 0.5
        assert _s3.flush(30) is True
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "cassette s3://bkt/p/b.json dropped" in m and "TIMETRACER_S3_QUEUE_BYTES=1" in m for m in messages
    )
    assert any(
        m.startswith("timetracer: could not upload cassette s3://bkt/p/a.json: ReadTimeoutError")
        for m in messages
    ), messages


def test_a_missing_fixed_replay_cassette_in_s3_stops_the_app_at_startup(s3_env: Any) -> None:
    from timetracer.wsgi import TimeTracerMiddleware

    url = f"s3://{s3_env.bucket()}/one/GET__users_123.json"
    config = TraceConfig.from_env(mode="replay", cassette=url)
    with pytest.raises(ConfigError, match=f"TIMETRACER_CASSETTE='{url}': the cassette does not exist"):
        TimeTracerMiddleware(lambda environ, start_response: [], config)
