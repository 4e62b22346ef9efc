"""Library plugins: wrappers that record and replay calls to database drivers.

``enable_pymongo()`` patches PyMongo's classes once (``MongoClient`` and, on PyMongo 4.9+,
``AsyncMongoClient``); ``enable_motor()`` does the same for Motor. The wrappers then act only while
a session is active (see :mod:`timetracer.context`).
"""

from __future__ import annotations


def enable_pymongo() -> None:
    """Record and replay PyMongo calls made while a timetracer session is active. Idempotent."""
    global _pymongo_by_motor
    from timetracer import script
    from timetracer.plugins.pymongo import enable

    enable()
    _pymongo_by_motor = False  # asked for by name: disable_motor() leaves it on
    script.install()


def disable_pymongo() -> None:
    """Restore PyMongo's original methods. Idempotent."""
    from timetracer.plugins.pymongo import disable

    disable()


# Whether enable_motor() turned the PyMongo plugin on (disable_motor() then turns it off again).
_pymongo_by_motor = False


def enable_motor() -> None:
    """Record and replay Motor (``motor.motor_asyncio``) calls made while a session is active.

    Motor runs on PyMongo, so this enables the PyMongo plugin too. Idempotent.
    """
    global _pymongo_by_motor
    from timetracer import script
    from timetracer.plugins import motor, pymongo

    was_enabled = pymongo.is_enabled()
    motor.enable()
    if not was_enabled:
        _pymongo_by_motor = True
    script.install()


def disable_motor() -> None:
    """Restore Motor's original methods (and PyMongo's, if ``enable_motor()`` patched them). Idempotent."""
    global _pymongo_by_motor
    from timetracer.plugins import motor, pymongo

    motor.disable()
    if _pymongo_by_motor:
        _pymongo_by_motor = False
        pymongo.disable()


__all__ = ["disable_motor", "disable_pymongo", "enable_motor", "enable_pymongo"]
