"""PyMongo plugin: record and replay the synchronous driver's calls.

:func:`enable` patches PyMongo's classes once (so clients created before it are covered too);
every wrapper first looks at the active session and, with none, calls PyMongo's own method
untouched. :func:`disable` puts the original methods back exactly.
"""

from __future__ import annotations

from timetracer.plugins.pymongo._patch import disable, enable, is_enabled

__all__ = ["disable", "enable", "is_enabled"]
