"""What the ``timetracer`` subcommands share: loading cassettes, finding them, and errors.

A command signals bad input (a missing or corrupt file, a bad argument) by raising
:class:`CommandError`; the dispatcher prints its message as one line on stderr and exits 2. Exit
status 1 is kept for the negative results of ``diff``, ``verify`` and ``validate``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from timetracer.config import ENV_CASSETTE_DIR

# Exit statuses of every command.
EXIT_OK = 0
EXIT_NEGATIVE = 1  # diff: not equivalent; verify: not all identical; validate: a bad cassette
EXIT_BAD_INPUT = 2

CASSETTE_SUFFIXES = (".json", ".json.gz", ".json.zst")


class CommandError(Exception):
    """Bad input for a command: printed as one line on stderr, exit status 2."""


@dataclass
class Loaded:
    """A cassette file read for a command: where it is, its size, and its document."""

    path: Path
    size: int
    document: Dict[str, Any]


def default_cassette_dir() -> Path:
    """``$TIMETRACER_CASSETTE_DIR``, else ``./cassettes``."""
    value = os.environ.get(ENV_CASSETTE_DIR, "").strip()
    return Path(os.path.expanduser(value)) if value else Path("cassettes")


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


def expand(paths: Iterable[str], *, default_dir: bool = True) -> List[Path]:
    """Cassette files named by ``paths`` (files, or folders searched recursively).

    With no paths, the default cassette folder. Raises :class:`CommandError` for a path that does
    not exist or a folder holding no cassette.
    """
    given = [Path(os.path.expanduser(p)) for p in paths]
    if not given and default_dir:
        given = [default_cassette_dir()]
    files: List[Path] = []
    for path in given:
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


def read_bytes(path: Path) -> bytes:
    """The bytes of a cassette file; :class:`CommandError` naming the file if it cannot be read."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise CommandError(f"{path}: is a folder, not a cassette file")
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except OSError as exc:
        raise CommandError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load(path: Path) -> Loaded:
    """Read, decompress, parse and check a cassette; :class:`CommandError` naming the file if not."""
    from timetracer.cassette.format import validate
    from timetracer.cassette.storage import decode
    from timetracer.errors import TimeTracerError

    data = read_bytes(path)
    try:
        document = validate(decode(data, path), path)
    except TimeTracerError as exc:
        raise CommandError(str(exc)) from None
    return Loaded(path, len(data), document)


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it, else as given."""
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
