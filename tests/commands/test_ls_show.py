"""``timetracer ls`` and ``timetracer show`` over cassettes recorded from the shop app."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from timetracer.cassette.storage import write_cassette
from timetracer.config import Compression

from .conftest import SCRIPT, Recorded, assert_one_line_error, cli, example_env


def _add_compressed_copies(shop: Recorded) -> tuple:
    """gzip and zstd copies of two cassettes in a nested folder, and temp-file debris beside them."""
    nested = shop.directory / "nested" / "deeper"
    gz = write_cassette(nested / "GET__products.json.gz", shop.document("GET__products"), Compression.GZIP)
    zst = write_cassette(
        nested / "GET__users_456.json.zst", shop.document("GET__users_456"), Compression.ZSTD
    )
    (nested / ".GET__products.json.gz.k2j4h1.tmp").write_bytes(b"half a cassette")
    (shop.directory / ".GET__users_1.json.claim").write_bytes(b"")
    (shop.directory / ".hidden").mkdir()
    (shop.directory / ".hidden" / "GET__x.json").write_text("{}")
    return gz, zst


def test_ls_lists_every_cassette_recursively_in_every_compression(shop_copy: Recorded) -> None:
    gz, zst = _add_compressed_copies(shop_copy)
    run = cli("ls", str(shop_copy.directory), "--json")
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    rows = {row["file"]: row for row in json.loads(run.stdout)}
    expected_files = sorted(str(p.relative_to(shop_copy.directory)) for p in [*shop_copy.files, gz, zst])
    assert sorted(rows) == expected_files  # temp files, claims and hidden folders left out
    assert len(rows) == 8
    for path in shop_copy.files:
        row = rows[path.name]
        document = json.loads(path.read_text(encoding="utf-8"))
        assert row["bytes"] == path.stat().st_size
        assert row["method"] == document["request"]["method"]
        assert row["path"] == document["request"]["path"]
        assert row["status"] == document["response"]["status"]
        assert row["calls"] == len(document["events"])
        assert row["recorded_at"] == document["session"]["recorded_at"]
    assert rows["nested/deeper/GET__products.json.gz"]["bytes"] == gz.stat().st_size
    assert rows["nested/deeper/GET__products.json.gz"]["method"] == "GET"
    assert rows["nested/deeper/GET__products.json.gz"]["path"] == "/products"
    assert rows["nested/deeper/GET__users_456.json.zst"]["path"] == "/users/456"
    assert rows["nested/deeper/GET__users_456.json.zst"]["status"] == 200
    post = [row for row in rows.values() if row["method"] == "POST"]
    assert [(p["path"], p["status"], p["calls"]) for p in post] == [("/products", 201, 1)]


def test_ls_table_and_default_folders(shop_copy: Recorded, tmp_path: Path) -> None:
    run = cli("ls", cwd=tmp_path)  # ./cassettes
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["FILE", "REQUEST", "STATUS", "CALLS", "RECORDED_AT", "SIZE"]
    users = [line for line in lines if line.startswith("GET__users_123.json ")]
    assert len(users) == 1
    document = shop_copy.document("GET__users_123")
    assert users[0].split()[1:6] == ["GET", "/users/123", "200", "1", document["session"]["recorded_at"]]
    assert len([line for line in lines if line.startswith("GET__users_123~2.json ")]) == 1
    assert lines[-1].startswith("6 cassettes in cassettes, ")

    elsewhere = tmp_path / "elsewhere"
    shop_copy.directory.rename(elsewhere)
    env = example_env(TIMETRACER_CASSETTE_DIR=str(elsewhere))
    run = cli("ls", cwd=tmp_path, env=env)  # $TIMETRACER_CASSETTE_DIR
    assert run.returncode == 0, run.stderr
    assert f"6 cassettes in {elsewhere.name}" in run.stdout.splitlines()[-1]


def test_ls_names_a_corrupt_cassette_and_lists_the_others(shop_copy: Recorded) -> None:
    (shop_copy.directory / "GET__broken.json").write_text('{"schema_version": "1.0", "events": [')
    run = cli("ls", str(shop_copy.directory))
    assert run.returncode == 2
    assert_one_line_error(run, "GET__broken.json", "not valid JSON")
    assert run.stdout.splitlines()[-1].startswith("6 cassettes in ")


def test_ls_missing_folder(tmp_path: Path) -> None:
    assert_one_line_error(cli("ls", str(tmp_path / "nope")), str(tmp_path / "nope"), "no such folder")
    assert_one_line_error(cli("ls", cwd=tmp_path), "cassettes", "no such folder")


def test_show_prints_request_status_and_one_line_per_call(shop_copy: Recorded) -> None:
    path = shop_copy.find("GET__products")
    document = shop_copy.document("GET__products")
    run = cli("show", str(path))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(
        f"{path}  (schema {document['schema_version']}, recorded {document['session']['recorded_at']}"
    )
    assert lines[1].startswith("GET /products -> 200 OK")
    assert lines[2] == "1 call"
    assert lines[3].split() == ["EID", "METHOD", "NAMESPACE", "DURATION", "ARGUMENTS", "RESULT"]
    duration = document["events"][0]["duration_ms"]
    assert lines[4].split() == [
        "1",
        "FIND",
        "shop.products",
        f"{duration:.2f}",
        "ms",
        '{"in_stock":',
        "true}",
        "2",
        "documents",
    ]

    run = cli("show", str(shop_copy.find("POST__products")))
    assert "POST /products -> 201 CREATED" in run.stdout
    assert 'request body: {"name": "Desk lamp", "price": 24.9}' in run.stdout.splitlines()
    insert = run.stdout.splitlines()[-1].split()
    assert insert[:3] == ["1", "INSERT_ONE", "shop.products"]
    inserted = shop_copy.document("POST__products")["events"][0]["result"]["body"]["data"]["inserted_id"]
    assert insert[-3:] == ["inserted", "_id", f"ObjectId({inserted['$oid']})"]

    run = cli("show", str(shop_copy.find("GET__users_999")))
    assert run.stdout.splitlines()[-1].split()[-2:] == ["no", "document"]


def test_show_json_is_the_parsed_cassette_whatever_the_compression(shop_copy: Recorded) -> None:
    gz, zst = _add_compressed_copies(shop_copy)
    for path, prefix in (
        (gz, "GET__products"),
        (zst, "GET__users_456"),
        (shop_copy.find("GET__products"), "GET__products"),
    ):
        run = cli("show", "--json", str(path))
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == shop_copy.document(prefix)
    run = cli("show", str(zst))
    assert run.stdout.splitlines()[1].startswith("GET /users/456 -> 200")


def test_a_reader_that_closes_the_pipe_early_stops_the_command_quietly(shop_copy: Recorded) -> None:
    # `timetracer validate DIR | head -1`: the reader is gone before the command writes.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        for command in (["ls", str(shop_copy.directory)], ["validate", str(shop_copy.directory)]):
            run = subprocess.run(
                [str(SCRIPT), *command],
                env=example_env(),
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
            )
            assert run.stderr == "", run.stderr  # no "internal error", no traceback at exit
            assert run.returncode == 141  # 128 + SIGPIPE, as ls and git end
    finally:
        os.close(write_end)
