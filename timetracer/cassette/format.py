"""The cassette document: its schema version, its JSON Schema, and the checks made on load."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Union

from timetracer.errors import CassetteError

SCHEMA_VERSION = "1.0"
SUPPORTED_VERSIONS = frozenset({SCHEMA_VERSION})

_SCHEMA_FILE = Path(__file__).with_name("schema.json")


@lru_cache(maxsize=1)
def load_schema() -> Dict[str, Any]:
    """The JSON Schema (draft 2020-12) every cassette conforms to."""
    with _SCHEMA_FILE.open(encoding="utf-8") as fh:
        return json.load(fh)


def validate(document: Any, path: Union[str, Path]) -> Dict[str, Any]:
    """Check the parts of a loaded cassette that replay relies on; raise :class:`CassetteError`.

    This is the cheap structural check made on every load; the full JSON Schema is for tests
    and tools.
    """
    if not isinstance(document, dict):
        raise CassetteError(f"cassette {path}: the top level is {type(document).__name__}, not an object")
    version = document.get("schema_version")
    if version is None:
        raise CassetteError(f"cassette {path}: no 'schema_version'; this is not a timetracer cassette")
    if version not in SUPPORTED_VERSIONS:
        raise CassetteError(
            f"cassette {path}: schema_version {version!r} is not supported; "
            f"this timetracer reads {', '.join(sorted(SUPPORTED_VERSIONS))}"
        )
    events = document.get("events")
    if not isinstance(events, list):
        raise CassetteError(f"cassette {path}: 'events' is missing or not a list")
    for index, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("signature"), dict) or "result" not in event:
            raise CassetteError(
                f"cassette {path}: event #{index + 1} lacks a 'signature' object or a 'result'"
            )
    return document
