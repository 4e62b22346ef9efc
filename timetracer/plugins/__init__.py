"""Library plugins: wrappers that record and replay calls to database drivers.

``enable_pymongo()`` patches PyMongo's classes once; the wrappers then act only while a session
is active (see :mod:`timetracer.context`).
"""

from __future__ import annotations


def enable_pymongo() -> None:
    """Record and replay PyMongo calls made while a timetracer session is active. Idempotent."""
    from timetracer import script
    from timetracer.plugins.pymongo import enable

    enable()
    script.install()


def disable_pymongo() -> None:
    """Restore PyMongo's original methods. Idempotent."""
    from timetracer.plugins.pymongo import disable

    disable()


__all__ = ["disable_pymongo", "enable_pymongo"]
