"""The request lifecycle shared by the web middlewares: start a session, finish it exactly once.

:class:`RequestLifecycle` decides for each request whether to record it, replay it or let it pass,
and finishes sessions: it writes the cassette (record) or summarises the replay. The WSGI and the
Django middleware both derive from it. :class:`RequestTrace` is one traced request: its session,
its captured response, and the guarantee that it is finished once whatever the server does.
Nothing that goes wrong here while recording ever reaches the application or the server.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar

from timetracer._body import Body
from timetracer._logging import ensure_visible, log_recorded
from timetracer._recordings import Recordings
from timetracer._request import request_section
from timetracer._response import REDACTED, ResponseCapture
from timetracer._s3path import is_s3
from timetracer.cassette import read_cassette, write_cassette
from timetracer.cassette.naming import Claim
from timetracer.cassette.storage import sweep_temp_files
from timetracer.config import ENV_CASSETTE, ENV_CASSETTE_DIR, ENV_MODE, Mode, TraceConfig
from timetracer.context import activate, deactivate, mark_middleware_installed, mark_replay_configured
from timetracer.errors import CassetteError, ConfigError, TimeTracerError
from timetracer.report import ReplayReport, finish_replay
from timetracer.session import Session

logger = logging.getLogger("timetracer")

# The environ (WSGI) or request.META (Django) key holding the request's Session.
SESSION_KEY = "timetracer.session"
# Sampling draws from its own generator: a draw from the module's shared one would move the
# sequence an app (or its tests) seeded with ``random.seed``, and recording must change nothing
# the app sees. Reseeded in a forked child, as the shared one is, so pre-forked workers do not
# all sample the same requests.
_sampler = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_sampler.seed)

# Added to every replayed response: identical, different (from the recorded response) or mismatch.
REPLAY_HEADER = "X-Timetracer-Replay"

_CONTENT_HEADERS = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}

T = TypeVar("T")

# Reads the request body ahead of the app (swapping the app's stream) once tracing is decided.
BodyReader = Callable[[int], Optional[Body]]

# Traced requests not finished yet. A response its server never closes (a test client's response
# dropped at exit, a server stopped mid-response) is finished at interpreter exit, while imports
# still work, rather than lost.
_pending: weakref.WeakSet[RequestTrace] = weakref.WeakSet()


def finish_pending() -> None:
    """Finish every traced request not finished yet (registered with ``atexit``)."""
    for trace in list(_pending):
        trace.finish()


atexit.register(finish_pending)


# Every middleware made in this process (``timetracer verify`` points them at each cassette).
_instances: weakref.WeakSet[RequestLifecycle] = weakref.WeakSet()


def installed_middlewares() -> List[RequestLifecycle]:
    """The web middlewares (WSGI or Django) created in this process and still alive."""
    return list(_instances)


def request_headers(meta: Mapping[str, Any], redacted: frozenset[str]) -> Dict[str, str]:
    """Request headers from a WSGI environ (or Django ``request.META``): lower-case names, redacted."""
    headers: Dict[str, str] = {}
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        else:
            name = _CONTENT_HEADERS.get(key)  # type: ignore[assignment]
            if name is None or not value:
                continue
        if isinstance(value, str):
            headers[name] = REDACTED if name in redacted else value
    return headers


def replay_failure_text(exc: BaseException) -> str:
    """The body of the 500 sent when a request cannot be replayed: the file, the reason, the fix."""
    return (
        f"timetracer could not replay this request: {exc}\n"
        f"Record it first ({ENV_MODE}=record), or set {ENV_CASSETTE} to the cassette file to replay "
        f"({ENV_CASSETTE_DIR} to the folder of cassettes named after requests).\n"
    )


class RequestTrace:
    """One traced request: its session and captured response, finished exactly once.

    :param owner: the middleware that finishes it.
    :param session: the request's recording or replaying session.

    An adapter calls :meth:`finish` as soon as the response body is complete and *before* it
    hands the last piece of it to the server (``TracedIterable`` does this for WSGI and Django
    streaming bodies), so the cassette is on disk before the client has the whole response.

    Example::

        trace = lifecycle._begin("GET", "/users/1", "", environ)
        result = trace.run(app, environ, start_response)  # session active; errors recorded
        trace.finish()  # body complete: write the cassette, then send the last chunk
    """

    __slots__ = ("__weakref__", "_done", "_lock", "_owner", "capture", "claim", "report", "session")

    def __init__(self, owner: RequestLifecycle, session: Session, claim: Optional[Claim] = None) -> None:
        self._owner = owner
        self.session = session
        self.claim = claim  # the recording's file name, held until the cassette is written
        self.capture = ResponseCapture(owner.config.max_body_bytes)
        self.report: Optional[ReplayReport] = None
        self._done = False
        self._lock = threading.Lock()
        _pending.add(self)

    @property
    def done(self) -> bool:
        return self._done

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """Call ``func`` with the session active; on an exception record it, finish, re-raise it."""
        token = activate(self.session)
        try:
            return func(*args)
        except BaseException as exc:
            self.fail(exc)
            self.finish()
            raise
        finally:
            deactivate(token)

    def fail(self, exc: BaseException) -> None:
        """Record the exception that ended the request (the first one; never ``GeneratorExit``)."""
        if self.session.error is not None or isinstance(exc, GeneratorExit):
            return
        try:
            self.session.record_error(exc)
        except Exception:  # str(exc) itself raised
            self.session.error = {"type": type(exc).__qualname__, "message": "<unprintable>"}

    def complete(self, last: Any = b"") -> None:
        """The response body is complete: count its final piece ``last``, then :meth:`finish`.

        Call it *before* handing ``last`` to the server, so the cassette is on disk before the
        client can have the whole response: ``TracedIterable`` does for WSGI and Django bodies; an
        ASGI adapter does before sending the ``http.response.body`` message with ``more_body``
        false (passing that message's body). Never raises.
        """
        self.capture.feed(last)
        self.finish()

    def finish(self) -> None:
        """Write the cassette or summarise the replay, once, with the session active. Never raises.

        Call it when the response body is complete, before its last piece goes to the server.
        """
        with self._lock:
            if self._done:
                return
            self._done = True
        _pending.discard(self)
        token = activate(self.session)
        try:
            self._owner._finish(self)
        except Exception:
            logger.exception("timetracer: internal error finishing %s", self.session.cassette_path)
        finally:
            deactivate(token)
            if self.claim is not None:
                self.claim.release()


class RequestLifecycle:
    """Start and finish the sessions of requests; the base of the web middlewares.

    :param config: the settings in force, read once.

    Example::

        class Middleware(RequestLifecycle):
            def __call__(self, environ, start_response):
                trace = self._begin(method, path, query, environ)  # None: pass through
    """

    def __init__(self, config: TraceConfig) -> None:
        self.config = config
        self._recording = config.mode is Mode.RECORD
        self._exclude = tuple(config.exclude_paths)
        self._sample_rate = config.sample_rate
        self._redacted = config.redacted_headers
        self._redacted_query = config.redacted_query
        self._recordings = Recordings(config)
        mark_middleware_installed()
        _instances.add(self)
        if config.mode is Mode.REPLAY:
            mark_replay_configured()
        if config.mode is not Mode.OFF:
            ensure_visible()
        self._check_storage()

    def _check_storage(self) -> None:
        """At startup: a fixed replay cassette must exist; recording sweeps stale temp files."""
        fixed = self.config.cassette
        if self.config.mode is Mode.REPLAY and fixed is not None and not fixed.is_file():  # s3://: a HEAD
            what = "is a directory, not a file" if not is_s3(fixed) and fixed.is_dir() else "does not exist"
            raise ConfigError(
                f"{ENV_CASSETTE}={str(fixed)!r}: the cassette {what}; record it first "
                f"({ENV_MODE}=record) or point {ENV_CASSETTE} at an existing cassette file"
            )
        if self._recording and not is_s3(fixed or self.config.cassette_dir):  # S3: nothing staged
            folder = Path(fixed).parent if fixed is not None else Path(self.config.cassette_dir)
            try:
                sweep_temp_files(folder)
            except Exception:  # never stop an app from starting over housekeeping
                logger.exception("timetracer: could not sweep temp files in %s", folder)

    # -- start -------------------------------------------------------------------------------

    def _begin(
        self,
        method: str,
        path: str,
        query: str,
        meta: Mapping[str, Any],
        read_body: Optional[BodyReader] = None,
        *,
        decided: bool = False,
    ) -> Optional[RequestTrace]:
        """Start tracing a request, or return ``None`` to let it pass untouched.

        ``read_body(limit)`` is called once the request is traced: it reads the body ahead of the
        application (which then reads the same bytes from a buffered stream) and returns it.
        ``decided``: the caller already asked :meth:`_should_trace` (and got True), so the
        excluded-path and sampling decision is not made again.

        Raises :class:`TimeTracerError` (logged) when a replay cannot start: the adapter answers
        with a 500 built by :func:`replay_failure_text`.
        """
        if not decided and not self._should_trace(path):
            return None
        if self._recording:
            try:
                request = self._request(method, path, query, meta, read_body)
                target, claim = self.config.cassette, None
                if target is None:
                    claim = self._recordings.claim(request)
                    if claim is None:  # the route holds all the recordings it may keep
                        return None
                    target = claim.target
                session = Session(self.config, Mode.RECORD, cassette_path=target, request=request)
            except Exception as exc:
                logger.exception("timetracer: cannot record %s %s (%s); it runs unrecorded", method, path, exc)
                return None
            return RequestTrace(self, session, claim)
        try:
            request = self._request(method, path, query, meta, read_body)
            return RequestTrace(self, self._start_replay(request))
        except TimeTracerError as exc:
            logger.error("timetracer: cannot replay %s %s: %s", method, path, exc)
            raise

    def _should_trace(self, path: str) -> bool:
        """Whether a request to ``path`` is traced: not an excluded path and, when recording,
        picked by ``TIMETRACER_SAMPLE_RATE`` (a draw from timetracer's own generator, never from
        the ``random`` module's shared one; none at a rate of 1)."""
        if path.startswith(self._exclude):
            return False
        rate = self._sample_rate
        return not self._recording or rate >= 1.0 or _sampler.random() < rate

    def _request(
        self,
        method: str,
        path: str,
        query: str,
        meta: Mapping[str, Any],
        read_body: Optional[BodyReader],
    ) -> Dict[str, Any]:
        """The cassette's ``request`` object; reads the body ahead of the app (see ``_begin``)."""
        headers = request_headers(meta, self._redacted)
        body = None
        if read_body is not None:
            try:
                body = read_body(self.config.max_body_bytes)
            except Exception:  # the stream was not swapped: the app reads it as sent
                logger.exception("timetracer: could not capture the body of %s %s", method, path)
        return request_section(method, path, query, headers, body, self._redacted_query)

    def _start_replay(self, request: Dict[str, Any]) -> Session:
        source, document = self._load_replay(request)
        try:
            return Session(
                self.config,
                Mode.REPLAY,
                cassette_path=source,
                cassette=document,
                request=request,
            )
        except Exception as exc:
            raise CassetteError(f"cassette {source}: cannot replay it ({exc})") from exc

    def _load_replay(self, request: Dict[str, Any]) -> Tuple[Path, Dict[str, Any]]:
        """``config.cassette``, or the recording of this very request in ``cassette_dir``, loaded.

        See :class:`~timetracer._recordings.Recordings` for how the recording is found.
        """
        if self.config.cassette is not None:
            return self.config.cassette, read_cassette(self.config.cassette, self.config.max_cassette_bytes)
        return self._recordings.find(request)

    # -- finish ------------------------------------------------------------------------------

    def _finish(self, trace: RequestTrace) -> None:
        session = trace.session
        capture = trace.capture
        if session.recording:
            if self.config.errors_only and session.error is None and (capture.status or 0) < 500:
                return
            session.response = capture.to_dict(self._redacted)
            self._write(session)
        else:
            session.response = capture.to_dict(self._redacted)
            trace.report = self._finish_replay(session)

    def _write(self, session: Session) -> None:
        target = session.cassette_path
        try:
            document = session.to_cassette(for_writing=True)
            config = self.config
            if is_s3(target):  # encoded now, uploaded in the background: the response never waits
                from timetracer.cassette._s3 import upload_later

                upload_later(target, document, config.compression)  # type: ignore[arg-type]
            else:
                write_cassette(target, document, config.compression, file_mode=config.file_mode)  # type: ignore[arg-type]
        except Exception as exc:
            logger.error("timetracer: could not write cassette %s: %s", target, exc, exc_info=True)
            return
        log_recorded(session.request, target, len(document["events"]))  # type: ignore[arg-type]

    def _finish_replay(self, session: Session) -> ReplayReport:
        """Log the replay report (calls matched, unused, response identical or not) and return it."""
        return finish_replay(session, raise_on_strict=False)
