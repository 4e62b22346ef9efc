"""Timetracer: record the MongoDB calls an app makes, replay them with no database.

The public surface is small: :class:`TraceConfig` for settings, the WSGI and ASGI middlewares in
:mod:`timetracer.wsgi` and :mod:`timetracer.asgi`, framework adapters in
:mod:`timetracer.integrations`, and the PyMongo and Motor plugins in :mod:`timetracer.plugins`.
"""

from __future__ import annotations

from timetracer.config import Compression, Mode, TraceConfig
from timetracer.errors import (
    CassetteError,
    CassetteNotFoundError,
    ConfigError,
    ReplayMismatchError,
    ReplayUnsupportedError,
    TimeTracerError,
)

__version__ = "0.1.0"

from timetracer.api import record, replay

__all__ = [
    "CassetteError",
    "CassetteNotFoundError",
    "Compression",
    "ConfigError",
    "Mode",
    "ReplayMismatchError",
    "ReplayUnsupportedError",
    "TimeTracerError",
    "TraceConfig",
    "__version__",
    "record",
    "replay",
]
