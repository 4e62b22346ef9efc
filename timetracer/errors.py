"""Errors raised by timetracer.

Every error derives from :class:`TimeTracerError` and, where it is natural, from the builtin
a caller would already catch (a missing cassette is also a ``FileNotFoundError``).
"""

from __future__ import annotations


class TimeTracerError(Exception):
    """Base class of every error timetracer raises."""


class ConfigError(TimeTracerError, ValueError):
    """A setting (argument or ``TIMETRACER_*`` variable) has a value timetracer cannot use."""


class CassetteError(TimeTracerError, ValueError):
    """A cassette file cannot be read or written: corrupt, truncated, unknown version."""


class CassetteNotFoundError(CassetteError, FileNotFoundError):
    """No cassette exists where one was looked for."""


class ReplayMismatchError(TimeTracerError, AssertionError):
    """A call made during replay has no matching recorded call in the cassette."""


class ReplayUnsupportedError(TimeTracerError, NotImplementedError):
    """A PyMongo method timetracer does not replay was called during replay."""
