"""The cassette document: its schema version, its JSON Schema, and the checks made on load.

Every loaded cassette is checked against the shipped JSON Schema by a small built-in validator
(:mod:`timetracer.cassette._schema_check`; no jsonschema dependency, compiled once), so a bad
file is a :class:`CassetteError` naming the file, the event (``eid``) and the field, never an
unrelated exception deep inside replay.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Union

from timetracer.cassette._schema_check import Checker, SchemaViolation, compile_schema
from timetracer.errors import CassetteError

SCHEMA_VERSION = "1.0"
SUPPORTED_VERSIONS = frozenset({SCHEMA_VERSION})


@lru_cache(maxsize=1)
def load_schema() -> Dict[str, Any]:
    """The JSON Schema (draft 2020-12) every cassette conforms to, read from the package data."""
    text = resources.files("timetracer.cassette").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def schema_checker() -> Checker:
    """The shipped JSON Schema compiled into a checker (raises :class:`SchemaViolation`)."""
    return compile_schema(load_schema())


def where(path: Union[str, Path], document: Any, location: List[Any]) -> str:
    """``cassette X: event eid=N (events[i]), field 'a.b'`` for a location inside ``document``."""
    text = f"cassette {path}"
    if len(location) >= 2 and location[0] == "events" and isinstance(location[1], int):
        index = location[1]
        event = document["events"][index] if isinstance(document, dict) else None
        eid = event.get("eid") if isinstance(event, dict) else None
        eid_text = f"eid={eid}" if isinstance(eid, int) and not isinstance(eid, bool) else "eid unknown"
        text += f": event {eid_text} (events[{index}])"
        location = location[2:]
    if location:
        field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)
        text += f", field {field.lstrip('.')!r}"
    return text


def validate(document: Any, path: Union[str, Path]) -> Dict[str, Any]:
    """Check a loaded cassette against the shipped JSON Schema; raise :class:`CassetteError`.

    The message names the file, the event (``eid``) and the field, and says what was expected.
    """
    if not isinstance(document, dict):
        raise CassetteError(f"cassette {path}: the top level is {type(document).__name__}, not an object")
    version = document.get("schema_version")
    if version is None:
        raise CassetteError(f"cassette {path}: no 'schema_version'; this is not a timetracer cassette")
    if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
        raise CassetteError(
            f"cassette {path}: schema_version {version!r} is not supported; "
            f"this timetracer reads {', '.join(sorted(SUPPORTED_VERSIONS))}"
        )
    events = document.get("events")
    if not isinstance(events, list):
        raise CassetteError(f"cassette {path}: 'events' is missing or not a list")
    for index, event in enumerate(events, start=1):
        if not isinstance(event, dict):
            raise CassetteError(f"cassette {path}: event #{index} is {type(event).__name__}, not an object")
        if not isinstance(event.get("signature"), dict):
            raise CassetteError(f"cassette {path}: event #{index} has no 'signature' object")
        if "result" not in event:
            raise CassetteError(f"cassette {path}: event #{index} has no 'result'")
    try:
        schema_checker()(document)
    except SchemaViolation as exc:
        raise CassetteError(f"{where(path, document, exc.location)}: {exc.problem}") from None
    except RecursionError:
        raise CassetteError(f"cassette {path}: nested too deeply to check") from None
    return document
