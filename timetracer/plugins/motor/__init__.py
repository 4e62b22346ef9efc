"""Motor plugin: record and replay the calls made through ``motor.motor_asyncio``.

Motor runs PyMongo on a thread pool; :func:`enable` wraps Motor's own methods and cursors (so it
works whether Motor was imported before or after) around the PyMongo plugin's core, and enables
the PyMongo plugin too. Events are the PyMongo plugin's: a cassette recorded through Motor replays
through ``MongoClient`` or ``AsyncMongoClient`` and the other way round.
"""

from __future__ import annotations

from timetracer.plugins.motor._patch import disable, enable, is_enabled

__all__ = ["disable", "enable", "is_enabled"]
