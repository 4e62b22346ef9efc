"""``timetracer validate CASSETTE...``: compression, JSON, schema and stored values of cassettes.

Each file is checked in that order and the first failing stage is reported with every problem it
found (up to a few): the compression (the content matches the file name's suffix and
decompresses), the JSON (it parses), the schema (the shipped JSON Schema,
``timetracer/cassette/schema.json``, plus the checks every load makes) and the values (every stored
argument, result and error detail decodes with the PyMongo plugin's decoder, as replay would).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple

from timetracer.commands._common import (
    EXIT_NEGATIVE,
    EXIT_OK,
    Location,
    display_path,
    expand,
    read_bytes,
)

HELP = "check cassettes: compression, JSON, schema and stored values (exit 1 if any is bad)"

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SHOWN = 5
_warned = False  # "PyMongo is not installed" said once per run


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("validate", help=HELP, description=HELP + ". " + __doc__.split("\n\n")[1])
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="CASSETTE",
        help="cassette files or folders, or s3:// URLs (default: $TIMETRACER_CASSETTE_DIR, else ./cassettes)",
    )
    parser.set_defaults(run=run)


def _compression_problem(path: Location, data: bytes) -> Optional[str]:
    name = path.name
    if data.startswith(_GZIP_MAGIC):
        actual = "gzip"
    elif data.startswith(_ZSTD_MAGIC):
        actual = "zstd"
    else:
        actual = "none"
    expected = "gzip" if name.endswith(".json.gz") else "zstd" if name.endswith(".json.zst") else "none"
    if name.endswith((".json", ".json.gz", ".json.zst")) and actual != expected:
        words = {"gzip": "gzip-compressed", "zstd": "zstd-compressed", "none": "not compressed"}
        return f"compression: the name says {words[expected]}, the content is {words[actual]}"
    return None


def _decompress(data: bytes) -> bytes:
    if data.startswith(_GZIP_MAGIC):
        return gzip.decompress(data)
    if data.startswith(_ZSTD_MAGIC):
        try:
            import zstandard
        except ImportError:
            raise ValueError(
                "zstd cassettes need the zstandard package (pip install timetracer[zstd])"
            ) from None
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 31)
    return data


def _stored_values(document: Dict[str, Any]) -> Iterator[Tuple[str, Any]]:
    """``(where, stored Extended JSON value)`` for every value replay decodes."""
    for index, event in enumerate(document.get("events") or []):
        where = f"events[{index}] (eid {event.get('eid')})"
        if "args" in event:
            yield f"{where}.args", event["args"]
        result = event.get("result") or {}
        body = result.get("body") or {}
        if body.get("captured") and "data" in body:
            yield f"{where}.result.body.data", body["data"]
        error = result.get("error")
        if isinstance(error, dict) and error.get("details") is not None:
            yield f"{where}.result.error.details", error["details"]
        if result.get("assigned_ids") is not None:
            yield f"{where}.result.assigned_ids", result["assigned_ids"]


def value_problems(document: Dict[str, Any]) -> List[str]:
    """Stored values that the PyMongo plugin's decoder cannot turn back into BSON values."""
    if not any((e.get("signature") or {}).get("lib") == "pymongo" for e in document.get("events") or []):
        return []
    try:
        from bson.codec_options import DEFAULT_CODEC_OPTIONS

        from timetracer.plugins.pymongo._values import decode_value
    except ImportError:
        global _warned
        if not _warned:
            print(
                "timetracer validate: PyMongo is not installed; stored values are not checked",
                file=sys.stderr,
            )
            _warned = True
        return []
    problems: List[str] = []
    for where, value in _stored_values(document):
        try:
            decode_value(value, DEFAULT_CODEC_OPTIONS)
        except Exception as exc:  # any failure to decode is what this check reports
            problems.append(f"{where}: {type(exc).__name__}: {exc}")
    return problems


def _event_problems(document: Dict[str, Any]) -> List[str]:
    seen: Dict[Any, int] = {}
    problems = []
    for index, event in enumerate(document.get("events") or []):
        eid = event.get("eid")
        if eid in seen:
            problems.append(f"events[{index}]: eid {eid} repeats events[{seen[eid]}]'s")
        seen[eid] = index
    return problems


def check(path: Location) -> List[str]:
    """Everything wrong with one cassette file (empty when it is valid); the first failing stage."""
    from timetracer.cassette.format import validate
    from timetracer.errors import CassetteError

    data = read_bytes(path)
    problem = _compression_problem(path, data)
    if problem:
        return [problem]
    try:
        text = _decompress(data)
    except Exception as exc:
        return [f"compression: cannot decompress ({exc})"]
    try:
        document = json.loads(text.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return [f"JSON: not valid JSON ({exc})"]
    # The check every load makes: the shipped JSON Schema, first violation named by event and field.
    problems: List[str] = []
    try:
        validate(document, path)
    except CassetteError as exc:
        message, prefix = str(exc), f"cassette {path}"
        if message.startswith(prefix):
            message = message[len(prefix) :].lstrip(":, ")
        problems.append(f"schema: {message}")
    if not problems:
        problems = [f"schema: {line}" for line in _event_problems(document)]
    if problems:
        return problems
    return [f"values: {line}" for line in value_problems(document)]


def run(options: argparse.Namespace) -> int:
    files = expand(options.paths)
    bad = 0
    for path in files:
        problems = check(path)
        name = display_path(path)
        if not problems:
            print(f"ok       {name}")
            continue
        bad += 1
        shown = "; ".join(problems[:_SHOWN])
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        print(f"invalid  {name}: {shown}{more}")
    print(f"{len(files) - bad} valid, {bad} invalid")
    return EXIT_NEGATIVE if bad else EXIT_OK
