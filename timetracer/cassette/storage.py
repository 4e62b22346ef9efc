"""Reading and writing cassette files: atomic writes, compression detected on read, a parse cache."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, Tuple, Union

from timetracer.cassette.format import validate
from timetracer.config import Compression
from timetracer.errors import CassetteError, CassetteNotFoundError, ConfigError

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# Parsed cassettes by resolved path; an entry is reused while the file's mtime and size hold.
_cache: Dict[str, Tuple[int, int, Dict[str, Any]]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 256


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise ConfigError(
            "zstd cassettes need the zstandard package; install it with: pip install timetracer[zstd]"
        ) from None
    return zstandard


def encode(document: Dict[str, Any], compression: Compression) -> bytes:
    """Serialise a cassette document: indented JSON when plain, compact when compressed."""
    if compression is Compression.NONE:
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if compression is Compression.GZIP:
        return gzip.compress(raw, compresslevel=6, mtime=0)
    return _zstd().ZstdCompressor(level=10).compress(raw)


def decode(data: bytes, path: Union[str, Path]) -> Any:
    """Parse cassette bytes, whatever their compression (found from the magic bytes)."""
    try:
        if data.startswith(_GZIP_MAGIC):
            data = gzip.decompress(data)
        elif data.startswith(_ZSTD_MAGIC):
            data = _zstd().ZstdDecompressor().decompress(data, max_output_size=1 << 31)
    except ConfigError:
        raise
    except Exception as exc:  # truncated or corrupt compressed stream
        raise CassetteError(f"cassette {path}: cannot decompress ({exc})") from exc
    if not data.strip():
        raise CassetteError(f"cassette {path}: the file is empty")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CassetteError(f"cassette {path}: not valid JSON ({exc})") from exc


def write_cassette(path: Union[str, Path], document: Dict[str, Any], compression: Compression) -> Path:
    """Write a cassette atomically (temp file in the same directory, then rename) and return its path.

    A reader sees the old file or the new one, never part of one; a later write replaces the file.
    """
    target = Path(path)
    data = encode(document, compression)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def read_cassette(path: Union[str, Path]) -> Dict[str, Any]:
    """Load and check a cassette; parsed files are cached by path, mtime and size.

    The returned document is shared between callers: treat it as read-only.
    Raises :class:`CassetteNotFoundError` or :class:`CassetteError` naming the file and the reason.
    """
    source = Path(path)
    try:
        stat = source.stat()
    except FileNotFoundError:
        raise CassetteNotFoundError(f"cassette {source} does not exist") from None
    except OSError as exc:
        raise CassetteError(f"cassette {source}: cannot read ({exc.strerror or exc})") from exc
    if source.is_dir():
        raise CassetteError(f"cassette {source} is a directory, not a file")
    key = str(source.resolve())
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stat.st_mtime_ns and hit[1] == stat.st_size:
        return hit[2]
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise CassetteError(f"cassette {source}: cannot read ({exc.strerror or exc})") from exc
    document = validate(decode(data, source), source)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = (stat.st_mtime_ns, stat.st_size, document)
    return document
