"""``timetracer ls/show/diff/validate/timeline`` on ``s3://`` URLs: cassettes recorded by the shop
app into a bucket on a real S3 API on loopback (moto's server), read by the console script.

Each command's output on an S3 object is compared with its output on a local copy of the same
bytes, so S3 and local files are shown the same way.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

import pytest

from .conftest import (
    APP_DIR,
    REQUESTS,
    assert_one_line_error,
    cli,
    example_env,
    free_port,
    load_example_module,
    run_app,
)


@dataclass
class Bucket:
    """The shop's cassettes in ``s3://bucket/prefix``, and a local copy of every object."""

    bucket: str
    prefix: str
    keys: List[str]
    local: Path  # the objects' bytes under their keys relative to the prefix
    env: Dict[str, str]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def object_url(self, name: str) -> str:
        return f"{self.url}/{name}"


def _s3_env(s3: Any, **values: str) -> Dict[str, str]:
    env = {name: value for name, value in example_env(**values).items() if not name.startswith("AWS_")}
    env.update(s3.env)
    return env


@pytest.fixture(scope="module")
def shop_bucket(s3_server: Any, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Bucket:
    """The shop app run for real, recording ``REQUESTS`` into ``s3://bucket/shop/recordings``
    (gzip-compressed objects), plus one plain object in a nested "folder"."""
    root = tmp_path_factory.mktemp("s3-shop")
    bucket = s3_server.bucket()
    prefix = "shop/recordings"
    load_example_module(APP_DIR / "seed.py").seed(mongo_uri)
    env = _s3_env(
        s3_server,
        MONGODB_URI=mongo_uri,
        TIMETRACER_CASSETTE_DIR=f"s3://{bucket}/{prefix}",
        TIMETRACER_COMPRESSION="gzip",
        TIMETRACER_MODE="record",
    )
    port = free_port()
    command = [sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port)]
    with run_app(command, APP_DIR, env, port, root / "record.log") as app:
        for method, path, payload in REQUESTS:
            assert app.request(method, path, payload).status in (200, 201)
        deadline = time.monotonic() + 30
        while len(s3_server.keys(bucket, prefix + "/")) < len(REQUESTS):
            assert time.monotonic() < deadline, s3_server.keys(bucket)
            time.sleep(0.05)
    first = s3_server.keys(bucket, prefix + "/")[0]
    nested = f"{prefix}/nested/{first.rsplit('/', 1)[1][: -len('.gz')]}"
    import gzip

    s3_server.client().put_object(
        Bucket=bucket, Key=nested, Body=gzip.decompress(s3_server.get(bucket, first))
    )
    keys = s3_server.keys(bucket, prefix + "/")
    local = root / "copy"
    for key in keys:
        target = local / key[len(prefix) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3_server.get(bucket, key))
    return Bucket(bucket, prefix, keys, local, _s3_env(s3_server))


def _names(shop: Bucket) -> List[str]:
    return [key[len(shop.prefix) + 1 :] for key in shop.keys]


def test_ls_json_on_a_prefix_lists_every_object_like_the_local_copy(shop_bucket: Bucket) -> None:
    run = cli("ls", shop_bucket.url, "--json", env=shop_bucket.env)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    rows = json.loads(run.stdout)
    assert [row["file"] for row in rows] == _names(shop_bucket)
    assert len(rows) == len(REQUESTS) + 1
    local = cli("ls", str(shop_bucket.local), "--json", env=shop_bucket.env)
    assert local.returncode == 0, local.stderr
    assert rows == json.loads(local.stdout)  # requests, statuses, calls, dates and object sizes
    assert sorted((row["method"], row["path"]) for row in rows if row["file"].count("/") == 0) == sorted(
        (method, path) for method, path, _ in REQUESTS
    )
    # A trailing slash names the same prefix.
    again = cli("ls", shop_bucket.url + "/", "--json", env=shop_bucket.env)
    assert json.loads(again.stdout) == rows


def test_ls_table_and_the_default_folder_from_the_environment(shop_bucket: Bucket, tmp_path: Path) -> None:
    run = cli("ls", shop_bucket.url, env=shop_bucket.env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["FILE", "REQUEST", "STATUS", "CALLS", "RECORDED_AT", "SIZE"]
    assert [line.split()[0] for line in lines[1:-1]] == _names(shop_bucket)
    assert any(" GET /users/123 " in line and " 200 " in line for line in lines)
    assert lines[-1].startswith(f"{len(shop_bucket.keys)} cassettes in {shop_bucket.url}, ")
    default = cli("ls", cwd=tmp_path, env={**shop_bucket.env, "TIMETRACER_CASSETTE_DIR": shop_bucket.url})
    assert default.returncode == 0, default.stderr
    assert default.stdout == run.stdout
    assert not (tmp_path / "cassettes").exists()


def test_ls_of_an_empty_prefix_says_so(shop_bucket: Bucket) -> None:
    run = cli("ls", f"s3://{shop_bucket.bucket}/nothing-here", env=shop_bucket.env)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"no cassettes in s3://{shop_bucket.bucket}/nothing-here\n"


def test_show_an_object_as_its_local_copy(shop_bucket: Bucket) -> None:
    name = _names(shop_bucket)[0]
    url = shop_bucket.object_url(name)
    run = cli("show", url, env=shop_bucket.env)
    assert run.returncode == 0, run.stderr
    local = cli("show", str(shop_bucket.local / name), env=shop_bucket.env)
    head, rest = run.stdout.split("\n", 1)
    local_head, local_rest = local.stdout.split("\n", 1)
    assert head.startswith(url + "  (schema ")
    assert head[len(url) :] == local_head[len(str(shop_bucket.local / name)) :]
    assert rest == local_rest
    as_json = cli("show", url, "--json", env=shop_bucket.env)
    assert json.loads(as_json.stdout) == json.loads(
        cli("show", str(shop_bucket.local / name), "--json").stdout
    )


def test_diff_between_an_object_and_local_files(shop_bucket: Bucket) -> None:
    names = _names(shop_bucket)
    same = cli(
        "diff", shop_bucket.object_url(names[0]), str(shop_bucket.local / names[0]), env=shop_bucket.env
    )
    assert same.returncode == 0, same.stdout + same.stderr
    assert shop_bucket.object_url(names[0]) in same.stdout
    other = next(n for n in names if "users_456" in n)
    different = cli(
        "diff", shop_bucket.object_url(names[0]), str(shop_bucket.local / other), env=shop_bucket.env
    )
    assert different.returncode == 1, different.stderr
    assert f"--- A {shop_bucket.object_url(names[0])}" in different.stdout
    assert "request.path:" in different.stdout


def test_validate_a_prefix_and_a_spoiled_object(shop_bucket: Bucket, s3_server: Any) -> None:
    run = cli("validate", shop_bucket.url, env=shop_bucket.env)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[:-1] == [f"ok       {shop_bucket.object_url(name)}" for name in _names(shop_bucket)]
    assert lines[-1] == f"{len(shop_bucket.keys)} valid, 0 invalid"
    spoiled = f"{shop_bucket.prefix}-spoiled/GET__products.json.gz"
    s3_server.client().put_object(Bucket=shop_bucket.bucket, Key=spoiled, Body=b'{"schema_version": "1.1"}')
    bad = cli("validate", f"s3://{shop_bucket.bucket}/{spoiled}", env=shop_bucket.env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert bad.stdout.splitlines() == [
        f"invalid  s3://{shop_bucket.bucket}/{spoiled}: compression: the name says gzip-compressed, "
        "the content is not compressed",
        "0 valid, 1 invalid",
    ]


def test_timeline_of_an_object_is_written_in_the_current_folder(shop_bucket: Bucket, tmp_path: Path) -> None:
    name = next(n for n in _names(shop_bucket) if n.startswith("GET__products"))
    run = cli("timeline", shop_bucket.object_url(name), cwd=tmp_path, env=shop_bucket.env)
    assert run.returncode == 0, run.stderr
    page = tmp_path / (name[: -len(".json.gz")] + ".html")
    assert run.stdout == f"{page.name}\n"
    html = page.read_text(encoding="utf-8")
    assert shop_bucket.object_url(name) in html
    local_page = tmp_path / "local.html"
    cli("timeline", str(shop_bucket.local / name), "-o", str(local_page), env=shop_bucket.env)
    local_html = local_page.read_text(encoding="utf-8")
    assert html.replace(shop_bucket.object_url(name), "SOURCE") == local_html.replace(
        str(shop_bucket.local / name), "SOURCE"
    )
    chosen = cli(
        "timeline", shop_bucket.object_url(name), "-o", str(tmp_path / "t.html"), env=shop_bucket.env
    )
    assert chosen.returncode == 0 and (tmp_path / "t.html").read_text(encoding="utf-8") == html


def test_missing_buckets_and_objects_are_one_line_naming_the_url(shop_bucket: Bucket) -> None:
    env = shop_bucket.env
    nobucket = "s3://timetracer-no-such-bucket-x1/shop"
    assert_one_line_error(cli("ls", nobucket, env=env), nobucket, "does not exist")
    assert_one_line_error(cli("validate", nobucket, env=env), nobucket, "does not exist")
    missing = shop_bucket.object_url("GET__nope.json")
    assert_one_line_error(cli("show", missing, env=env), missing, "does not exist")
    assert_one_line_error(cli("timeline", missing, env=env), missing, "does not exist")
    assert_one_line_error(
        cli("diff", missing, str(shop_bucket.local / _names(shop_bucket)[0]), env=env),
        missing,
        "does not exist",
    )
    empty = f"s3://{shop_bucket.bucket}/nothing-here"
    assert_one_line_error(cli("validate", empty, env=env), empty, "no cassette objects")
    assert_one_line_error(cli("ls", "s3://", env=env), "s3://bucket/prefix")
    one = shop_bucket.object_url(_names(shop_bucket)[0])
    assert_one_line_error(cli("ls", one, env=env), one, "timetracer show")


def test_verify_replays_every_object_of_a_prefix_against_the_app(
    shop_bucket: Bucket, dead_mongo_uri: str
) -> None:
    env = {**shop_bucket.env, "MONGODB_URI": dead_mongo_uri}  # no database: replay answers every call
    run = cli("verify", "--app", "app:app", shop_bucket.url, cwd=APP_DIR, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert [line.split()[1] for line in lines[:-1]] == [
        shop_bucket.object_url(n) for n in _names(shop_bucket)
    ]
    assert all(line.startswith("identical ") for line in lines[:-1]), run.stdout
    count = len(shop_bucket.keys)
    assert lines[-1] == f"{count} cassettes: {count} identical, 0 different, 0 mismatch, 0 skipped"
