"""The spec's ``signature`` block for a PyMongo call."""

from __future__ import annotations

from typing import Any, Dict

from timetracer.hashing import body_hash
from timetracer.plugins.pymongo._normalize import filter_keys


def signature_for(method: str, url: str, args: Dict[str, Any], *, hashed: bool = True) -> Dict[str, Any]:
    """``{"lib", "method", "url", "query": {"filter_keys"}, "body_hash"}`` for normalised ``args``.

    Recording passes ``hashed=False``: the session fills ``body_hash`` in when it builds the
    cassette, off the app's call path. Replay needs the hash at once, to look the call up.
    """
    found = args.get("filter")
    return {
        "lib": "pymongo",
        "method": method,
        "url": url,
        # A stored filter's keys are strings already (Extended JSON).
        "query": {"filter_keys": list(found) if type(found) is dict else filter_keys(found)},
        "body_hash": body_hash(args) if hashed else None,
    }
