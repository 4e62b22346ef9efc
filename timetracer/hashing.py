"""The stable hash of a call's normalised arguments (``signature.body_hash``)."""

from __future__ import annotations

import hashlib
import json
from json import encoder as _encoder
from typing import Any, Callable, Optional

_OPTIONS = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False, "allow_nan": True}


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_fast() -> Optional[Callable[[Any, int], Any]]:
    # json.dumps builds a new encoder on every call; for the small argument documents hashed on
    # every PyMongo call that setup is most of the cost, so build CPython's C encoder once.
    make = getattr(_encoder, "c_make_encoder", None)
    if make is None:
        return None
    return make(None, _not_json, _encoder.encode_basestring, None, ":", ",", True, False, True)  # type: ignore[no-any-return]


_fast = _make_fast()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same arguments always give the same text."""
    if _fast is not None:
        try:
            return "".join(_fast(value, 0))
        except RecursionError:
            pass  # no circular-reference check in the fast path: let json.dumps report it
    return json.dumps(value, **_OPTIONS)  # type: ignore[arg-type]


def _builtin_sha256() -> Callable[[bytes], Any]:
    # CPython's own SHA-256 gives the same digest as OpenSSL's without OpenSSL 3's per-call
    # lookup cost, which dominates for the short texts hashed here.
    for name in ("_sha2", "_sha256"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        function = getattr(module, "sha256", None)
        if function is not None:
            return function  # type: ignore[no-any-return]
    return hashlib.sha256


_sha256 = _builtin_sha256()


def body_hash(args: Any) -> str:
    """A 24-hex-digit SHA-256 prefix of the canonical JSON of ``args``."""
    return _sha256(canonical_json(args).encode("utf-8", "surrogatepass")).hexdigest()[:24]
