"""Flask adapter: put :class:`timetracer.wsgi.TimeTracerMiddleware` around a Flask app in one call.

``auto_setup(app)`` wraps ``app.wsgi_app`` (so Flask's own request handling, error handlers and
teardown all run inside the recorded or replayed session) and registers the middleware as
``app.extensions["timetracer"]``. The app is never kept anywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, TypeVar

from timetracer.wsgi import TimeTracerMiddleware

if TYPE_CHECKING:
    from flask import Flask

    from timetracer.config import TraceConfig

    AppT = TypeVar("AppT", bound=Flask)

EXTENSION_KEY = "timetracer"

__all__ = ["EXTENSION_KEY", "auto_setup"]


def auto_setup(app: AppT, config: Optional[TraceConfig] = None) -> AppT:
    """Record or replay the MongoDB calls of ``app``'s requests; return ``app``.

    :param app: the Flask application.
    :param config: the settings; by default ``TraceConfig.from_env()`` (``TIMETRACER_*`` variables).

    Raises ``RuntimeError`` if ``app`` is already set up.

    Example::

        app = auto_setup(Flask(__name__))
    """
    if EXTENSION_KEY in app.extensions:
        raise RuntimeError(
            f"timetracer is already set up on Flask app {app.name!r}: call auto_setup(app) once per "
            "app; to change settings, pass config= to that one call (or set TIMETRACER_* variables)"
        )
    middleware = TimeTracerMiddleware(app.wsgi_app, config)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    app.extensions[EXTENSION_KEY] = middleware
    return app
