"""The cassette document: its schema version, its JSON Schema, and the checks made on load."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Union

from timetracer.errors import CassetteError

# 1.1: a user document whose first key reads as an Extended JSON type marker is stored escaped,
# ``{"$tt_literal": {...}}``. 1.0 cassettes (no escape) are still read and replayed.
SCHEMA_VERSION = "1.1"
SUPPORTED_VERSIONS = frozenset({"1.0", SCHEMA_VERSION})


@lru_cache(maxsize=1)
def load_schema() -> Dict[str, Any]:
    """The JSON Schema (draft 2020-12) every cassette conforms to, read from the package data."""
    text = resources.files("timetracer.cassette").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


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
    return document
