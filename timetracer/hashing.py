"""The stable hash of a call's normalised arguments (``signature.body_hash``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same arguments always give the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def body_hash(args: Any) -> str:
    """A 24-hex-digit SHA-256 prefix of the canonical JSON of ``args``."""
    return hashlib.sha256(canonical_json(args).encode("utf-8", "surrogatepass")).hexdigest()[:24]
