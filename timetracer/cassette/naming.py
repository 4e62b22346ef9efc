"""Cassette file names: ``{METHOD}__{path}.json``, safe whatever the request path holds."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from timetracer.config import TraceConfig

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")
MAX_STEM = 120


def cassette_name(method: str, path: str) -> str:
    """The file stem for a request: ``GET /users/123`` → ``GET__users_123``.

    Separators, ``..``, percent signs (so encoded slashes), NUL and every other character outside
    ``[A-Za-z0-9._-]`` become ``_``; ``/`` alone is ``root``; stems longer than 120 characters are
    cut and end in a short hash of the full path so different requests keep different files.
    """
    verb = _UNSAFE.sub("", method.upper()) or "UNKNOWN"
    cleaned = _DOTS.sub("_", _UNSAFE.sub("_", path.strip("/")))
    cleaned = cleaned.strip("._") or "root"
    stem = f"{verb}__{cleaned}"
    if len(stem) > MAX_STEM:
        digest = hashlib.sha256(f"{method} {path}".encode("utf-8", "surrogatepass")).hexdigest()[:12]
        stem = f"{stem[: MAX_STEM - 13]}_{digest}"
    return stem


def cassette_path(config: TraceConfig, method: str, path: str) -> Path:
    """The cassette file for a request inside ``config.cassette_dir``, with the right suffix."""
    directory = Path(config.cassette_dir)
    target = directory / f"{cassette_name(method, path)}{config.compression.suffix}"
    # cassette_name leaves no separator, so this holds by construction; keep the guarantee explicit.
    if target.parent != directory:
        raise ValueError(f"refusing cassette path {target} outside {directory}")
    return target
