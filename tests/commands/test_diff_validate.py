"""``timetracer diff`` and ``timetracer validate`` over cassettes recorded from the shop app."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any, Callable, Dict

from timetracer.cassette.storage import write_cassette
from timetracer.config import Compression

from .conftest import Recorded, assert_one_line_error, cli


def test_two_recordings_of_one_request_are_equivalent(shop_copy: Recorded) -> None:
    first = shop_copy.find("GET__users_123")
    second = shop_copy.directory / "GET__users_123~2.json"
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert a["session"]["id"] != b["session"]["id"]  # what diff ignores does differ
    assert a["session"]["recorded_at"] != b["session"]["recorded_at"]
    run = cli("diff", str(first), str(second))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("equivalent: ")
    gz = write_cassette(shop_copy.directory / "copy.json.gz", a, Compression.GZIP)
    assert cli("diff", str(first), str(gz)).returncode == 0


def test_diff_lists_request_response_and_call_differences(shop_copy: Recorded) -> None:
    run = cli("diff", str(shop_copy.find("GET__users_123")), str(shop_copy.find("GET__users_456")))
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert 'request.path: "/users/123" -> "/users/456"' in lines
    assert 'response.body._id: "123" -> "456"' in lines
    assert 'response.body.name: "Alice" -> "Bob"' in lines
    assert 'call 1 (FIND_ONE myapp.users): args.filter._id: "123" -> "456"' in lines
    assert "call 1 (FIND_ONE myapp.users): result.body.data.age: 30 -> 25" in lines
    assert not [line for line in lines if "duration" in line or "recorded_at" in line or "offset" in line]
    assert lines[-1].startswith(f"{len(lines) - 3} differences between ")


def test_diff_reports_calls_added_and_removed_by_position(shop_copy: Recorded, tmp_path: Path) -> None:
    base = shop_copy.document("GET__products")
    more = copy.deepcopy(base)
    extra = copy.deepcopy(base["events"][0])
    extra["eid"] = 2
    extra["signature"]["method"] = "COUNT_DOCUMENTS"
    more["events"].append(extra)
    more["response"]["status"] = 500
    (tmp_path / "more.json").write_text(json.dumps(more))
    run = cli("diff", str(shop_copy.find("GET__products")), str(tmp_path / "more.json"))
    assert run.returncode == 1
    assert "response.status: 200 -> 500" in run.stdout.splitlines()
    assert "call 2: added in B: COUNT_DOCUMENTS shop.products" in run.stdout.splitlines()
    run = cli("diff", str(tmp_path / "more.json"), str(shop_copy.find("GET__products")))
    assert "call 2: removed in B: COUNT_DOCUMENTS shop.products" in run.stdout.splitlines()


def test_diff_bad_input(shop_copy: Recorded, tmp_path: Path) -> None:
    good = str(shop_copy.find("GET__products"))
    assert_one_line_error(
        cli("diff", good, str(tmp_path / "nope.json")), str(tmp_path / "nope.json"), "no such file"
    )
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert_one_line_error(
        cli("diff", str(tmp_path / "bad.json"), good), str(tmp_path / "bad.json"), "not an object"
    )
    assert_one_line_error(cli("diff", good), "the following arguments are required: B")


# -- validate --------------------------------------------------------------------------------


def _spoil(shop: Recorded, tmp_path: Path) -> Dict[str, str]:
    """Bad cassettes made from a recorded one: file name -> the reason validate must give."""
    document = shop.document("GET__products")
    raw = json.dumps(document).encode()
    bad: Dict[str, str] = {}

    def put(name: str, data: bytes, reason: str) -> None:
        (tmp_path / name).write_bytes(data)
        bad[name] = reason

    put("truncated.json.gz", gzip.compress(raw)[:-20], "compression: cannot decompress")
    put(
        "plain_named_gz.json.gz",
        raw,
        "compression: the name says gzip-compressed, the content is not compressed",
    )
    put("broken.json", raw[:-5], "JSON: not valid JSON")

    def changed(edit: Callable[[Dict[str, Any]], None]) -> bytes:
        spoiled = copy.deepcopy(document)
        edit(spoiled)
        return json.dumps(spoiled).encode()

    put(
        "lower_method.json",
        changed(lambda d: d["events"][0]["signature"].__setitem__("method", "find")),
        "schema: event eid=1 (events[0]), field 'signature.method': 'find' does not match '^[A-Z_]+$'",
    )
    put(
        "no_session.json",
        changed(lambda d: d.pop("session")),
        "schema: the top level: has no 'session'",
    )
    put(
        "bad_oid.json",
        changed(lambda d: d["events"][0]["result"]["body"]["data"][0].__setitem__("_id", {"$oid": "xyz"})),
        "values: events[0] (eid 1).result.body.data:",
    )
    put(
        "bad_date.json",
        changed(lambda d: d["events"][0]["args"]["filter"].__setitem__("since", {"$date": "yesterday"})),
        "values: events[0] (eid 1).args:",
    )
    return bad


def test_validate_accepts_recorded_cassettes_in_every_compression(shop_copy: Recorded) -> None:
    document = shop_copy.document("GET__products")
    write_cassette(shop_copy.directory / "z" / "p.json.zst", document, Compression.ZSTD)
    write_cassette(shop_copy.directory / "z" / "p.json.gz", document, Compression.GZIP)
    run = cli("validate", str(shop_copy.directory))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == "8 valid, 0 invalid"
    assert run.stdout.count("\nok ") + run.stdout.startswith("ok ") == 8


def test_validate_names_each_bad_file_and_why(shop_copy: Recorded, tmp_path: Path) -> None:
    bad = _spoil(shop_copy, tmp_path)
    good = shop_copy.find("GET__products")
    run = cli("validate", str(good), *(str(tmp_path / name) for name in bad))
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"ok       {good}"
    for name, reason in bad.items():
        line = next(line for line in lines if line.startswith(f"invalid  {tmp_path / name}: "))
        assert reason in line, (name, line)
    assert lines[-1] == f"1 valid, {len(bad)} invalid"


def test_validate_missing_file_is_bad_input(tmp_path: Path) -> None:
    assert_one_line_error(cli("validate", str(tmp_path / "gone.json")), str(tmp_path / "gone.json"))
    assert_one_line_error(cli("validate", cwd=tmp_path), "cassettes", "no such file or folder")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("validate", str(tmp_path / "empty")), "empty", "no cassette files")


def test_diff_compares_json_request_bodies_field_by_field(shop_copy: Recorded, tmp_path: Path) -> None:
    post = shop_copy.find("POST__products")
    other = tmp_path / "other.json"
    other.write_text(post.read_text(encoding="utf-8").replace("Desk lamp", "Chair"), encoding="utf-8")
    run = cli("diff", str(post), str(other))
    assert run.returncode == 1
    assert run.stdout.splitlines()[2:] == [
        'request.body.name: "Desk lamp" -> "Chair"',
        'call 1 (INSERT_ONE shop.products): args.document.name: "Desk lamp" -> "Chair"',
        f"2 differences between {post} and {other}",
    ]
