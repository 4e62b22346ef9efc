"""``timetracer ls [DIR]``: one row per cassette under a folder (or ``s3://`` prefix), recursively,
every compression."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

from timetracer._s3path import S3Path
from timetracer.commands._common import (
    CASSETTE_SUFFIXES,
    EXIT_BAD_INPUT,
    EXIT_OK,
    CommandError,
    Location,
    default_cassette_dir,
    display_path,
    events,
    find_cassettes,
    human_size,
    load,
    location,
    request_line,
    response_status,
    s3_cassettes,
)

HELP = "list the cassettes in a folder (recursively): request, status, calls, date, size"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("ls", help=HELP, description=HELP + ".")
    parser.add_argument(
        "directory",
        nargs="?",
        metavar="DIR",
        help="folder or s3://bucket/prefix to list (default: $TIMETRACER_CASSETTE_DIR, else ./cassettes)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    parser.set_defaults(run=run)


def _relative(path: Location, base: Location) -> str:
    if isinstance(path, S3Path) and isinstance(base, S3Path):
        return path.key[len(base.prefix) :]
    assert isinstance(path, Path) and isinstance(base, Path)
    return str(path.relative_to(base))


def row(path: Location, base: Location) -> Dict[str, Any]:
    """The ``--json`` object of one cassette (``file`` is relative to the listed folder)."""
    loaded = load(path)
    document = loaded.document
    method, target = request_line(document)
    session = document.get("session") if isinstance(document.get("session"), dict) else {}
    return {
        "file": _relative(path, base),
        "method": method,
        "path": target if method is not None else None,
        "name": target if method is None else None,
        "status": response_status(document),
        "calls": len(events(document)),
        "recorded_at": session.get("recorded_at"),
        "bytes": loaded.size,
    }


def _table(rows: List[Dict[str, Any]]) -> str:
    header = ["FILE", "REQUEST", "STATUS", "CALLS", "RECORDED_AT", "SIZE"]
    lines = [header]
    for item in rows:
        request = f"{item['method']} {item['path']}" if item["method"] else f"script {item['name'] or '?'}"
        lines.append(
            [
                item["file"],
                request,
                "-" if item["status"] is None else str(item["status"]),
                str(item["calls"]),
                str(item["recorded_at"] or "-"),
                human_size(item["bytes"]),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {2, 3, 5}
    out = []
    for line in lines:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def _cassettes(base: Location, given: bool) -> List[Location]:
    if isinstance(base, S3Path):
        found: List[Location] = [info.url for info in s3_cassettes(base)]
        if not found and base.name.endswith(CASSETTE_SUFFIXES):
            raise CommandError(f"{base}: names one cassette, not a prefix (use 'timetracer show {base}')")
        return found
    if not base.exists():
        hint = "" if given else " (the default; give DIR or set TIMETRACER_CASSETTE_DIR)"
        raise CommandError(f"{base}: no such folder{hint}")
    if not base.is_dir():
        raise CommandError(f"{base}: not a folder (ls lists a folder; use 'timetracer show {base}')")
    return list(find_cassettes(base))


def run(options: argparse.Namespace) -> int:
    base = location(options.directory) if options.directory else default_cassette_dir()
    rows: List[Dict[str, Any]] = []
    bad = 0
    for path in _cassettes(base, bool(options.directory)):
        try:
            rows.append(row(path, base))
        except CommandError as exc:
            print(f"timetracer ls: {exc}", file=sys.stderr)
            bad += 1
    if options.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif rows:
        print(_table(rows))
        total = sum(item["bytes"] for item in rows)
        print(
            f"{len(rows)} cassette{'s' if len(rows) != 1 else ''} in {display_path(base)}, {human_size(total)}"
        )
    elif not bad:
        print(f"no cassettes in {display_path(base)}")
    return EXIT_BAD_INPUT if bad else EXIT_OK
