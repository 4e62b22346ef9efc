"""No debris: a writer SIGKILLed mid-write leaves only a recognisable temp file, which readers and
listers ignore and a recording middleware sweeps once it is stale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from timetracer.cassette import cassette_files, read_cassette
from timetracer.cassette.storage import STALE_TEMP_SECONDS, TEMP_NAME, sweep_temp_files
from timetracer.config import TraceConfig
from timetracer.wsgi import TimeTracerMiddleware

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses SIGKILL")

# Writes a small valid cassette, then rewrites it with a ~48 MB one forever: each rewrite's temp
# file lives for the whole write + fsync, a window far wider than the poll below.
WRITER = """
import sys
from timetracer.cassette import write_cassette
from timetracer.config import Compression

target = sys.argv[1]
small = {"schema_version": "1.0", "session": {"id": "s", "recorded_at": "2026-01-01T00:00:00Z",
         "service": None, "env": None}, "request": {}, "events": []}
write_cassette(target, small, Compression.NONE)
big = dict(small, request={"path": "/" + "x" * (48 * 1024 * 1024)})
print("ready", flush=True)
while True:
    write_cassette(target, big, Compression.NONE)
"""


def _temp_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


def _kill_mid_write(folder: Path, target: Path) -> Optional[Path]:
    """Start the writer, SIGKILL it while a temp file exists; return the temp file left, if any."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with os.scandir(folder) as entries:
                if any(entry.name.endswith(".tmp") and entry.stat().st_size > 0 for entry in entries):
                    writer.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.0005)
    finally:
        writer.kill()
        writer.wait(timeout=30)
    left = _temp_files(folder)
    return left[0] if left else None


@pytest.fixture
def killed_write(tmp_path: Path) -> Dict[str, Any]:
    """A cassette folder where a real writer was SIGKILLed in the middle of a write."""
    folder = tmp_path / "cassettes"
    folder.mkdir()
    target = folder / "GET__big.json"
    for _ in range(5):  # the kill lands mid-write essentially always; retry the rare miss
        temp = _kill_mid_write(folder, target)
        if temp is not None:
            return {"folder": folder, "target": target, "temp": temp}
    pytest.fail("a writer SIGKILLed 5 times never left its temp file: the kill never landed mid-write")


def test_a_killed_writer_leaves_only_a_recognisable_temp_file(killed_write: Dict[str, Any]) -> None:
    folder, target, temp = killed_write["folder"], killed_write["target"], killed_write["temp"]
    assert TEMP_NAME.match(temp.name), temp.name
    assert temp.name.startswith(f".{target.name}.") and temp.name.endswith(".tmp")
    assert sorted(p.name for p in folder.iterdir()) == sorted([target.name, temp.name])
    # The cassette itself is the last complete one, never part of the interrupted write.
    assert read_cassette(target)["request"] == {}
    assert temp.stat().st_mode & 0o777 == 0o600


def test_readers_and_listers_ignore_the_temp_file(killed_write: Dict[str, Any]) -> None:
    folder, target = killed_write["folder"], killed_write["target"]
    assert cassette_files(folder) == [target]


def test_a_recording_middleware_sweeps_stale_temp_files_only(killed_write: Dict[str, Any]) -> None:
    folder, temp = killed_write["folder"], killed_write["temp"]
    config = TraceConfig(mode="record", cassette_dir=folder)
    # Just written: it could be a live write of another process, so it stays.
    TimeTracerMiddleware(lambda environ, start_response: [], config)
    assert temp.exists()
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(temp, (old, old))
    TimeTracerMiddleware(lambda environ, start_response: [], config)
    assert not temp.exists()
    assert cassette_files(folder) == [killed_write["target"]]


def test_sweep_leaves_other_files_alone(tmp_path: Path) -> None:
    old = time.time() - STALE_TEMP_SECONDS - 60
    names = ["notes.tmp", ".GET__x.json.tmp", ".GET__x.json.0123456789abcdeg.tmp", "GET__x.json", ".hidden"]
    stale = tmp_path / "sub" / ".GET__y.json.0123456789abcdef.tmp"
    stale.parent.mkdir()
    for path in [tmp_path / n for n in names] + [stale]:
        path.write_text("{}")
        os.utime(path, (old, old))
    assert sweep_temp_files(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names, "sub"])


def test_replay_middleware_does_not_sweep(tmp_path: Path) -> None:
    stale = tmp_path / ".GET__y.json.0123456789abcdef.tmp"
    stale.write_text(json.dumps({}))
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    TimeTracerMiddleware(lambda environ, start_response: [], TraceConfig(mode="replay", cassette_dir=tmp_path))
    assert stale.exists()
