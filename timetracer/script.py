"""Script mode: PyMongo calls made outside any request or explicit session, for ETL jobs and tools.

With ``TIMETRACER_MODE=record`` (set even after importing timetracer, before the first PyMongo
call), calls made outside a request go into one process-level session named after the script
(``etl_script.py`` → ``{TIMETRACER_CASSETTE_DIR}/etl_script.json``, or ``TIMETRACER_CASSETTE``),
written when the process exits. With ``replay`` they are answered from that cassette. The mode is
decided at the first such call. In a process with a web middleware, calls outside requests are
left alone: they belong to no request.
"""

from __future__ import annotations

import atexit
import sys
import threading
from pathlib import Path
from typing import Optional

from timetracer import context
from timetracer.config import Mode, TraceConfig
from timetracer.session import Session

_lock = threading.Lock()
# The process-level session once decided (None until the first call outside a session).
_session: Optional[Session] = None


def script_name() -> str:
    """The running script's name without suffix (``python etl_script.py`` → ``etl_script``)."""
    argv0 = sys.argv[0] if sys.argv else ""
    stem = Path(argv0).stem if argv0 not in ("", "-c", "-m", "-") else ""
    return stem or "script"


def _resolve() -> Optional[Session]:
    """Decide, once, whether calls outside a session are recorded, replayed, or left alone."""
    global _session
    # Checked first, every time: the session may have been decided before the middleware was
    # created (a MongoClient made at import, before the app is wrapped, can already ask for it).
    if context.middleware_installed:
        return None
    if _session is not None:
        return _session
    with _lock:
        if _session is not None:
            return _session
        config = TraceConfig.from_env()
        if config.mode is Mode.OFF:
            context.set_fallback(None)  # decided: from now on the check costs nothing
            return None
        from timetracer import api
        from timetracer._logging import ensure_visible

        ensure_visible()
        if config.mode is Mode.RECORD:
            path = (
                config.cassette
                if config.cassette
                else api.resolve_name(script_name(), config, for_writing=True)
            )
            session = Session(config, Mode.RECORD, cassette_path=path, request={"name": script_name()})
            atexit.register(_save_at_exit, session)
        else:
            from timetracer.cassette import read_cassette
            from timetracer.report import finish_replay

            path = (
                config.cassette
                if config.cassette
                else api.resolve_name(script_name(), config, for_writing=False)
            )
            session = Session(
                config,
                Mode.REPLAY,
                cassette_path=path,
                cassette=read_cassette(path, config.max_cassette_bytes),
                request={"name": script_name()},
            )
            atexit.register(finish_replay, session, False)
        _session = session
        return session


def _save_at_exit(session: Session) -> None:
    """Write the script's cassette, unless a web middleware took over before anything was recorded."""
    from timetracer import api

    if context.middleware_installed and not session.events:
        return
    api.save(session)


def decided() -> Optional[Session]:
    """The process-level session if script mode has already started one; never decides it."""
    return _session


def install() -> None:
    """Turn script mode on (called by ``enable_pymongo()``); the mode is read at the first call."""
    if _session is None:
        context.set_fallback(_resolve)


def reset() -> None:
    """Forget the process-level session (for tests)."""
    global _session
    with _lock:
        _session = None
    context.set_fallback(None)
