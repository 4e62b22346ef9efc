"""Cassette file names: ``{METHOD}__{path}.json``, safe whatever the request path holds."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from timetracer.config import TraceConfig

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
