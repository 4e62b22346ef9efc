"""Reading and writing cassette files: atomic private writes, bounded reads, a parse cache.

Writes go to a temp file in the target's folder, named ``.{name}.{16 hex digits}.tmp`` (see
:data:`TEMP_NAME`), created with ``O_EXCL | O_NOFOLLOW`` and the configured mode, fsynced and
renamed over the target: a reader sees the old cassette or the new one, a symlink planted at the
target is replaced (never followed), and a writer killed mid-write leaves only a temp file that
every reader ignores and :func:`sweep_temp_files` removes once it is stale.

Reads are capped at ``max_bytes`` of decompressed data (``TIMETRACER_MAX_CASSETTE_BYTES``):
gzip and zstd are inflated in chunks against the cap, so a compression bomb costs at most the cap.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import stat
import threading
import time
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple, Union

from timetracer._s3path import S3Path, is_s3
from timetracer.cassette import _json
from timetracer.cassette.format import validate
from timetracer.config import (
    DEFAULT_FILE_MODE,
    DEFAULT_MAX_CASSETTE_BYTES,
    ENV_MAX_CASSETTE_BYTES,
    Compression,
    _positive_int,
    folder_mode,
)
from timetracer.errors import CassetteError, CassetteNotFoundError, ConfigError

# Imported now, not when first needed: a cassette written by a finalizer at interpreter shutdown
# cannot import anything (``sys.meta_path`` is already None then).
try:
    import zstandard as _zstandard
except ImportError:  # optional: only zstd cassettes need it
    _zstandard = None

logger = logging.getLogger("timetracer")

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20

# Temp files of unfinished writes: ``.{cassette file name}.{16 hex digits}.tmp``. Readers and
# listers skip names matching TEMP_NAME; stale ones (older than STALE_TEMP_SECONDS, so a
# concurrent writer's live temp file is never touched) are removed by sweep_temp_files.
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$")
STALE_TEMP_SECONDS = 600.0

# Parsed cassettes by file (device, inode); an entry is reused while the file is unchanged: an atomic
# rewrite makes a new inode, an in-place one moves mtime, ctime or size. mtime alone is not enough:
# two same-sized writes within one clock tick of the filesystem share an mtime.
# Entries keep the decompressed size, so a lower limit than the one a file was loaded under still applies.
_cache: Dict[Tuple[int, int], Tuple[Tuple[int, int, int], int, Dict[str, Any]]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 256

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _zstd() -> Any:
    if _zstandard is None:
        raise ConfigError(
            "zstd cassettes need the zstandard package; install it with: pip install timetracer[zstd]"
        )
    return _zstandard


def is_temp_file(name: str) -> bool:
    """Whether ``name`` (a file name, not a path) is the temp file of an unfinished cassette write."""
    return TEMP_NAME.match(name) is not None


def temp_name(target: Path) -> str:
    """A fresh temp file name for writing ``target``: ``.{target.name}.{16 hex digits}.tmp``."""
    return f".{target.name}.{secrets.token_hex(8)}.tmp"


CASSETTE_SUFFIXES = tuple(c.suffix for c in Compression)


def cassette_files(folder: Union[str, Path]) -> List[Path]:
    """The cassette files under ``folder`` (recursively, sorted): temp files of writes are skipped."""
    found: List[Path] = []
    for directory, _, names in os.walk(folder):
        for name in names:
            if name.endswith(CASSETTE_SUFFIXES) and not is_temp_file(name) and not name.startswith("."):
                found.append(Path(directory) / name)
    return sorted(found)


def encode(document: Dict[str, Any], compression: Compression) -> bytes:
    """Serialise a cassette document: indented JSON when plain (each stored document on one line),
    compact when compressed."""
    if compression is Compression.NONE:
        return _json.dumps(_documents_as_text(document), indent=2) + b"\n"
    raw = _json.dumps(document, indent=None)
    if compression is Compression.GZIP:
        # zlib directly (not the gzip module): a fixed header with mtime 0, no import at write time.
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        return packer.compress(raw) + packer.flush()
    return _zstd().ZstdCompressor(level=10).compress(raw)


def _documents_as_text(document: Dict[str, Any]) -> Dict[str, Any]:
    """``document`` with every stored result document (``events[i].result.body.data``, or each of
    its items) as :class:`~timetracer.cassette._json.JsonText`, which the writer puts on one line.

    Recording stores them so already; a cassette read from a file (or built for reading) holds
    plain values, and is copied where it differs, never changed.
    """
    events = document.get("events")
    if type(events) is not list and type(events) is not _json.FiniteList:
        return document
    changed: Dict[int, Any] = {}
    for index, event in enumerate(events):
        result = event.get("result") if type(event) is dict else None
        body = result.get("body") if type(result) is dict else None
        data = body.get("data") if type(body) is dict else None
        if type(data) is dict:
            data = _json.JsonText(_json.compact(data))
        elif type(data) is list and any(type(item) is not _json.JsonText for item in data):
            data = [_as_line(item) for item in data]
        else:
            continue
        changed[index] = {**event, "result": {**result, "body": {**body, "data": data}}}  # type: ignore[dict-item]
    if not changed:
        return document
    copied = [changed.get(index, event) for index, event in enumerate(events)]
    return {**document, "events": type(events)(copied)}


def _as_line(item: Any) -> Any:
    return _json.JsonText(_json.compact(item)) if type(item) is dict else item


def _too_big(path: Union[str, Path], limit: int) -> CassetteError:
    return CassetteError(
        f"cassette {path}: larger than {limit} bytes once decompressed, the limit set by "
        f"{ENV_MAX_CASSETTE_BYTES}; raise it to load this file, or check where the file came from"
    )


def _inflate_gzip(chunks: Iterator[bytes], path: Union[str, Path], limit: int) -> bytearray:
    """Decompress gzip (every member) from ``chunks``, never holding more than ``limit`` + 1 bytes."""
    out = bytearray()
    inflater = zlib.decompressobj(31)
    fed = False  # the current member has had input: it must reach its end
    for chunk in chunks:
        data = chunk
        while data:
            fed = True
            out += inflater.decompress(data, min(_CHUNK, limit + 1 - len(out)))
            if len(out) > limit:
                raise _too_big(path, limit)
            if not inflater.eof:
                data = inflater.unconsumed_tail
                continue
            data = inflater.unused_data  # the next member, if any
            inflater = zlib.decompressobj(31)
            fed = False
    if fed:
        raise CassetteError(f"cassette {path}: cannot decompress (the gzip stream is truncated)")
    return out


def _inflate_zstd(fh: BinaryIO, path: Union[str, Path], limit: int) -> bytearray:
    """Decompress the zstd frames of file ``fh``, holding at most ``limit`` + 1 bytes of output."""
    zstd = _zstd()
    out = bytearray()
    reader = zstd.ZstdDecompressor().stream_reader(fh, read_across_frames=True, closefd=False)
    while True:
        piece = reader.read(min(_CHUNK, limit + 1 - len(out)))
        if not piece:
            break
        out += piece
        if len(out) > limit:
            raise _too_big(path, limit)
    # The stream reader stops quietly at a truncated frame; a second pass (output discarded, and
    # no larger than what was just read) checks that every frame is complete.
    fh.seek(0)
    inflater = zstd.ZstdDecompressor().decompressobj()
    fed = False
    for block in iter(lambda: fh.read(_CHUNK), b""):
        while block:
            fed = True
            inflater.decompress(block)
            if not inflater.eof:
                break
            block = inflater.unused_data
            inflater = zstd.ZstdDecompressor().decompressobj()
            fed = False
    if fed:
        raise CassetteError(f"cassette {path}: cannot decompress (the zstd stream is truncated)")
    return out


def decode(data: bytes, path: Union[str, Path], max_bytes: Optional[int] = None) -> Any:
    """Parse cassette bytes, whatever their compression (found from the magic bytes).

    Raises :class:`CassetteError` naming ``path`` if the data is corrupt, not JSON, or larger than
    ``max_bytes`` (default :data:`~timetracer.config.DEFAULT_MAX_CASSETTE_BYTES`) decompressed.
    """
    limit = DEFAULT_MAX_CASSETTE_BYTES if max_bytes is None else max_bytes
    text: Union[bytes, bytearray] = data
    try:
        if data.startswith(_GZIP_MAGIC):
            text = _inflate_gzip(iter([data]), path, limit)
        elif data.startswith(_ZSTD_MAGIC):
            text = _inflate_zstd(io.BytesIO(data), path, limit)
        elif len(data) > limit:
            raise _too_big(path, limit)
    except (ConfigError, CassetteError):
        raise
    except Exception as exc:  # truncated or corrupt compressed stream
        raise CassetteError(f"cassette {path}: cannot decompress ({exc})") from exc
    if not text.strip():
        raise CassetteError(f"cassette {path}: the file is empty")
    try:
        # utf-8-sig: a cassette saved by an editor that adds a byte order mark still loads.
        return _json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CassetteError(f"cassette {path}: not valid JSON ({exc})") from exc
    except RecursionError:
        raise CassetteError(f"cassette {path}: not valid JSON (nested too deeply)") from None


def make_folder(folder: Path, mode: int) -> None:
    """Create ``folder`` and missing parents with ``mode`` (exactly, whatever the umask)."""
    missing: List[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            continue  # made by a concurrent writer: leave its mode alone
        try:
            os.chmod(directory, mode)  # mkdir's mode was narrowed by the umask
        except OSError:
            pass


def create_file(path: Path, flags: int, mode: int, folders_mode: int) -> int:
    """``os.open(path, flags, mode)``, making the missing folders first (:func:`make_folder`, with
    ``folders_mode``) when that fails for want of them. The folder is looked for only then: not a
    ``stat`` per file created."""
    try:
        return os.open(path, flags, mode)
    except FileNotFoundError:
        make_folder(path.parent, folders_mode)
        return os.open(path, flags, mode)


def write_cassette(
    path: Union[str, Path],
    document: Dict[str, Any],
    compression: Compression,
    *,
    file_mode: int = DEFAULT_FILE_MODE,
) -> Path:
    """Write a cassette atomically and privately, and return its path.

    The data goes to a temp file in the same folder (created with ``O_EXCL | O_NOFOLLOW`` and
    ``file_mode``, exactly), is fsynced, then renamed over ``path``. A reader sees the old file or
    the new one, never part of one; a symlink at ``path`` is replaced, not followed. Missing
    folders are created with :func:`~timetracer.config.folder_mode` of ``file_mode``.
    """
    if is_s3(path):  # one PUT; see timetracer.cassette._s3
        from timetracer.cassette import _s3

        return _s3.write_cassette(S3Path.parse(path), document, compression)  # type: ignore[return-value]
    target = Path(path)
    data = encode(document, compression)
    tmp = target.parent / temp_name(target)
    fd = create_file(tmp, _OPEN_FLAGS, file_mode, folder_mode(file_mode))
    try:
        try:
            os.fchmod(fd, file_mode)  # open() applied the umask; the setting is the mode
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def sweep_temp_files(folder: Union[str, Path], older_than: float = STALE_TEMP_SECONDS) -> List[Path]:
    """Remove the temp files of writes that never finished under ``folder`` (recursively).

    Only names matching :data:`TEMP_NAME` last modified more than ``older_than`` seconds ago are
    removed, so the live temp file of a concurrent writer is left alone. Returns what was removed;
    problems are logged, never raised.
    """
    removed: List[Path] = []
    cutoff = time.time() - older_than
    pending = [Path(folder)]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif is_temp_file(entry.name) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except FileNotFoundError:
                continue  # renamed or removed meanwhile
            except OSError as exc:
                logger.warning("timetracer: cannot remove stale temp file %s: %s", entry.path, exc)
    if removed:
        logger.info("timetracer: removed %d stale temp file(s) of unfinished writes in %s", len(removed), folder)
    return removed


def _limit_from_env() -> int:
    text = os.environ.get(ENV_MAX_CASSETTE_BYTES, "").strip()
    return _positive_int(text, ENV_MAX_CASSETTE_BYTES) if text else DEFAULT_MAX_CASSETTE_BYTES


def _read_limited(source: Path, size: int, limit: int) -> Union[bytes, bytearray]:
    """The file's bytes, decompressed when compressed, streamed against ``limit``."""
    with open(source, "rb") as fh:
        head = fh.read(4)
        if head.startswith(_GZIP_MAGIC):

            def chunks() -> Iterator[bytes]:
                yield head
                while True:
                    block = fh.read(_CHUNK)
                    if not block:
                        return
                    yield block

            return _inflate_gzip(chunks(), source, limit)
        if head.startswith(_ZSTD_MAGIC):
            fh.seek(0)
            return _inflate_zstd(fh, source, limit)
        if size > limit:
            raise _too_big(source, limit)
        return head + fh.read()


def read_cassette(path: Union[str, Path], max_bytes: Optional[int] = None) -> Dict[str, Any]:
    """Load and check a cassette; parsed files are cached by path and file identity (inode, times, size).

    The returned document is shared between callers: treat it as read-only. ``max_bytes`` caps
    the decompressed size (default: ``TIMETRACER_MAX_CASSETTE_BYTES``, else 256 MiB).
    Raises :class:`CassetteNotFoundError` or :class:`CassetteError` naming the file and the reason.
    """
    if is_s3(path):  # cached by ETag; see timetracer.cassette._s3
        from timetracer.cassette import _s3

        return _s3.read_cassette(S3Path.parse(path), max_bytes)
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
    limit = _limit_from_env() if max_bytes is None else max_bytes
    if hit is not None and hit[0] == identity:
        if hit[1] > limit:
            raise _too_big(source, limit)
        return hit[2]
    try:
        data = _read_limited(source, info.st_size, limit)
    except (CassetteError, ConfigError):
        raise
    except OSError as exc:
        raise CassetteError(f"cassette {source}: cannot read ({exc.strerror or exc})") from exc
    except Exception as exc:  # truncated or corrupt compressed stream
        raise CassetteError(f"cassette {source}: cannot decompress ({exc})") from exc
    document = validate(decode(data, source, max_bytes=limit), source)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = (identity, len(data), document)
    return document
