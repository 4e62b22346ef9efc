"""The end-of-replay report: how calls were matched, what was left unused, and whether the app's
response equals the recorded one.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

from timetracer._request import describe, request_differences
from timetracer.diff import diff_values
from timetracer.errors import ReplayMismatchError

if TYPE_CHECKING:
    from timetracer.session import Session

logger = logging.getLogger("timetracer")

IDENTICAL = "identical"
DIFFERENT = "different"
MISMATCH = "mismatch"


@dataclass
class ReplayReport:
    """What one replayed request or session did."""

    cassette: str
    exact: int = 0
    fallback: int = 0
    mismatches: int = 0
    unused: List[Dict[str, Any]] = field(default_factory=list)
    response: Optional[str] = None  # identical, different, or None when not compared
    response_diff: List[str] = field(default_factory=list)
    request_note: Optional[str] = None
    strict: bool = False

    @property
    def verdict(self) -> str:
        """``mismatch`` if a call had no recorded match, else how the response compared."""
        if self.mismatches or (self.strict and (self.unused or self.fallback)):
            return MISMATCH
        if self.request_note and self.response != DIFFERENT:
            return DIFFERENT  # answered from a recording of another request (a fixed cassette)
        return self.response or IDENTICAL

    def line(self) -> str:
        parts = [
            f"timetracer replay {self.cassette}: {self.exact} calls matched exactly",
            f"{self.fallback} by fallback",
            f"{self.mismatches} unmatched",
            f"{len(self.unused)} recorded calls unused",
        ]
        if self.response is not None:
            detail = f"response {self.response}"
            if self.response_diff:
                detail += " (" + "; ".join(self.response_diff[:3]) + ")"
            parts.append(detail)
        if self.request_note:
            parts.append(self.request_note)
        return ", ".join(parts)


def _body_bytes(body: Dict[str, Any]) -> bytes:
    data = body.get("data", "")
    if body.get("encoding") == "base64":
        return base64.b64decode(data)
    return str(data).encode("utf-8")


def _is_json(headers: Any) -> bool:
    for name, value in headers or ():
        if str(name).lower() == "content-type":
            return "json" in str(value).lower()
    return False


def _without(value: Any, ignore: frozenset[str], path: str) -> Any:
    """``value`` with the ignored fields removed: plain names anywhere, dotted names as paths from
    the body's root (``data.token`` or ``body.data.token``)."""
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key in ignore or sub in ignore or f"body.{sub}" in ignore:
                continue
            kept[key] = _without(item, ignore, sub)
        return kept
    if isinstance(value, list):
        return [_without(item, ignore, path) for item in value]
    return value


def compare_responses(
    recorded: Dict[str, Any], live: Dict[str, Any], ignore: Iterable[str] = ()
) -> List[str]:
    """Differences between a recorded and a live response (empty when they are the same).

    Status and body are compared, headers are not (``Date``, ``Server`` and cookies change from run
    to run). In a JSON body the ``ignore`` fields (``TIMETRACER_IGNORE_FIELDS``) are left out of the
    comparison: plain names wherever they appear, dotted names as paths from the body's root.
    """
    out: List[str] = []
    if recorded.get("status") != live.get("status"):
        out.append(f"status: {live.get('status')} != {recorded.get('status')}")
    rec_body, live_body = recorded.get("body") or {}, live.get("body") or {}
    rec_bytes, live_bytes = _body_bytes(rec_body), _body_bytes(live_body)
    if rec_body.get("truncated") or live_body.get("truncated"):
        if rec_body.get("size") != live_body.get("size"):
            out.append(f"body size: {live_body.get('size')} != {rec_body.get('size')}")
        limit = min(len(rec_bytes), len(live_bytes))
        rec_bytes, live_bytes = rec_bytes[:limit], live_bytes[:limit]
    if rec_bytes == live_bytes:
        return out
    if _is_json(recorded.get("headers")) and _is_json(live.get("headers")):
        try:
            recorded_json, live_json = json.loads(rec_bytes), json.loads(live_bytes)
        except ValueError:  # not JSON after all (or cut by the size limit): compare the bytes
            pass
        else:
            # Empty when it is the same JSON with different spacing or key order.
            ignored = frozenset(ignore)
            if ignored:
                recorded_json = _without(recorded_json, ignored, "")
                live_json = _without(live_json, ignored, "")
            out.extend(diff_values(recorded_json, live_json, prefix="body"))
            return out
    out.append(f"body: {len(live_bytes)} bytes differ from the recorded {len(rec_bytes)} bytes")
    return out


def build_report(session: Session) -> ReplayReport:
    replayer = session.replayer
    report = ReplayReport(cassette=str(session.cassette_path), strict=session.config.strict)
    if replayer is not None:
        report.exact = replayer.matched_exact
        report.fallback = getattr(replayer, "matched_fallback", 0)
        report.mismatches = getattr(replayer, "mismatches", 0)
        report.unused = replayer.unused()
    cassette = session.cassette or {}
    recorded = cassette.get("response")
    if recorded is not None and session.response is not None:
        report.response_diff = compare_responses(recorded, session.response, session.config.ignore_fields)
        report.response = DIFFERENT if report.response_diff else IDENTICAL
    rec_request = cassette.get("request") or {}
    live = session.request or {}
    if "method" in live and "path" in rec_request:
        differences = request_differences(rec_request, live, session.config.redacted_query)
        if differences:
            report.request_note = (
                f"request {describe(live)} replayed from a cassette recorded for {describe(rec_request)} "
                f"({'; '.join(differences)})"
            )
    return report


def finish_replay(session: Session, raise_on_strict: bool = True) -> ReplayReport:
    """Log the report; in strict mode, raise when recorded calls were left unused."""
    report = build_report(session)
    logger.log(logging.WARNING if report.verdict != IDENTICAL else logging.INFO, "%s", report.line())
    for event in report.unused:
        sig = event.get("signature", {})
        logger.debug(
            "timetracer replay %s: unused recorded call eid=%s %s on %s args=%s",
            report.cassette,
            event.get("eid"),
            sig.get("method"),
            sig.get("url"),
            json.dumps(event.get("args"), default=str)[:300],
        )
    if session.config.strict and report.unused and raise_on_strict:
        listed = "\n".join(
            f"  eid={e.get('eid')} {e.get('signature', {}).get('method')} on {e.get('signature', {}).get('url')}"
            for e in report.unused[:10]
        )
        raise ReplayMismatchError(
            f"strict replay of {report.cassette}: {len(report.unused)} recorded calls were never made:\n{listed}"
        )
    return report
