"""Cassette file names: the spec's ``GET__users_123.json`` and safety against hostile paths."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from timetracer.cassette import cassette_name, cassette_path, read_cassette, write_cassette
from timetracer.cassette.naming import MAX_STEM, numbered, parse_name, request_stem
from timetracer.config import Compression, TraceConfig

SAFE_STEM = re.compile(r"^[A-Za-z0-9._-]+$")

HOSTILE_PATHS = [
    pytest.param("/../../etc/passwd", id="dotdot"),
    pytest.param("/..", id="dotdot-only"),
    pytest.param("..", id="dotdot-no-slash"),
    pytest.param("/users/../../../secret", id="dotdot-inside"),
    pytest.param("/....//....//x", id="many-dots"),
    pytest.param("/.", id="dot"),
    pytest.param("/%2e%2e/%2e%2e/etc/passwd", id="encoded-dotdot"),
    pytest.param("/users%2F..%2F..%2Fetc", id="encoded-slash"),
    pytest.param("/users%2f123", id="encoded-slash-lower"),
    pytest.param("/users/123/", id="trailing-slash"),
    pytest.param("//users//123", id="double-slashes"),
    pytest.param("\\..\\..\\windows\\system32", id="backslashes"),
    pytest.param("/a/b\\..\\..\\c", id="mixed-slashes"),
    pytest.param("/users/\x00/etc", id="nul"),
    pytest.param("/\x00", id="nul-only"),
    pytest.param("/users\n123\r\t", id="control-chars"),
    pytest.param("/日本語/ユーザー", id="cjk"),
    pytest.param("/café/naïve", id="accents"),
    pytest.param("/\u202e/gpj.exe", id="rtl-override"),
    pytest.param("/\ud800", id="lone-surrogate"),
    pytest.param("/" + "a" * 5000, id="very-long"),
    pytest.param("/" + "../" * 2000, id="very-long-dotdot"),
    pytest.param("/" + "日" * 2000, id="very-long-unicode"),
    pytest.param("C:\\Windows\\win.ini", id="drive-letter"),
    pytest.param("/con/nul/aux", id="windows-device-names"),
    pytest.param('/a:b*c?d"e<f>g|h', id="windows-reserved-chars"),
    pytest.param("/~user/.ssh/id_rsa", id="tilde-and-dotfile"),
    pytest.param("/users?id=1&x=../../", id="query-in-path"),
    pytest.param("", id="empty"),
    pytest.param("/", id="root"),
    pytest.param(" ", id="space"),
]

HOSTILE_METHODS = [
    pytest.param("GET", id="GET"),
    pytest.param("get", id="lower"),
    pytest.param("../../GET", id="method-dotdot"),
    pytest.param("GET/../..", id="method-slashes"),
    pytest.param("", id="method-empty"),
    pytest.param("\x00", id="method-nul"),
    pytest.param("M-SEARCH", id="dash"),
]


# -- the spec's names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        pytest.param("GET", "/users/123", "GET__users_123", id="spec-example"),
        pytest.param("GET", "/", "GET__root", id="root"),
        pytest.param("GET", "", "GET__root", id="empty-path"),
        pytest.param("POST", "/products", "POST__products", id="post"),
        pytest.param("DELETE", "/a/b/c", "DELETE__a_b_c", id="nested"),
        pytest.param("GET", "/users/123/", "GET__users_123", id="trailing-slash"),
        pytest.param("GET", "/files/report.v2.csv", "GET__files_report.v2.csv", id="dots-in-name"),
        pytest.param("GET", "/a-b/c_d", "GET__a-b_c_d", id="dash-underscore"),
        pytest.param("get", "/users/123", "GET__users_123", id="method-lower"),
        pytest.param("Get", "/users/123", "GET__users_123", id="method-mixed"),
        pytest.param("", "/x", "UNKNOWN__x", id="method-empty"),
    ],
)
def test_plain_names(method: str, path: str, name: str) -> None:
    assert cassette_name(method, path) == name


@pytest.mark.parametrize(
    ("compression", "file_name"),
    [
        pytest.param(Compression.NONE, "GET__users_123.json", id="none"),
        pytest.param(Compression.GZIP, "GET__users_123.json.gz", id="gzip"),
        pytest.param(Compression.ZSTD, "GET__users_123.json.zst", id="zstd"),
    ],
)
def test_cassette_path_suffix(tmp_path: Path, compression: Compression, file_name: str) -> None:
    if compression is Compression.ZSTD:
        pytest.importorskip("zstandard")
    config = TraceConfig(cassette_dir=tmp_path, compression=compression)
    assert cassette_path(config, "GET", "/users/123") == tmp_path / file_name


def test_cassette_path_default_dir() -> None:
    assert cassette_path(TraceConfig(), "GET", "/users/123") == Path("cassettes/GET__users_123.json")


def test_root_name(tmp_path: Path) -> None:
    assert cassette_path(TraceConfig(cassette_dir=tmp_path), "GET", "/").name == "GET__root.json"


def test_method_case_does_not_matter() -> None:
    for path in ["/users/1", "/" + "x" * 500, "/日本"]:
        assert cassette_name("get", path) == cassette_name("GET", path) == cassette_name("gEt", path)


def test_different_methods_different_names() -> None:
    assert cassette_name("GET", "/users") != cassette_name("POST", "/users")


# -- escaping ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", HOSTILE_PATHS)
@pytest.mark.parametrize("method", HOSTILE_METHODS)
def test_hostile_names_are_single_safe_components(method: str, path: str) -> None:
    name = cassette_name(method, path)
    assert SAFE_STEM.match(name), name
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert ".." not in name
    assert not name.startswith(".")  # never a hidden file, never "." or ".."
    assert name not in {".", ".."}
    assert 0 < len(name) <= MAX_STEM


def test_dotdot_is_neutralised() -> None:
    name = cassette_name("GET", "/../../etc/passwd")
    assert ".." not in name
    assert name.startswith("GET__")


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/users%2F123", id="encoded-slash-upper"),
        pytest.param("/users%2f123", id="encoded-slash-lower"),
        pytest.param("/users%5C123", id="encoded-backslash"),
    ],
)
def test_percent_encoded_separators_are_not_kept(path: str) -> None:
    name = cassette_name("GET", path)
    assert "%" not in name
    assert SAFE_STEM.match(name)


def test_encoded_and_decoded_slash_do_not_share_a_file() -> None:
    assert cassette_name("GET", "/users%2F123") != cassette_name("GET", "/users/123")


def test_backslash_and_nul_are_replaced() -> None:
    assert "\\" not in cassette_name("GET", "\\a\\b")
    assert "\x00" not in cassette_name("GET", "/a\x00b")


def test_unicode_path_is_not_the_root_cassette() -> None:
    # A path made only of characters outside [A-Za-z0-9._-] must not land in GET__root.json.
    assert cassette_name("GET", "/日本") != cassette_name("GET", "/")
    assert cassette_name("GET", "/日本") != cassette_name("GET", "/中国")
    assert cassette_name("GET", "/café") != cassette_name("GET", "/cafè")
    assert cassette_name("GET", "/..") != cassette_name("GET", "/")


def test_lossy_names_are_stable() -> None:
    assert cassette_name("GET", "/日本") == cassette_name("GET", "/日本")
    assert cassette_name("GET", "/a%2Fb") == cassette_name("GET", "/a%2Fb")


# -- long paths -------------------------------------------------------------------------------------


def test_long_path_is_capped() -> None:
    name = cassette_name("GET", "/" + "segment/" * 200)
    assert len(name) == MAX_STEM
    assert name.startswith("GET__segment_segment")
    assert re.search(r"_[0-9a-f]{12}$", name)


def test_long_paths_differing_only_at_the_end_get_different_names() -> None:
    base = "/reports/" + "x" * 400
    a = cassette_name("GET", base + "/2024")
    b = cassette_name("GET", base + "/2025")
    assert a != b
    assert len(a) == len(b) == MAX_STEM
    assert a[:-13] == b[:-13]  # same readable prefix, different hash


def test_path_just_under_the_cap_is_not_hashed() -> None:
    path = "/" + "a" * (MAX_STEM - len("GET__"))
    name = cassette_name("GET", path)
    assert name == "GET__" + "a" * (MAX_STEM - len("GET__"))
    assert len(cassette_name("GET", path + "a")) == MAX_STEM


def test_long_file_name_fits_filesystems(tmp_path: Path) -> None:
    config = TraceConfig(cassette_dir=tmp_path, compression=Compression.GZIP)
    target = cassette_path(config, "PATCH", "/" + "é" * 10_000)
    assert len(target.name.encode("utf-8")) < 255
    write_cassette(target, {"schema_version": "1.0", "events": []}, config.compression)
    assert target.is_file()


# -- the property: always inside the cassette dir ---------------------------------------------------


def _fuzz_paths(count: int, seed: int = 20240122) -> list[str]:
    rng = random.Random(seed)
    alphabet = [
        *["/", "\\", ".", "..", "%2F", "%2f", "%2e", "%5C", "\x00", "~", ":", "*", "?", "|", "<", ">", '"'],
        *["a", "Z", "0", "_", "-", " ", "\n", "\t", "é", "日", "\u202e", "\ufeff", "\U0001f600", "\ud800"],
    ]
    paths = []
    for _ in range(count):
        length = rng.choice([0, 1, 2, 5, 20, 80, 300])
        paths.append("".join(rng.choice(alphabet) for _ in range(length)))
    return paths


FUZZ_PATHS = _fuzz_paths(300)


def _assert_inside(config: TraceConfig, method: str, path: str) -> Path:
    target = cassette_path(config, method, path)
    directory = Path(config.cassette_dir)
    assert target.resolve().parent == directory.resolve(), (method, path, target)
    assert target.parent == directory
    return target


@pytest.mark.parametrize("path", HOSTILE_PATHS)
@pytest.mark.parametrize("method", HOSTILE_METHODS)
def test_hostile_paths_stay_inside_cassette_dir(tmp_path: Path, method: str, path: str) -> None:
    config = TraceConfig(cassette_dir=tmp_path / "cassettes")
    _assert_inside(config, method, path)


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_writing_hostile_paths_creates_the_file_inside_the_dir(tmp_path: Path, path: str) -> None:
    directory = tmp_path / "cassettes"
    config = TraceConfig(cassette_dir=directory)
    target = _assert_inside(config, "GET", path)
    minimal = {
        "schema_version": "1.0",
        "session": {"id": "s", "recorded_at": "2026-01-01T00:00:00Z", "service": None, "env": None},
        "request": {"method": "GET", "path": path},
        "events": [],
    }
    written = write_cassette(target, minimal, config.compression)
    assert written == target
    assert [p.name for p in directory.iterdir()] == [target.name]
    assert read_cassette(target)["events"] == []
    # Nothing was created next to or above the cassette dir.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cassettes"]


def test_fuzzed_paths_stay_inside_cassette_dir(tmp_path: Path) -> None:
    directory = tmp_path / "cassettes"
    config = TraceConfig(cassette_dir=directory, compression=Compression.GZIP)
    names = set()
    for path in FUZZ_PATHS:
        for method in ["GET", "post", "../x"]:
            target = _assert_inside(config, method, path)
            assert SAFE_STEM.match(target.name)
            assert len(target.name) <= MAX_STEM + len(".json.gz")
            names.add(target.name)
    # Write a sample of them and check every file landed in the directory itself.
    for path in FUZZ_PATHS[:60]:
        target = cassette_path(config, "GET", path)
        write_cassette(target, {"schema_version": "1.0", "events": []}, config.compression)
    assert all(p.parent == directory for p in tmp_path.rglob("*") if p.is_file())
    assert {p.name for p in tmp_path.iterdir()} == {"cassettes"}
    assert len(names) > 1


def test_relative_cassette_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = TraceConfig(cassette_dir="cassettes")
    for path in ["/../../x", "/%2e%2e/y", "\\..\\z"]:
        target = _assert_inside(config, "GET", path)
        write_cassette(target, {"schema_version": "1.0", "events": []}, config.compression)
    assert len(list((tmp_path / "cassettes").iterdir())) == 3
    assert {p.name for p in tmp_path.iterdir()} == {"cassettes"}


# -- one file per recorded request ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name, parsed",
    [
        pytest.param("GET__items.json", ("GET__items", None, 1), id="plain"),
        pytest.param("GET__items~2.json.gz", ("GET__items", None, 2), id="repeat-gzip"),
        pytest.param("GET__items~q0123456789.json", ("GET__items", "q0123456789", 1), id="digest"),
        pytest.param("GET__items~q0123456789~12.json.zst", ("GET__items", "q0123456789", 12), id="both"),
        pytest.param(".GET__items~3.json.claim", ("GET__items", None, 3), id="claim"),
        pytest.param("GET__file.json.json", ("GET__file.json", None, 1), id="path-ending-in-json"),
        pytest.param("GET__items~0.json", None, id="zero"),
        pytest.param("GET__items~02.json", None, id="leading-zero"),
        pytest.param("GET__items~x.json", None, id="not-a-number"),
        pytest.param(".GET__items.json.a1b2.tmp", None, id="temp-file"),
        pytest.param("GET__items.json.claim", None, id="claim-not-hidden"),
        pytest.param("notes.txt", None, id="other-file"),
    ],
)
def test_recording_names_parse_back(name: str, parsed: object) -> None:
    assert parse_name(name) == parsed


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/items"), ("GET", "/items.2"), ("GET", "/日本"), ("POST", "/" + "x" * 300), ("GET", "/")],
)
def test_every_numbered_name_parses_back_to_its_route(method: str, path: str) -> None:
    for fingerprint in (None, "q0123456789"):
        for number in (1, 2, 37):
            name = numbered(request_stem(method, path, fingerprint), number) + ".json"
            assert SAFE_STEM.match(name.replace("~", "")), name
            assert parse_name(name) == (cassette_name(method, path), fingerprint, number)


def test_the_second_get_items_and_get_items_dot_2_do_not_share_a_name() -> None:
    assert numbered(request_stem("GET", "/items", None), 2) != request_stem("GET", "/items.2", None)
