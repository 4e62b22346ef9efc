"""What the ``timetracer`` subcommands share: loading cassettes, finding them, and errors.

Every command also takes ``s3://bucket/prefix`` URLs where it takes a cassette file or folder
(:func:`location`): a URL ending in a cassette suffix is one object, any other is a folder whose
cassettes are listed recursively. The S3 client is imported only for such URLs.

A command signals bad input (a missing or corrupt file, a bad argument) by raising
:class:`CommandError`; the dispatcher prints its message as one line on stderr and exits 2. Exit
status 1 is kept for the negative results of ``diff``, ``verify`` and ``validate``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from timetracer._s3path import S3Path, is_s3
from timetracer.config import ENV_CASSETTE_DIR
from timetracer.errors import TimeTracerError

# Exit statuses of every command.
EXIT_OK = 0
EXIT_NEGATIVE = 1  # diff: not equivalent; verify: not all identical; validate: a bad cassette
EXIT_BAD_INPUT = 2

CASSETTE_SUFFIXES = (".json", ".json.gz", ".json.zst")


class CommandError(Exception):
    """Bad input for a command: printed as one line on stderr, exit status 2."""


# A cassette file or folder: a local path, or an object / key prefix in S3.
Location = Union[Path, S3Path]


def location(text: str) -> Location:
    """``text`` as a :class:`~pathlib.Path` (``~`` expanded) or, for ``s3://…``, an :class:`S3Path`."""
    if is_s3(text):
        try:
            return S3Path.parse(text)
        except TimeTracerError as exc:
            raise CommandError(str(exc)) from None
    return Path(os.path.expanduser(text))


def s3_cassettes(folder: S3Path) -> List[Any]:
    """The cassette objects under ``folder`` at any depth (``ObjectInfo``: url, size, modified).

    :class:`CommandError` naming the URL for a missing bucket, bad credentials, an unreachable
    endpoint or boto3 not installed.
    """
    from timetracer.cassette import _s3

    try:
        return _s3.list_cassettes(folder, recursive=True)
    except TimeTracerError as exc:
        raise CommandError(_s3_message(folder, exc)) from None


def _s3_message(url: S3Path, exc: BaseException) -> str:
    """One line naming ``url`` for an S3 failure (the storage messages already name it)."""
    text = str(exc)
    return text if str(url) in text else f"{url}: {text}"


@dataclass
class Loaded:
    """A cassette file read for a command: where it is, its size, and its document."""

    path: Location
    size: int
    document: Dict[str, Any]


def default_cassette_dir() -> Location:
    """``$TIMETRACER_CASSETTE_DIR`` (a folder or an ``s3://`` URL), else ``./cassettes``."""
    value = os.environ.get(ENV_CASSETTE_DIR, "").strip()
    return location(value) if value else Path("cassettes")


def is_cassette_name(name: str) -> bool:
    """A file name a cassette may have; hidden files and temp files (``.x.json.123.tmp``) are not."""
    return not name.startswith(".") and not name.endswith(".tmp") and name.endswith(CASSETTE_SUFFIXES)


def find_cassettes(directory: Path) -> List[Path]:
    """Every cassette file under ``directory``, recursively, sorted; hidden folders are skipped."""
    found: List[Path] = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / name for name in sorted(files) if is_cassette_name(name))
    return found


def expand(paths: Iterable[str], *, default_dir: bool = True) -> List[Location]:
    """Cassette files named by ``paths`` (files, or folders searched recursively; ``s3://`` URLs:
    an object when the URL ends in a cassette suffix, else every cassette under that prefix).

    With no paths, the default cassette folder. Raises :class:`CommandError` for a path that does
    not exist or a folder holding no cassette.
    """
    given = [location(p) for p in paths]
    if not given and default_dir:
        given = [default_cassette_dir()]
    files: List[Location] = []
    for path in given:
        if isinstance(path, S3Path):
            if path.name.endswith(CASSETTE_SUFFIXES):
                files.append(path)
                continue
            inside = s3_cassettes(path)
            if not inside:
                raise CommandError(
                    f"{path}: no cassette objects (*.json, *.json.gz, *.json.zst) under this prefix"
                )
            files.extend(info.url for info in inside)
            continue
        try:
            info = path.stat()
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file or folder") from None
        except OSError as exc:
            raise CommandError(f"{path}: cannot read ({exc.strerror or exc})") from None
        if stat.S_ISDIR(info.st_mode):
            inside = find_cassettes(path)
            if not inside:
                raise CommandError(
                    f"{path}: no cassette files (*.json, *.json.gz, *.json.zst) in this folder"
                )
            files.extend(inside)
        else:
            files.append(path)
    return files


def read_bytes(path: Location) -> bytes:
    """The bytes of a cassette file or object; :class:`CommandError` naming it if it cannot be read."""
    if isinstance(path, S3Path):
        from timetracer.cassette import _s3

        try:
            return _s3.read_bytes(path)
        except TimeTracerError as exc:
            raise CommandError(_s3_message(path, exc)) from None
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise CommandError(f"{path}: is a folder, not a cassette file")
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except OSError as exc:
        raise CommandError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load(path: Location) -> Loaded:
    """Read, decompress, parse and check a cassette; :class:`CommandError` naming the file if not."""
    from timetracer.cassette.format import validate
    from timetracer.cassette.storage import decode

    data = read_bytes(path)
    try:
        document = validate(decode(data, path), path)
    except TimeTracerError as exc:
        raise CommandError(str(exc)) from None
    return Loaded(path, len(data), document)


def display_path(path: Location) -> str:
    """``path`` relative to the working directory when it is inside it, else as given (URLs whole)."""
    if isinstance(path, S3Path):
        return str(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def request_line(document: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """The recorded request's ``(method, path)``; ``(None, name)`` for a script's cassette."""
    request = document.get("request")
    if not isinstance(request, dict):
        return None, None
    method, path = request.get("method"), request.get("path")
    if isinstance(method, str) and isinstance(path, str):
        query = request.get("query")
        if isinstance(query, str) and query:
            path = f"{path}?{query}"
        return method, path
    name = request.get("name") or (document.get("session") or {}).get("name")
    return None, name if isinstance(name, str) else None


def describe_request(document: Dict[str, Any]) -> str:
    method, path = request_line(document)
    if method is not None:
        return f"{method} {path}"
    return f"script {path}" if path else "(no request)"


def response_status(document: Dict[str, Any]) -> Optional[int]:
    response = document.get("response")
    status = response.get("status") if isinstance(response, dict) else None
    return status if isinstance(status, int) else None


def events(document: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [e for e in document.get("events") or [] if isinstance(e, dict)]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def ms(value: Any) -> str:
    """A duration in milliseconds for display (``3.48 ms``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
