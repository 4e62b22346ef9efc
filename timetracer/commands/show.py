"""``timetracer show CASSETTE``: the request, the response status and one line per recorded call."""

from __future__ import annotations

import argparse
import json
from typing import Any, List

from timetracer.commands import _summary
from timetracer.commands._common import (
    EXIT_OK,
    Location,
    describe_request,
    display_path,
    events,
    human_size,
    load,
    location,
    ms,
)

HELP = "print a cassette's request, response status and calls (eid, method, namespace, duration…)"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("show", help=HELP, description=HELP + ".")
    parser.add_argument("cassette", metavar="CASSETTE", help="the cassette file (.json, .json.gz, .json.zst) or its s3:// URL")
    parser.add_argument("--json", action="store_true", help="print the parsed cassette as JSON")
    parser.set_defaults(run=run)


def render(path: Location, size: int, document: dict) -> str:
    session = document.get("session") if isinstance(document.get("session"), dict) else {}
    response = document.get("response") if isinstance(document.get("response"), dict) else None
    lines: List[str] = [
        f"{display_path(path)}  (schema {document.get('schema_version')}, "
        f"recorded {session.get('recorded_at', '?')}, {human_size(size)})"
    ]
    line = describe_request(document)
    if response is not None:
        reason = response.get("reason")
        line += f" -> {response.get('status')}" + (f" {reason}" if reason else "")
    if isinstance(session.get("duration_ms"), (int, float)):
        line += f"  ({ms(session['duration_ms'])})"
    lines.append(line)
    request = document.get("request") if isinstance(document.get("request"), dict) else {}
    body = request.get("body")
    if isinstance(body, str) and body:
        shown = body if request.get("body_encoding", "text") == "text" else f"({len(body)} base64 characters)"
        shown = shown if len(shown) <= 100 else shown[:99] + "…"
        truncated = " (stored truncated)" if request.get("body_truncated") else ""
        lines.append(f"request body: {shown}{truncated}")
    error = document.get("error")
    if isinstance(error, dict):
        lines.append(f"error: {error.get('type')}: {error.get('message')}")
    calls = events(document)
    lines.append(f"{len(calls)} call{'s' if len(calls) != 1 else ''}")
    if calls:
        table = [["EID", "METHOD", "NAMESPACE", "DURATION", "ARGUMENTS", "RESULT"]]
        for event in calls:
            signature = event.get("signature") or {}
            table.append(
                [
                    str(event.get("eid", "?")),
                    str(signature.get("method", "?")),
                    str(signature.get("url", "?")),
                    ms(event.get("duration_ms")),
                    _summary.arguments(event),
                    _summary.result(event),
                ]
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            cells = [
                cell.rjust(w) if i in (0, 3) else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths))
            ]
            lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def run(options: argparse.Namespace) -> int:
    loaded = load(location(options.cassette))
    if options.json:
        print(json.dumps(loaded.document, indent=2, ensure_ascii=False))
    else:
        print(render(loaded.path, loaded.size, loaded.document))
    return EXIT_OK
