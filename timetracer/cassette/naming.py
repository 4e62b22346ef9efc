"""Cassette file names: ``{METHOD}__{path}.json``, safe whatever the request path holds.

One file per recorded request: ``GET__items.json`` for a request with no query string and no body,
``GET__items~q1a2b3c4d5e.json`` when it has one (a digest of the normalised, redacted query and
body), and ``~2``, ``~3``... for the later recordings of an identical request. Names are claimed
with ``O_EXCL`` so concurrent recorders never share one.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from timetracer.config import Compression, TraceConfig

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
    directory = Path(config.cassette_dir)
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
_CLAIM = ".claim"


def request_stem(method: str, path: str, fingerprint: Optional[str]) -> str:
    """The stem of a request's recordings: the route's stem, ``~`` and the fingerprint if any."""
    route = cassette_name(method, path)
    return route if fingerprint is None else f"{route}{SEPARATOR}{fingerprint}"


def numbered(stem: str, number: int) -> str:
    """The ``number``-th recording of ``stem``: ``stem`` itself for the first, then ``stem~2``..."""
    return stem if number <= 1 else f"{stem}{SEPARATOR}{number}"


def _pattern(route: str) -> re.Pattern[str]:
    suffixes = "|".join(re.escape(s) for s in sorted(SUFFIXES, key=len, reverse=True))
    return re.compile(
        rf"^(?P<claim>\.)?{re.escape(route)}(?:{SEPARATOR}(?P<fp>q[0-9a-f]{{10}}))?"
        rf"(?:{SEPARATOR}(?P<n>[1-9][0-9]*))?(?P<suffix>{suffixes})(?({'claim'}){re.escape(_CLAIM)})$"
    )


def route_recordings(directory: Path, route: str) -> Dict[Tuple[Optional[str], int], List[str]]:
    """The recordings (and in-flight claims) of one route in ``directory``, by (fingerprint, number).

    Each value lists the file names found for that recording, claims included (dot-prefixed).
    """
    pattern = _pattern(route)
    found: Dict[Tuple[Optional[str], int], List[str]] = {}
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return found
    with entries:
        for entry in entries:
            match = pattern.match(entry.name)
            if match is not None:
                key = (match.group("fp"), int(match.group("n") or 1))
                found.setdefault(key, []).append(entry.name)
    return found


class Claim:
    """A recording name taken for one request in flight: the cassette path and its claim file.

    The claim (``.{name}.claim``, made with ``O_EXCL``) keeps concurrent recorders, threads or
    processes, from taking the same name; :meth:`release` removes it once the cassette is written
    or dropped.
    """

    __slots__ = ("claim", "target")

    def __init__(self, target: Path, claim: Path) -> None:
        self.target = target
        self.claim = claim

    def release(self) -> None:
        try:
            os.unlink(self.claim)
        except FileNotFoundError:
            pass


def claim_recording(
    directory: Path, method: str, path: str, fingerprint: Optional[str], suffix: str, limit: int
) -> Optional[Claim]:
    """Take the next free name for a recording of this request, or ``None`` if its route is full.

    Recordings of identical requests are numbered after the highest number present, so their
    order is the order requests started; ``limit`` (0: none) bounds the recordings of the route,
    whatever their query strings or bodies.
    """
    route = cassette_name(method, path)
    stem = request_stem(method, path, fingerprint)
    try:
        existing = route_recordings(directory, route)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot claim {directory / (stem + suffix)}: {exc.strerror}") from exc
    if limit and len(existing) >= limit:
        return None
    number = 1 + max((n for fp, n in existing if fp == fingerprint), default=0)
    while True:
        name = numbered(stem, number)
        claim = directory / f".{name}{suffix}{_CLAIM}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            number += 1
            continue
        except OSError as exc:
            raise OSError(exc.errno, f"cannot claim {directory / (name + suffix)}: {exc.strerror}") from exc
        os.close(fd)
        if any((directory / f"{name}{s}").exists() for s in SUFFIXES):
            os.unlink(claim)  # written meanwhile by a recorder that has released its claim
            number += 1
            continue
        target = directory / f"{name}{suffix}"
        if target.parent != directory:  # cannot happen by construction; keep it explicit
            os.unlink(claim)
            raise ValueError(f"refusing cassette path {target} outside {directory}")
        return Claim(target, claim)
