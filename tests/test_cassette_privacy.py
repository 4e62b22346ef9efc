"""File privacy: cassettes 0600 and new folders 0700 unless TIMETRACER_FILE_MODE says otherwise;
a symlink planted at a cassette's path (or at its temp file's) is never followed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
from werkzeug.test import Client

from timetracer.cassette import read_cassette, storage, write_cassette
from timetracer.config import DEFAULT_FILE_MODE, ENV_FILE_MODE, Compression, TraceConfig, folder_mode
from timetracer.errors import ConfigError
from timetracer.wsgi import TimeTracerMiddleware

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and symlinks")


def _document(tag: str = "1") -> Dict[str, Any]:
    return {
        "schema_version": "1.0",
        "session": {"id": tag, "recorded_at": "2026-01-01T00:00:00Z", "service": None, "env": None},
        "request": {"method": "GET", "path": "/users/1"},
        "events": [],
    }


def _mode(path: Path) -> int:
    return path.lstat().st_mode & 0o777


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    previous = os.umask(0o022)
    os.umask(previous)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(previous)


def hello_app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077], ids=["umask-000", "umask-022", "umask-077"])
def test_new_cassette_is_0600_in_new_0700_folders_whatever_the_umask(
    tmp_path: Path, umask: Callable[[int], None], mask: int
) -> None:
    umask(mask)
    target = tmp_path / "a" / "b" / "GET__x.json"
    write_cassette(target, _document(), Compression.NONE)
    assert _mode(target) == 0o600
    assert _mode(tmp_path / "a") == 0o700 and _mode(tmp_path / "a" / "b") == 0o700


def test_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o755)
    write_cassette(folder / "GET__x.json", _document(), Compression.GZIP)
    assert _mode(folder) == 0o755 and _mode(folder / "GET__x.json") == 0o600


def test_rewrite_of_a_world_readable_cassette_makes_it_private(tmp_path: Path) -> None:
    target = write_cassette(tmp_path / "GET__x.json", _document(), Compression.NONE)
    os.chmod(target, 0o644)
    write_cassette(target, _document("2"), Compression.NONE)
    assert _mode(target) == 0o600 and read_cassette(target)["session"]["id"] == "2"


@pytest.mark.parametrize(
    ("value", "file_mode", "dir_mode"),
    [("640", 0o640, 0o750), ("0644", 0o644, 0o755), ("0o600", 0o600, 0o700), ("660", 0o660, 0o770)],
)
def test_file_mode_setting_through_a_recording_middleware(
    tmp_path: Path, umask: Callable[[int], None], value: str, file_mode: int, dir_mode: int
) -> None:
    umask(0o077)  # the setting is applied exactly, not narrowed by the umask
    config = TraceConfig.from_env({ENV_FILE_MODE: value}, mode="record", cassette_dir=tmp_path / "cassettes")
    assert config.file_mode == file_mode and folder_mode(file_mode) == dir_mode
    response = Client(TimeTracerMiddleware(hello_app, config)).get("/users/1")
    assert response.get_data() == b"hello"
    assert _mode(tmp_path / "cassettes") == dir_mode
    assert _mode(tmp_path / "cassettes" / "GET__users_1.json") == file_mode


def test_a_cassette_folder_removed_while_recording_is_made_again_with_its_mode(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    # The folder is looked for only when a file cannot be created in it: removing it between
    # requests (a user clearing old recordings) must not lose the next recording.
    umask(0o022)
    folder = tmp_path / "cassettes" / "deep"
    config = TraceConfig.from_env({ENV_FILE_MODE: "640"}, mode="record", cassette_dir=folder)
    client = Client(TimeTracerMiddleware(hello_app, config))
    assert client.get("/users/1").get_data() == b"hello"
    assert (folder / "GET__users_1.json").exists()
    shutil.rmtree(tmp_path / "cassettes")
    assert client.get("/users/2").get_data() == b"hello"
    assert read_cassette(folder / "GET__users_2.json")["request"]["path"] == "/users/2"
    assert _mode(tmp_path / "cassettes") == 0o750 and _mode(folder) == 0o750
    assert _mode(folder / "GET__users_2.json") == 0o640
    target = tmp_path / "gone" / "GET__x.json"  # write_cassette alone, into a folder not there
    write_cassette(target, _document(), Compression.ZSTD)
    assert _mode(target.parent) == 0o700 and read_cassette(target)["session"]["id"] == "1"


def test_default_file_mode_is_0600() -> None:
    assert TraceConfig().file_mode == DEFAULT_FILE_MODE == 0o600


@pytest.mark.parametrize("value", ["abc", "999", "400", "200", "1777", "4600", "-600", "0x1ff", "6 00"])
def test_bad_file_mode_is_a_config_error_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match=ENV_FILE_MODE) as info:
        TraceConfig.from_env({ENV_FILE_MODE: value})
    assert repr(value) in str(info.value) and "600" in str(info.value)


def test_symlink_planted_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("keep me")
    os.chmod(victim, 0o666)
    folder = tmp_path / "cassettes"
    folder.mkdir()
    target = folder / "GET__users_1.json"
    target.symlink_to(victim)
    # A fixed cassette (TIMETRACER_CASSETTE) is rewritten by each recorded request: the link is replaced.
    Client(TimeTracerMiddleware(hello_app, TraceConfig(mode="record", cassette=target))).get("/users/1")
    assert not target.is_symlink()
    assert _mode(target) == 0o600
    assert json.loads(target.read_text())["response"]["body"]["data"] == "hello"
    assert victim.read_text() == "keep me" and _mode(victim) == 0o666


def test_symlink_planted_at_a_request_name_is_left_alone(tmp_path: Path) -> None:
    # Named recordings never overwrite: the planted name counts as taken, the request gets the next one.
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("keep me")
    os.chmod(victim, 0o666)
    folder = tmp_path / "cassettes"
    folder.mkdir()
    planted = folder / "GET__users_1.json"
    planted.symlink_to(victim)
    Client(TimeTracerMiddleware(hello_app, TraceConfig(mode="record", cassette_dir=folder))).get("/users/1")
    recorded = folder / "GET__users_1~2.json"
    assert _mode(recorded) == 0o600 and not recorded.is_symlink()
    assert json.loads(recorded.read_text())["response"]["body"]["data"] == "hello"
    assert planted.is_symlink() and victim.read_text() == "keep me" and _mode(victim) == 0o666


def test_symlink_planted_at_the_temp_name_is_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Temp names are random (16 hex digits); should one be guessed, O_EXCL | O_NOFOLLOW refuses it.
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "GET__x.json"
    planted = tmp_path / ".GET__x.json.0123456789abcdef.tmp"
    planted.symlink_to(victim)
    monkeypatch.setattr(storage, "temp_name", lambda _target: planted.name)
    with pytest.raises(FileExistsError):
        write_cassette(target, _document(), Compression.NONE)
    assert victim.read_text() == "keep me" and planted.is_symlink() and not target.exists()


def test_temp_names_are_fresh_and_recognisable(tmp_path: Path) -> None:
    target = tmp_path / "GET__x.json.gz"
    names = {storage.temp_name(target) for _ in range(100)}
    assert len(names) == 100
    assert all(storage.is_temp_file(name) and name.startswith(".GET__x.json.gz.") for name in names)
    assert not storage.is_temp_file("GET__x.json") and not storage.is_temp_file("x.tmp")
