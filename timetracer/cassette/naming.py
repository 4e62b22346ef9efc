"""Cassette file names: ``{METHOD}__{path}.json``, safe whatever the request path holds.

One file per recorded request: ``GET__items.json`` for a request with no query string and no body,
``GET__items~q1a2b3c4d5e.json`` when it has one (a digest of the normalised, redacted query and
body), and ``~2``, ``~3``... for the later recordings of an identical request. Names are claimed
with ``O_EXCL`` so concurrent recorders never share one.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Set, Tuple

from timetracer._s3path import is_s3
from timetracer.cassette.storage import create_file
from timetracer.config import DEFAULT_FILE_MODE, Compression, TraceConfig, folder_mode

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_UNSAFE_VERB = re.compile(r"[^A-Z0-9_-]+")
_DOTS = re.compile(r"\.{2,}")
MAX_STEM = 120
_DIGEST_CHARS = 12


def _digest(verb: str, path: str) -> str:
    return hashlib.sha256(f"{verb} {path}".encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]


def cassette_name(method: str, path: str) -> str:
    """The file stem for a request: ``GET /users/123`` → ``GET__users_123``.

    Separators, ``..``, percent signs (so encoded slashes), NUL and every other character outside
    ``[A-Za-z0-9._-]`` become ``_``; ``/`` alone is ``root``. When that loses anything besides the
    ``/`` → ``_`` swap (``/日本``, ``/..``, ``/a%2Fb``), the stem ends in a short hash of the path so
    such requests do not share a file with ``/`` or with each other. Stems longer than 120
    characters are cut and end in the hash too.
    """
    verb = _UNSAFE_VERB.sub("", method.upper()) or "UNKNOWN"
    trimmed = path.strip("/")
    cleaned = _DOTS.sub("_", _UNSAFE.sub("_", trimmed))
    cleaned = cleaned.strip("._") or "root"
    stem = f"{verb}__{cleaned}"
    lossy = cleaned != (trimmed.replace("/", "_") or "root")
    if lossy or len(stem) > MAX_STEM:
        stem = f"{stem[: MAX_STEM - _DIGEST_CHARS - 1]}_{_digest(verb, path)}"
    return stem


def cassette_path(config: TraceConfig, method: str, path: str) -> Path:
    """The cassette file for a request inside ``config.cassette_dir``, with the right suffix."""
    directory = config.cassette_dir
    target = directory / f"{cassette_name(method, path)}{config.compression.suffix}"
    # cassette_name leaves no separator, so this holds by construction; keep the guarantee explicit.
    if target.parent != directory:
        raise ValueError(f"refusing cassette path {target} outside {directory}")
    return target


# -- one file per recorded request ---------------------------------------------------------------

# Separates a route's stem from the request's fingerprint and repeat number. cassette_name never
# puts "~" in a stem, so ``GET /items.2`` and the second ``GET /items`` cannot share a name.
SEPARATOR = "~"
SUFFIXES = tuple(c.suffix for c in Compression)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLAIM = ".claim"
_CLAIM_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | _NOFOLLOW
_SUFFIXES_LONGEST_FIRST = tuple(sorted(SUFFIXES, key=len, reverse=True))
_FINGERPRINT = re.compile(r"q[0-9a-f]{10}")


def request_stem(method: str, path: str, fingerprint: Optional[str]) -> str:
    """The stem of a request's recordings: the route's stem, ``~`` and the fingerprint if any."""
    route = cassette_name(method, path)
    return route if fingerprint is None else f"{route}{SEPARATOR}{fingerprint}"


def numbered(stem: str, number: int) -> str:
    """The ``number``-th recording of ``stem``: ``stem`` itself for the first, then ``stem~2``..."""
    return stem if number <= 1 else f"{stem}{SEPARATOR}{number}"


def parse_name(name: str) -> Optional[Tuple[str, Optional[str], int]]:
    """``(route stem, fingerprint, number)`` of a cassette or claim file name; ``None`` for others.

    ``GET__items~q1a2b3c4d5e~3.json.gz`` → ``("GET__items", "q1a2b3c4d5e", 3)``.
    """
    if name.startswith("."):
        if not name.endswith(_CLAIM):
            return None  # temp files and anything else hidden
        name = name[1 : -len(_CLAIM)]
    for suffix in _SUFFIXES_LONGEST_FIRST:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            break
    else:
        return None
    route, *rest = stem.split(SEPARATOR)
    fingerprint: Optional[str] = None
    number = 1
    if rest and _FINGERPRINT.fullmatch(rest[0]):
        fingerprint = rest.pop(0)
    if rest and rest[0].isdigit() and not rest[0].startswith("0"):
        number = int(rest.pop(0))
    if rest or not route:
        return None
    return route, fingerprint, number


def route_recordings(directory: Path, route: str) -> Dict[Tuple[Optional[str], int], List[str]]:
    """The recordings (and in-flight claims) of one route in ``directory``, by (fingerprint, number).

    Each value lists the file names found for that recording, claims included (dot-prefixed).
    """
    if is_s3(directory):
        from timetracer.cassette import _s3

        return _s3.route_recordings(directory, route)  # type: ignore[arg-type]
    found: Dict[Tuple[Optional[str], int], List[str]] = {}
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return found
    with entries:
        for entry in entries:
            parsed = parse_name(entry.name)
            if parsed is not None and parsed[0] == route:
                found.setdefault(parsed[1:], []).append(entry.name)
    return found


class Claim:
    """A recording name taken for one request in flight: the cassette path and its claim file.

    The claim (``.{name}.claim``, made with ``O_EXCL``) keeps concurrent recorders, threads or
    processes, from taking the same name; :meth:`release` removes it once the cassette is written
    or dropped (a dropped one frees its number again).
    """

    __slots__ = ("_forget", "claim", "target")

    def __init__(self, target: Path, claim: Path, forget: Optional[Callable[[], None]] = None) -> None:
        self.target = target
        self.claim = claim
        self._forget = forget

    def release(self) -> None:
        try:
            if self._forget is not None and not self.target.exists():
                self._forget()  # nothing written (errors-only mode, a failed write): no gap
        finally:
            try:
                os.unlink(self.claim)
            except FileNotFoundError:
                pass


class _Route:
    """The recording numbers taken in one route, by fingerprint, with O(1) count and next number."""

    __slots__ = ("count", "highest", "numbers")

    def __init__(self) -> None:
        self.numbers: Dict[Optional[str], Set[int]] = {}
        self.highest: Dict[Optional[str], int] = {}
        self.count = 0

    def add(self, fingerprint: Optional[str], number: int) -> None:
        taken = self.numbers.setdefault(fingerprint, set())
        if number not in taken:
            taken.add(number)
            self.count += 1
            self.highest[fingerprint] = max(number, self.highest.get(fingerprint, 0))

    def discard(self, fingerprint: Optional[str], number: int) -> None:
        taken = self.numbers.get(fingerprint, set())
        if number in taken:
            taken.discard(number)
            self.count -= 1
            self.highest[fingerprint] = max(taken, default=0)

    def next(self, fingerprint: Optional[str]) -> int:
        return self.highest.get(fingerprint, 0) + 1


class RecordingFolder:
    """Hands out recording names in one folder: the next number of each request, bounded per route.

    The folder is listed once and then every ``REFRESH_SECONDS`` (not per request: a folder may hold
    many thousands of cassettes), and this process's own claims are added as they are made. Other
    processes' recordings made since the last listing are met through ``O_EXCL`` when a name is
    claimed, so names never collide; the route limit counts them from the next listing on.

    :param directory: the cassette folder.

    Example::

        folder = RecordingFolder(Path("cassettes"))
        claim = folder.claim("GET", "/items", None, ".json", limit=100)  # GET__items.json, then ~2...
    """

    REFRESH_SECONDS = 5.0

    def __init__(self, directory: Path, file_mode: int = DEFAULT_FILE_MODE) -> None:
        self.directory = directory
        self._folder_mode = folder_mode(file_mode)
        self._routes: Dict[str, _Route] = {}
        self._listed_at: Optional[float] = None
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._listed_at is not None and now - self._listed_at < self.REFRESH_SECONDS:
            return
        routes: Dict[str, _Route] = {}
        try:
            entries = os.scandir(self.directory)
        except FileNotFoundError:
            pass
        else:
            with entries:
                for entry in entries:
                    parsed = parse_name(entry.name)
                    if parsed is not None:
                        routes.setdefault(parsed[0], _Route()).add(parsed[1], parsed[2])
        self._routes = routes
        self._listed_at = now

    def claim(
        self, method: str, path: str, fingerprint: Optional[str], suffix: str, limit: int
    ) -> Optional[Claim]:
        """Take the next free name for a recording of this request, or ``None`` if its route is full.

        Recordings of identical requests are numbered after the highest number present, so their
        order is the order requests started; ``limit`` (0: none) bounds the recordings of the route,
        whatever their query strings or bodies.
        """
        route = cassette_name(method, path)
        stem = request_stem(method, path, fingerprint)
        directory = self.directory
        base = os.path.join(directory, "")  # the folder with its separator: names are joined to it
        with self._lock:
            try:
                self._refresh()
            except OSError as exc:
                raise OSError(
                    exc.errno, f"cannot claim {directory / (stem + suffix)}: {exc.strerror}"
                ) from exc
            taken = self._routes.setdefault(route, _Route())
            if limit and taken.count >= limit:
                return None
            number = taken.next(fingerprint)
            while True:
                name = numbered(stem, number)
                claim = directory / f".{name}{suffix}{_CLAIM}"
                try:
                    fd = create_file(claim, _CLAIM_FLAGS, 0o600, self._folder_mode)
                except FileExistsError:
                    taken.add(fingerprint, number)  # another process's, in flight
                    number += 1
                    continue
                except OSError as exc:
                    raise OSError(
                        exc.errno, f"cannot claim {directory / (name + suffix)}: {exc.strerror}"
                    ) from exc
                os.close(fd)
                taken.add(fingerprint, number)
                if any(os.path.exists(f"{base}{name}{s}") for s in SUFFIXES):
                    os.unlink(claim)  # written meanwhile by a recorder that has released its claim
                    number += 1
                    continue
                target = directory / f"{name}{suffix}"
                if target.parent != directory:  # cannot happen by construction; keep it explicit
                    os.unlink(claim)
                    raise ValueError(f"refusing cassette path {target} outside {directory}")
                return Claim(target, claim, functools.partial(self._forget, route, fingerprint, number))

    def _forget(self, route: str, fingerprint: Optional[str], number: int) -> None:
        with self._lock:
            known = self._routes.get(route)
            if known is not None:
                known.discard(fingerprint, number)


def claim_recording(
    directory: Path, method: str, path: str, fingerprint: Optional[str], suffix: str, limit: int
) -> Optional[Claim]:
    """:meth:`RecordingFolder.claim` with a fresh listing of ``directory`` (no state kept)."""
    return RecordingFolder(directory).claim(method, path, fingerprint, suffix, limit)
