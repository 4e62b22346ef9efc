"""Making timetracer's outcomes visible on a first run, without taking over the app's logging.

Everything timetracer says goes to the ``timetracer`` logger. Python shows nothing below WARNING
until an app configures logging, so on a first run "recorded GET /users/123 → cassettes/..." and the
replay report would be invisible. The rule, applied when a middleware or session is created in
``record`` or ``replay`` mode (never in ``off`` mode, never at import):

- ``TIMETRACER_LOG`` (``debug``, ``info``, ``warning``, ``error`` or ``off``) is the level; unset, it
  is ``info``.
- If the app has not configured logging (no handler on the root logger nor on ``timetracer``),
  timetracer adds one stderr handler to the ``timetracer`` logger and sets that logger's level
  (unless the app set one). The handler writes only while no other handler would receive the
  record: once the app configures logging, even later, timetracer's records go only to the app's
  handlers, at the app's levels (with ``TIMETRACER_LOG`` unset: its root level, or the level it
  gives the ``timetracer`` logger if that differs from the one timetracer set) or at
  ``TIMETRACER_LOG``'s (set).
- If the app has configured logging, no handler is added; an explicit ``TIMETRACER_LOG`` sets the
  ``timetracer`` logger's level (unless the app set one), an unset one changes nothing.
- ``TIMETRACER_LOG=off`` adds nothing and changes nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Union

from timetracer.errors import ConfigError

ENV_LOG = "TIMETRACER_LOG"
LOGGER_NAME = "timetracer"
DEFAULT_LEVEL = logging.INFO
LEVELS: Dict[str, Optional[int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": None,
}

logger = logging.getLogger(LOGGER_NAME)
_lock = threading.Lock()
_handler: Optional[_FirstRunHandler] = None


def requested_level(environ: Optional[Dict[str, str]] = None) -> tuple[Optional[int], bool]:
    """``(level or None for off, explicitly set?)`` from ``TIMETRACER_LOG``."""
    text = (os.environ if environ is None else environ).get(ENV_LOG, "").strip().lower()
    if not text:
        return DEFAULT_LEVEL, False
    if text not in LEVELS:
        raise ConfigError(f"{ENV_LOG}={text!r} is not valid; use one of {', '.join(repr(k) for k in LEVELS)}")
    return LEVELS[text], True


def _configured_elsewhere() -> bool:
    """Whether a handler other than timetracer's own would receive a ``timetracer`` record."""
    current: Optional[logging.Logger] = logger
    while current is not None:
        for handler in current.handlers:
            if handler is not _handler:
                return True
        if not current.propagate:
            return False
        current = current.parent
    return False


class _FirstRunHandler(logging.StreamHandler):
    """Writes ``timetracer`` records to the current ``sys.stderr`` while the app has no logging."""

    def __init__(self, level: int, explicit: bool) -> None:
        super().__init__(sys.stderr)
        self.setLevel(level)
        self.explicit = explicit
        self.logger_level: Optional[int] = None  # the level it gave the timetracer logger, if any
        self.setFormatter(logging.Formatter("%(message)s"))

    @property  # type: ignore[override]
    def stream(self) -> Any:  # sys.stderr as it is now (tests and tools swap it)
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def handle(self, record: logging.LogRecord) -> Any:
        if _configured_elsewhere():
            return False
        return super().handle(record)


class _DeferToApp(logging.Filter):
    """On the ``timetracer`` logger: once the app configures logging, its levels apply again."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _handler is None or _handler.explicit or not _configured_elsewhere():
            return True
        if _handler.logger_level is None or logger.level != _handler.logger_level:
            return True  # the app chose the timetracer logger's level itself: it applies
        parent = logger.parent
        return parent is None or record.levelno >= parent.getEffectiveLevel()


def ensure_visible(environ: Optional[Dict[str, str]] = None) -> None:
    """Apply the rule above (idempotent). Raises :class:`ConfigError` for a bad ``TIMETRACER_LOG``."""
    global _handler
    level, explicit = requested_level(environ)
    if level is None:
        return
    with _lock:
        if _handler is not None:
            return
        if _configured_elsewhere():
            if explicit and logger.level == logging.NOTSET:
                logger.setLevel(level)
            return
        _handler = _FirstRunHandler(level, explicit)
        logger.addHandler(_handler)
        logger.addFilter(_DeferToApp())
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
            _handler.logger_level = level


def reset() -> None:
    """Remove what :func:`ensure_visible` added (for tests)."""
    global _handler
    with _lock:
        if _handler is not None:
            logger.removeHandler(_handler)
            for item in list(logger.filters):
                if isinstance(item, _DeferToApp):
                    logger.removeFilter(item)
            logger.setLevel(logging.NOTSET)
            _handler = None


def shown_path(path: Union[str, Path]) -> str:
    """A path as a user would type it: relative to the working directory when inside it (an
    ``s3://`` location whole)."""
    if str(path).startswith("s3://"):  # an S3Path or URL; no import here (this runs at exit too)
        return str(path)
    target = Path(path)
    try:
        return str(target.absolute().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(target)


def log_recorded(request: Dict[str, Any], path: Union[str, Path], calls: int) -> None:
    """``recorded GET /users/123 → cassettes/GET__users_123.json (3 calls)`` at INFO (a script's
    or explicit session's cassette: ``recorded 3 calls → cassettes/nightly_job.json``)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    method, target = request.get("method"), request.get("path")
    plural = "" if calls == 1 else "s"
    if isinstance(method, str) and isinstance(target, str):
        query = request.get("query")
        what = f"{method} {target}" + (f"?{query}" if isinstance(query, str) and query else "")
        logger.info("timetracer: recorded %s → %s (%d call%s)", what, shown_path(path), calls, plural)
    else:  # a script or an explicit session: the file says what it is
        logger.info("timetracer: recorded %d call%s → %s", calls, plural, shown_path(path))
