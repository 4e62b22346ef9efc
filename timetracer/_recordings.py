"""Which file records a request, and which recording answers a replayed one.

:class:`Recordings` belongs to one middleware. Recording, it claims the next free name for each
request (``GET__items.json``, ``GET__items~2.json``, ``GET__items~q1a2b3c4d5e.json``... see
:mod:`timetracer.cassette.naming`), up to ``max_recordings_per_route`` per route. Replaying, it
answers the n-th live request of a kind (method, path, redacted query and body) with the n-th
recording of that kind, and checks that the file it loads was recorded for that same request:
a request is never answered with another request's data.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from timetracer._request import describe, fingerprint, request_differences
from timetracer._s3path import is_s3
from timetracer.cassette import read_cassette
from timetracer.cassette.naming import (
    SUFFIXES,
    Claim,
    RecordingFolder,
    cassette_name,
    numbered,
    request_stem,
    route_recordings,
)
from timetracer.config import ENV_MAX_RECORDINGS_PER_ROUTE, Mode, TraceConfig
from timetracer.errors import CassetteError, CassetteNotFoundError

logger = logging.getLogger("timetracer")

_LISTED = 6


def _open_folder(directory: Path, file_mode: int) -> Any:
    """The recording folder: :class:`RecordingFolder`, or its S3 twin for an ``s3://`` folder."""
    if is_s3(directory):
        from timetracer.cassette._s3 import S3RecordingFolder

        return S3RecordingFolder(directory)  # type: ignore[arg-type]
    return RecordingFolder(directory, file_mode)


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


class Recordings:
    """Names the recordings of one middleware's requests and finds them again in replay.

    :param config: the settings in force (folder, compression, route limit, redaction).

    Example::

        recordings = Recordings(config)
        claim = recordings.claim(request)          # record: None when the route is full
        path, document = recordings.find(request)  # replay: CassetteNotFoundError if none
    """

    def __init__(self, config: TraceConfig) -> None:
        self.config = config
        self.directory = config.cassette_dir
        self._redacted = config.redacted_query
        self._folder = _open_folder(self.directory, config.file_mode) if config.mode is Mode.RECORD else None
        self._suffixes = (config.compression.suffix, *[s for s in SUFFIXES if s != config.compression.suffix])
        # Replay: how many live requests of each kind (request stem) this middleware has seen.
        self._seen: Dict[str, int] = {}
        self._full: set[str] = set()
        self._lock = threading.Lock()

    # -- record ------------------------------------------------------------------------------

    def claim(self, request: Mapping[str, Any]) -> Optional[Claim]:
        """The file to record ``request`` in, claimed; ``None`` when its route has all it may keep."""
        method, path = request["method"], request["path"]
        limit = self.config.max_recordings_per_route
        if self._folder is None:
            self._folder = _open_folder(self.directory, self.config.file_mode)
        claim = self._folder.claim(method, path, fingerprint(request), self.config.compression.suffix, limit)
        if claim is None:
            route = cassette_name(method, path)
            with self._lock:
                first = route not in self._full
                self._full.add(route)
            logger.log(
                logging.WARNING if first else logging.DEBUG,
                "timetracer: %s %s runs unrecorded: %s already holds %d recordings of this route "
                "(%s=%d; raise it or remove recordings)",
                method,
                path,
                self.directory,
                limit,
                ENV_MAX_RECORDINGS_PER_ROUTE,
                limit,
            )
        return claim

    # -- replay ------------------------------------------------------------------------------

    def find(self, request: Mapping[str, Any]) -> Tuple[Path, Dict[str, Any]]:
        """The recording answering ``request``: the n-th of its kind for the n-th live request.

        Raises :class:`CassetteNotFoundError` naming the file looked for and the route's
        recordings, or :class:`CassetteError` if the file found was recorded for another request.
        """
        method, path = request["method"], request["path"]
        digest = fingerprint(request)
        stem = request_stem(method, path, digest)
        with self._lock:
            number = self._seen.get(stem, 0) + 1
            self._seen[stem] = number
        name = numbered(stem, number)
        found = self._load(name)
        if found is None and digest is not None and number == 1:
            found = self._legacy(request)
        if found is None:
            raise CassetteNotFoundError(self._missing(request, name, number))
        source, document = found
        differences = request_differences(document.get("request") or {}, request, self._redacted)
        if differences:
            raise CassetteError(
                f"cassette {source} was recorded for another request than {describe(request)}: "
                + "; ".join(differences)
            )
        return source, document

    def _load(self, name: str) -> Optional[Tuple[Path, Dict[str, Any]]]:
        for suffix in self._suffixes:
            candidate = self.directory / f"{name}{suffix}"
            try:
                return candidate, read_cassette(candidate, self.config.max_cassette_bytes)
            except CassetteNotFoundError:
                continue
        return None

    def _legacy(self, request: Mapping[str, Any]) -> Optional[Tuple[Path, Dict[str, Any]]]:
        """A cassette named after the route alone, recorded before query strings and bodies made
        names: used when it was recorded for this query string and stored no body."""
        found = self._load(cassette_name(request["method"], request["path"]))
        if found is None:
            return None
        recorded = found[1].get("request") or {}
        if "body" in recorded or request_differences(recorded, request, self._redacted):
            return None
        return found

    def _missing(self, request: Mapping[str, Any], name: str, number: int) -> str:
        route = cassette_name(request["method"], request["path"])
        recorded = route_recordings(self.directory, route)
        names = sorted(n for names in recorded.values() for n in names if not n.startswith("."))
        listed = ", ".join(names[:_LISTED]) + (
            f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
        )
        same_kind = sum(1 for (fp, _) in recorded if fp == fingerprint(request))
        kind = f"the {_ordinal(number)} request like it in this replay"
        if number > 1 and same_kind:
            kind += f", but only {same_kind} were recorded"
        others = ", ".join(self._suffixes[1:])
        return (
            f"no recording of {describe(request)} ({kind}): looked for {self.directory / (name + self._suffixes[0])} "
            f"(also {others}); recordings of {request['method']} {request['path']} there: {listed or 'none'}"
        )
