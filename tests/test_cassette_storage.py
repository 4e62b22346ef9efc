"""Reading and writing cassette files: compression, atomic replacement, load errors, the parse cache."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from timetracer.cassette import read_cassette, storage, write_cassette
from timetracer.cassette._json import FiniteList, JsonText
from timetracer.config import Compression
from timetracer.errors import CassetteError, CassetteNotFoundError, TimeTracerError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

COMPRESSIONS = [
    pytest.param(Compression.NONE, id="none"),
    pytest.param(Compression.GZIP, id="gzip"),
    pytest.param(Compression.ZSTD, id="zstd"),
]


def _needs(compression: Compression) -> None:
    if compression is Compression.ZSTD:
        pytest.importorskip("zstandard")


def make_cassette(user_id: str = "123", name: str = "Alice") -> Dict[str, Any]:
    return {
        "schema_version": "1.0",
        "session": {"id": "abc123", "recorded_at": "2026-01-22T14:00:00Z", "service": "myapp", "env": None},
        "request": {"method": "GET", "path": f"/users/{user_id}"},
        "events": [
            {
                "eid": 1,
                "event_type": "db.query",
                "start_offset_ms": 10.5,
                "duration_ms": 2.3,
                "signature": {
                    "lib": "pymongo",
                    "method": "FIND_ONE",
                    "url": "myapp.users",
                    "query": {"filter_keys": ["_id"]},
                    "body_hash": "a1b2c3",
                },
                "args": {"filter": {"_id": user_id}},
                "result": {
                    "status": 0,
                    "body": {
                        "captured": True,
                        "data": {"_id": user_id, "name": name, "city": "Zürich 東京"},
                    },
                },
            }
        ],
    }


def _zstd_compress(raw: bytes) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdCompressor().compress(raw)


def _leftovers(directory: Path, keep: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p != keep)


# -- round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_round_trip(tmp_path: Path, compression: Compression) -> None:
    _needs(compression)
    document = make_cassette()
    target = tmp_path / f"GET__users_123{compression.suffix}"
    assert write_cassette(target, document, compression) == target
    assert read_cassette(target) == document


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_round_trip_accepts_str_paths(tmp_path: Path, compression: Compression) -> None:
    _needs(compression)
    target = str(tmp_path / "c")
    write_cassette(target, make_cassette(), compression)
    assert read_cassette(target) == make_cassette()


def test_plain_files_are_readable_json(tmp_path: Path) -> None:
    target = write_cassette(tmp_path / "c.json", make_cassette(), Compression.NONE)
    text = target.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert "\n  " in text  # indented, for diffs in review
    assert "Zürich 東京" in text  # not \u-escaped
    assert json.loads(text) == make_cassette()


def _recorded_layout() -> Dict[str, Any]:
    found = [{"_id": {"$oid": "650000000000000000000001"}, "n": 1.5, "tags": ["a", "b"]}, {"_id": 2, "s": "é"}]
    texts = [JsonText(json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()) for d in found]
    document = make_cassette()
    template = document["events"][0]

    def event(eid: int, method: str, result: Dict[str, Any]) -> Dict[str, Any]:
        signature = {**template["signature"], "method": method}
        return {**template, "eid": eid, "signature": signature, "result": result}

    document["events"] = FiniteList(
        [
            event(1, "FIND", {"status": 0, "body": {"captured": True, "data": texts}}),
            event(2, "FIND_ONE", {"status": 0, "body": {"captured": True, "data": texts[0]}}),
            event(3, "INSERT_ONE", {"status": 0, "body": {"captured": True, "data": {"inserted_id": 7, "acknowledged": True}}}),
            event(4, "COUNT_DOCUMENTS", {"status": 0, "body": {"captured": True, "data": 3}}),
        ]
    )
    document["events"][0]["args"] = {"filter": {"a": {"$in": [1, 2]}}}
    return document


def test_a_cassette_read_and_written_again_is_the_same_file(tmp_path: Path) -> None:
    # What recording writes (documents held as JSON text) and what a reader of the file writes back
    # (plain values): the same bytes, each stored document on its own line.
    recorded = write_cassette(tmp_path / "a.json", _recorded_layout(), Compression.NONE)
    loaded = read_cassette(recorded)
    before = json.dumps(loaded)
    again = write_cassette(tmp_path / "b.json", loaded, Compression.NONE)
    assert again.read_bytes() == recorded.read_bytes()
    assert json.dumps(loaded) == before  # the document given was not changed
    lines = recorded.read_text(encoding="utf-8").splitlines()
    assert '            {"_id":{"$oid":"650000000000000000000001"},"n":1.5,"tags":["a","b"]},' in lines
    assert '          "data": {"_id":{"$oid":"650000000000000000000001"},"n":1.5,"tags":["a","b"]}' in lines
    assert '          "data": {"inserted_id":7,"acknowledged":true}' in lines


def test_gzip_file_is_gzip(tmp_path: Path) -> None:
    target = write_cassette(tmp_path / "c.json.gz", make_cassette(), Compression.GZIP)
    data = target.read_bytes()
    assert data.startswith(GZIP_MAGIC)
    assert json.loads(gzip.decompress(data)) == make_cassette()


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    # mtime=0 in the gzip header: re-recording identical calls gives identical bytes (clean VCS diffs).
    a = write_cassette(tmp_path / "a.json.gz", make_cassette(), Compression.GZIP).read_bytes()
    b = write_cassette(tmp_path / "b.json.gz", make_cassette(), Compression.GZIP).read_bytes()
    assert a == b


def test_zstd_file_is_zstd(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    target = write_cassette(tmp_path / "c.json.zst", make_cassette(), Compression.ZSTD)
    data = target.read_bytes()
    assert data.startswith(ZSTD_MAGIC)
    assert json.loads(zstandard.ZstdDecompressor().decompress(data)) == make_cassette()


def test_write_creates_missing_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.json"
    write_cassette(target, make_cassette(), Compression.NONE)
    assert read_cassette(target) == make_cassette()


# -- compression detected from the bytes, not the name ------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "encode"),
    [
        pytest.param("gzip-in.json", lambda raw: gzip.compress(raw), id="gzip-as-json"),
        pytest.param("gzip-in.json.zst", lambda raw: gzip.compress(raw), id="gzip-as-zst"),
        pytest.param("gzip-no-suffix", lambda raw: gzip.compress(raw), id="gzip-no-suffix"),
        pytest.param("zstd-in.json", _zstd_compress, id="zstd-as-json"),
        pytest.param("zstd-in.json.gz", _zstd_compress, id="zstd-as-gz"),
        pytest.param("plain-in.json.gz", lambda raw: raw, id="plain-as-gz"),
        pytest.param("plain-in.json.zst", lambda raw: raw, id="plain-as-zst"),
    ],
)
def test_compression_detected_from_magic_bytes(
    tmp_path: Path, file_name: str, encode: Callable[[bytes], bytes]
) -> None:
    target = tmp_path / file_name
    target.write_bytes(encode(json.dumps(make_cassette()).encode("utf-8")))
    assert read_cassette(target) == make_cassette()


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    # A cassette saved by an editor that adds a byte order mark.
    target = tmp_path / "bom.json"
    target.write_bytes(b"\xef\xbb\xbf" + json.dumps(make_cassette()).encode("utf-8"))
    assert read_cassette(target) == make_cassette()


def test_reading_zstd_without_zstandard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "c.json.zst"
    target.write_bytes(_zstd_compress(json.dumps(make_cassette()).encode("utf-8")))
    # zstandard is imported with the storage module (no import at write time), so "not installed"
    # is simulated in a fresh interpreter where importing it fails.
    code = (
        "import sys; sys.modules['zstandard'] = None\n"
        "from timetracer.cassette import read_cassette\n"
        "from timetracer.errors import ConfigError\n"
        "try:\n    read_cassette(sys.argv[1])\nexcept ConfigError as exc:\n    print('ConfigError:', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ConfigError:" in done.stdout and "pip install timetracer[zstd]" in done.stdout


# -- atomic writes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_write_replaces_target_and_leaves_no_temp_files(tmp_path: Path, compression: Compression) -> None:
    _needs(compression)
    target = tmp_path / "c"
    write_cassette(target, make_cassette("1", "Alice"), compression)
    write_cassette(target, make_cassette("2", "Bob"), compression)
    assert read_cassette(target)["events"][0]["result"]["body"]["data"]["name"] == "Bob"
    assert _leftovers(tmp_path, target) == []


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_unserialisable_document_keeps_old_file(tmp_path: Path, compression: Compression) -> None:
    _needs(compression)
    target = tmp_path / "c.json"
    write_cassette(target, make_cassette(), compression)
    before = target.read_bytes()
    bad = make_cassette()
    bad["events"][0]["result"]["body"]["data"]["when"] = object()  # not JSON
    with pytest.raises(TypeError):
        write_cassette(target, bad, compression)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path, target) == []
    assert read_cassette(target) == make_cassette()


def test_unserialisable_document_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    with pytest.raises(TypeError):
        write_cassette(target, {"schema_version": "1.0", "events": [{1, 2}]}, Compression.NONE)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failure_while_writing_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "c.json"
    write_cassette(target, make_cassette("1"), Compression.NONE)
    before = target.read_bytes()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        write_cassette(target, make_cassette("2"), Compression.NONE)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert _leftovers(tmp_path, target) == []


def test_interrupt_while_writing_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "c.json"
    write_cassette(target, make_cassette("1"), Compression.NONE)
    before = target.read_bytes()

    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_cassette(target, make_cassette("2"), Compression.NONE)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert _leftovers(tmp_path, target) == []


def test_later_write_replaces_file(tmp_path: Path) -> None:
    target = tmp_path / "c.json"
    write_cassette(target, make_cassette("1", "Alice"), Compression.NONE)
    first_inode = target.stat().st_ino
    write_cassette(target, make_cassette("1", "Carol"), Compression.NONE)
    assert json.loads(target.read_text("utf-8"))["events"][0]["result"]["body"]["data"]["name"] == "Carol"
    assert target.stat().st_ino != first_inode  # a new file was renamed over the old one


def test_write_over_a_directory_fails_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "c.json"
    target.mkdir()
    with pytest.raises(OSError):
        write_cassette(target, make_cassette(), Compression.NONE)
    assert target.is_dir()
    assert _leftovers(tmp_path, target) == []


# Permissions (0600 by default, TIMETRACER_FILE_MODE, symlinks) are tested in test_cassette_privacy.py.


# -- load errors --------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    target = tmp_path / "GET__nope.json"
    with pytest.raises(CassetteNotFoundError) as info:
        read_cassette(target)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, CassetteError)
    assert isinstance(info.value, TimeTracerError)
    assert str(target) in str(info.value)


def test_missing_file_caught_as_builtin(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_cassette(tmp_path / "missing.json.gz")


def test_directory_is_not_a_cassette(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="directory") as info:
        read_cassette(tmp_path)
    assert str(tmp_path) in str(info.value)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def _without(key: str) -> bytes:
    document = make_cassette()
    del document[key]
    return _json(document)


def _with(**changes: Any) -> bytes:
    document = make_cassette()
    document.update(changes)
    return _json(document)


def _event_without(key: str) -> bytes:
    document = make_cassette()
    del document["events"][0][key]
    return _json(document)


def _truncated_gzip() -> bytes:
    return gzip.compress(_json(make_cassette()))[:-10]


def _truncated_zstd() -> bytes:
    data = _zstd_compress(_json(make_cassette()))
    return data[: len(data) // 2]


def _random_bytes() -> bytes:
    data = bytes(random.Random(7).getrandbits(8) for _ in range(512))
    assert not data.startswith((GZIP_MAGIC, ZSTD_MAGIC))
    return data


BAD_FILES = [
    pytest.param(lambda: b"", "empty", id="empty"),
    pytest.param(lambda: b"  \n\t", "empty", id="whitespace-only"),
    pytest.param(lambda: gzip.compress(b""), "empty", id="empty-gzip"),
    pytest.param(lambda: b"{not json", "not valid JSON", id="corrupt-json"),
    pytest.param(lambda: _json(make_cassette())[:-20], "not valid JSON", id="truncated-json"),
    pytest.param(_truncated_gzip, "cannot decompress", id="truncated-gzip"),
    pytest.param(lambda: GZIP_MAGIC + b"garbage", "cannot decompress", id="corrupt-gzip"),
    pytest.param(_truncated_zstd, "cannot decompress", id="truncated-zstd"),
    pytest.param(lambda: ZSTD_MAGIC + b"garbage", "cannot decompress", id="corrupt-zstd"),
    pytest.param(_random_bytes, "not valid JSON", id="random-bytes"),
    pytest.param(lambda: b"\xff\xfe{}", "not valid JSON", id="not-utf8"),
    pytest.param(lambda: b"[" * 100_000, "not valid JSON", id="nested-too-deep"),
    pytest.param(lambda: _json([make_cassette()]), "list, not an object", id="json-list"),
    pytest.param(lambda: b"42", "int, not an object", id="json-number"),
    pytest.param(lambda: b"null", "NoneType, not an object", id="json-null"),
    pytest.param(lambda: _without("schema_version"), "no 'schema_version'", id="no-schema-version"),
    pytest.param(lambda: _with(schema_version="9.9"), "'9.9' is not supported", id="unknown-version"),
    pytest.param(lambda: _with(schema_version=1.0), "1.0 is not supported", id="version-number"),
    pytest.param(lambda: _with(schema_version=["1.0"]), "is not supported", id="version-unhashable"),
    pytest.param(lambda: _without("events"), "'events' is missing or not a list", id="no-events"),
    pytest.param(lambda: _with(events={"1": {}}), "'events' is missing or not a list", id="events-dict"),
    pytest.param(lambda: _with(events=None), "'events' is missing or not a list", id="events-null"),
    pytest.param(lambda: _event_without("signature"), "event #1 has no 'signature'", id="no-signature"),
    pytest.param(lambda: _event_without("result"), "event #1 has no 'result'", id="no-result"),
    pytest.param(lambda: _with(events=["x"]), "event #1 is str", id="event-not-object"),
]


@pytest.mark.parametrize(("content", "reason"), BAD_FILES)
def test_bad_file(tmp_path: Path, content: Callable[[], bytes], reason: str) -> None:
    target = tmp_path / "GET__users_123.json"
    target.write_bytes(content())
    with pytest.raises(CassetteError) as info:
        read_cassette(target)
    message = str(info.value)
    assert str(target) in message
    assert reason in message
    assert not isinstance(info.value, CassetteNotFoundError)


def test_cassette_error_is_a_value_error(tmp_path: Path) -> None:
    target = tmp_path / "c.json"
    target.write_bytes(b"{")
    with pytest.raises(ValueError):
        read_cassette(target)


def test_second_event_is_named(tmp_path: Path) -> None:
    document = make_cassette()
    document["events"].append({"eid": 2, "signature": "FIND_ONE", "result": {}})
    target = tmp_path / "c.json"
    target.write_bytes(_json(document))
    with pytest.raises(CassetteError, match="event #2"):
        read_cassette(target)


# -- the cache ----------------------------------------------------------------------------------------


def test_reading_twice_returns_the_same_object(tmp_path: Path) -> None:
    target = write_cassette(tmp_path / "c.json", make_cassette(), Compression.NONE)
    first = read_cassette(target)
    assert read_cassette(target) is first
    assert read_cassette(str(target)) is first  # same file, other spelling


def test_same_file_through_another_path_shares_the_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write_cassette(tmp_path / "sub" / "c.json", make_cassette(), Compression.NONE)
    first = read_cassette(target)
    monkeypatch.chdir(tmp_path)
    assert read_cassette(Path("sub/../sub/c.json")) is first


def test_rewrite_gives_a_fresh_object(tmp_path: Path) -> None:
    target = write_cassette(tmp_path / "c.json", make_cassette("1", "Alice"), Compression.NONE)
    first = read_cassette(target)
    write_cassette(target, make_cassette("1", "Bobby-Joe"), Compression.NONE)
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    second = read_cassette(target)
    assert second is not first
    assert second["events"][0]["result"]["body"]["data"]["name"] == "Bobby-Joe"
    assert first["events"][0]["result"]["body"]["data"]["name"] == "Alice"  # old object untouched
    assert read_cassette(target) is second


def test_same_size_rewrite_with_same_mtime_is_seen(tmp_path: Path) -> None:
    # Re-recording often gives a file of the very same size ("Alice" -> "Carol"), and two writes
    # in one filesystem clock tick share an mtime: the cache must still notice the new file.
    target = write_cassette(tmp_path / "c.json", make_cassette("1", "Alice"), Compression.NONE)
    old = target.stat()
    first = read_cassette(target)
    write_cassette(target, make_cassette("1", "Carol"), Compression.NONE)
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))  # force the same mtime
    assert target.stat().st_size == old.st_size
    second = read_cassette(target)
    assert second is not first
    assert second["events"][0]["result"]["body"]["data"]["name"] == "Carol"


def test_in_place_edit_with_bumped_mtime_is_seen(tmp_path: Path) -> None:
    target = write_cassette(tmp_path / "c.json", make_cassette("1", "Alice"), Compression.NONE)
    first = read_cassette(target)
    text = target.read_text("utf-8").replace("Alice", "Dave!")
    target.write_text(text, encoding="utf-8")  # same inode, same size
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    second = read_cassette(target)
    assert second is not first
    assert second["events"][0]["result"]["body"]["data"]["name"] == "Dave!"


def test_broken_rewrite_is_reported_not_served_from_cache(tmp_path: Path) -> None:
    target = write_cassette(tmp_path / "c.json", make_cassette(), Compression.NONE)
    read_cassette(target)
    target.write_bytes(b"{broken")
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    with pytest.raises(CassetteError, match="not valid JSON"):
        read_cassette(target)


def test_deleted_file_is_not_served_from_cache(tmp_path: Path) -> None:
    target = write_cassette(tmp_path / "c.json", make_cassette(), Compression.NONE)
    read_cassette(target)
    target.unlink()
    with pytest.raises(CassetteNotFoundError):
        read_cassette(target)


def test_compressed_files_are_cached_too(tmp_path: Path) -> None:
    target = write_cassette(tmp_path / "c.json.gz", make_cassette(), Compression.GZIP)
    assert read_cassette(target) is read_cassette(target)
