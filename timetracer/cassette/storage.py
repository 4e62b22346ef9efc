"""Reading and writing cassette files: atomic writes, compression detected on read, a parse cache."""

from __future__ import annotations

import gzip
import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from timetracer._s3path import S3Path, is_s3
from timetracer.cassette.format import validate
from timetracer.config import Compression
from timetracer.errors import CassetteError, CassetteNotFoundError, ConfigError

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# Parsed cassettes by file (device, inode); an entry is reused while the file is unchanged: an atomic
# rewrite makes a new inode, an in-place one moves mtime, ctime or size. mtime alone is not enough:
# two same-sized writes within one clock tick of the filesystem share an mtime.
_cache: Dict[Tuple[int, int], Tuple[Tuple[int, int, int], Dict[str, Any]]] = {}
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
        # utf-8-sig: a cassette saved by an editor that adds a byte order mark still loads.
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CassetteError(f"cassette {path}: not valid JSON ({exc})") from exc
    except RecursionError:
        raise CassetteError(f"cassette {path}: not valid JSON (nested too deeply)") from None


_umask_lock = threading.Lock()
_umask_value: Optional[int] = None


def _umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    global _umask_value
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        if _umask_value is None:
            _umask_value = os.umask(0o022)
            os.umask(_umask_value)
        return _umask_value


def _file_mode(target: Path) -> int:
    """Permissions for a written cassette: the replaced file's, else what ``open()`` would give."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def write_cassette(path: Union[str, Path], document: Dict[str, Any], compression: Compression) -> Path:
    """Write a cassette atomically (temp file in the same directory, then rename) and return its path.

    A reader sees the old file or the new one, never part of one; a later write replaces the file.
    """
    if is_s3(path):  # one PUT; see timetracer.cassette._s3
        from timetracer.cassette import _s3

        return _s3.write_cassette(S3Path.parse(path), document, compression)  # type: ignore[return-value]
    target = Path(path)
    data = encode(document, compression)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = _file_mode(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    try:
        try:
            os.chmod(tmp, mode)  # mkstemp makes 0600 files; a cassette is an ordinary file
        except OSError:
            pass
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
    """Load and check a cassette; parsed files are cached by path and file identity (inode, times, size).

    The returned document is shared between callers: treat it as read-only.
    Raises :class:`CassetteNotFoundError` or :class:`CassetteError` naming the file and the reason.
    """
    if is_s3(path):  # cached by ETag; see timetracer.cassette._s3
        from timetracer.cassette import _s3

        return _s3.read_cassette(S3Path.parse(path))
    source = Path(path)
    try:
        info = source.stat()
    except FileNotFoundError:
        raise CassetteNotFoundError(f"cassette {source} does not exist") from None
    except OSError as exc:
        raise CassetteError(f"cassette {source}: cannot read ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise CassetteError(f"cassette {source} is a directory, not a file")
    # Keyed by the file itself (device, inode), so no path resolving on the per-request hit path;
    # an atomic rewrite makes a new inode, and an in-place change moves the times or the size.
    key = (info.st_dev, info.st_ino)
    identity = (info.st_mtime_ns, info.st_ctime_ns, info.st_size)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == identity:
        return hit[1]
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise CassetteError(f"cassette {source}: cannot read ({exc.strerror or exc})") from exc
    document = validate(decode(data, source), source)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = (identity, document)
    return document
