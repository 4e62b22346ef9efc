"""Bounded memory: compression bombs are refused against TIMETRACER_MAX_CASSETTE_BYTES.

Each bomb inflates to 2 GiB of JSON whitespace (the issue's 9 MB gzip file took 4 GB of memory to
fail, a 62 KB zstd one 3.9 GB). The load runs in a fresh interpreter that reports its peak resident
memory (``VmHWM``; ``getrusage``'s ``ru_maxrss`` would include the forking pytest process): with
the default 256 MiB cap it stays under 256 MiB + 48 MiB (measured: 281 MiB), with a 16 MiB cap under 16 MiB + 48 MiB (measured: 41 MiB; the interpreter and its imports are 20 MiB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Dict

import pytest

from timetracer.config import DEFAULT_MAX_CASSETTE_BYTES, ENV_MAX_CASSETTE_BYTES

MIB = 1024 * 1024
BOMB_SIZE = 2048 * MIB
_BLOCK = b" " * (64 * MIB)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")

LOAD = """
import json, sys
from timetracer.cassette import read_cassette
from timetracer.errors import CassetteError
try:
    read_cassette(sys.argv[1])
    outcome = "loaded"
except CassetteError as exc:
    outcome = "CassetteError: " + str(exc)
except BaseException as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
# VmHWM, not getrusage's ru_maxrss: the latter starts at the forking parent's size (pytest's).
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps({"outcome": outcome, "peak": peak}))
"""


def _gzip_bomb(path: Path) -> Path:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        for _ in range(BOMB_SIZE // len(_BLOCK)):
            fh.write(packer.compress(_BLOCK))
        fh.write(packer.flush())
    return path


def _zstd_bomb(path: Path) -> Path:
    zstandard = pytest.importorskip("zstandard")
    packer = zstandard.ZstdCompressor(level=3).compressobj(size=BOMB_SIZE)
    with open(path, "wb") as fh:
        for _ in range(BOMB_SIZE // len(_BLOCK)):
            fh.write(packer.compress(_BLOCK))
        fh.write(packer.flush())
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    return {"gzip": _gzip_bomb(folder / "GET__bomb.json.gz"), "zstd": _zstd_bomb(folder / "GET__bomb.json.zst")}


def _load(path: Path, cap: int = 0) -> Dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != ENV_MAX_CASSETTE_BYTES}
    if cap:
        env[ENV_MAX_CASSETTE_BYTES] = str(cap)
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result: Dict[str, object] = json.loads(done.stdout)
    print(f"{path.name}: {result['outcome'][:60]}... peak {int(result['peak']) / MIB:.0f} MiB")  # type: ignore[index]
    return result


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
@pytest.mark.parametrize(
    ("cap", "label"),
    [
        pytest.param(0, "default 256 MiB", id="default-cap-peak-under-304MiB"),
        pytest.param(16 * MIB, "16 MiB", id="16MiB-cap-peak-under-64MiB"),
    ],
)
def test_a_2GiB_bomb_is_refused_within_the_cap(bombs: Dict[str, Path], kind: str, cap: int, label: str) -> None:
    bomb = bombs[kind]
    assert bomb.stat().st_size < 10 * MIB  # small on disk, 2 GiB inflated
    limit = cap or DEFAULT_MAX_CASSETTE_BYTES
    result = _load(bomb, cap)
    outcome = str(result["outcome"])
    assert outcome.startswith("CassetteError: "), outcome
    assert str(bomb) in outcome and str(limit) in outcome and ENV_MAX_CASSETTE_BYTES in outcome
    assert int(result["peak"]) < limit + 48 * MIB  # type: ignore[call-overload]


def test_a_plain_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "GET__big.json"
    with open(big, "wb") as fh:
        fh.truncate(512 * MIB)  # sparse: 512 MiB long, no disk used
    result = _load(big, 16 * MIB)
    assert str(result["outcome"]).startswith("CassetteError: ")
    assert int(result["peak"]) < 64 * MIB  # type: ignore[call-overload]


def test_a_cassette_just_under_the_cap_loads(tmp_path: Path) -> None:
    from timetracer.cassette import read_cassette, write_cassette
    from timetracer.config import Compression

    document = {
        "schema_version": "1.0",
        "session": {"id": "s", "recorded_at": "2026-01-01T00:00:00Z", "service": None, "env": None},
        "request": {"path": "/" + "x" * (2 * MIB)},
        "events": [],
    }
    for compression in (Compression.GZIP, Compression.NONE):
        path = write_cassette(tmp_path / f"c{compression.suffix}", document, compression)
        size = len(json.dumps(document, indent=2, ensure_ascii=False)) + 1
        assert read_cassette(path, max_bytes=3 * MIB)["request"] == document["request"]
        with pytest.raises(Exception, match="larger than"):
            read_cassette(path, max_bytes=size // 2)
