"""Logging of failures inside timetracer's own capture code, which never reach the app.

Recording is transparent: when normalising arguments, storing a result or describing an exception
fails, the app's call goes on untouched and the failure is logged here: a WARNING the first time a
kind of failure happens in the process (with its traceback at DEBUG), DEBUG after that, so a
request loop does not flood the log.
"""

from __future__ import annotations

import logging
import threading
from typing import Set, Tuple

logger = logging.getLogger("timetracer")

_seen: Set[Tuple[str, str]] = set()
_lock = threading.Lock()


def capture_failed(what: str, exc: BaseException) -> None:
    """Log that ``what`` (e.g. ``"arguments of insert_one on shop.items"``) could not be recorded."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    where = what.split(" on ", 1)[0]
    with _lock:
        first = (where, kind) not in _seen
        _seen.add((where, kind))
    message = "timetracer: %s could not be recorded (%s: %s); the call went on untouched"
    if first:
        logger.warning(message + " (further failures of this kind are logged at DEBUG)", what, kind, exc)
    else:
        logger.debug(message, what, kind, exc)
    logger.debug("timetracer: capture failure detail", exc_info=exc)


def reset() -> None:
    """Forget which failures were logged (for tests)."""
    with _lock:
        _seen.clear()
