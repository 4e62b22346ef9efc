"""``timetracer verify --app MODULE:ATTR [PATH ...]``: replay recorded requests against the app.

Every cassette recorded from a web request is sent again to the WSGI application, in this process,
with no database: the app's own timetracer middleware (``auto_setup``, ``TimeTracerMiddleware``, the
Django middleware) runs in replay mode and answers its PyMongo calls from that cassette. One line
per cassette: ``identical``, ``different`` (the response changed; the first differences follow) or
``mismatch`` (the app made a call the cassette does not hold), or ``skipped`` with the reason.
Exit status 1 when any verified cassette is not identical (or none could be verified).

How the app is set up: ``TIMETRACER_MODE=replay`` is set before the module is imported (with
``TIMETRACER_CASSETTE`` naming the first cassette), the PyMongo plugin is enabled, and the current
folder is put first on ``sys.path``. The middleware the app installs itself is used, pointed at each
cassette in turn; an app with none is wrapped in :class:`~timetracer.wsgi.TimeTracerMiddleware`.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import importlib
import io
import logging
import os
import sys
import traceback
from typing import Any, Dict, List, Optional, Tuple

from timetracer.commands._common import (
    EXIT_NEGATIVE,
    EXIT_OK,
    CommandError,
    Loaded,
    describe_request,
    display_path,
    expand,
    load,
)

HELP = "replay every recorded request against a WSGI app, no database (exit 1 if any is not identical)"

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
IDENTICAL, DIFFERENT, MISMATCH, SKIPPED = "identical", "different", "mismatch", "skipped"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("verify", help=HELP, description=HELP + ".")
    parser.add_argument("--app", required=True, metavar="MODULE:ATTR", help="the WSGI app, e.g. app:app")
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="cassette files or folders, or s3:// URLs (default: $TIMETRACER_CASSETTE_DIR, else ./cassettes)",
    )
    parser.set_defaults(run=run)


@dataclasses.dataclass
class Outcome:
    verdict: str
    reason: str = ""


# -- the app ---------------------------------------------------------------------------------


def import_app(spec: str) -> Any:
    """``MODULE:ATTR`` imported with the current folder first on ``sys.path``."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CommandError(f"--app {spec!r}: give MODULE:ATTR, e.g. --app app:app")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        where = _app_frame(exc)
        raise CommandError(
            f"--app {spec}: cannot import {module_name!r}: {type(exc).__name__}: {exc}{where}"
        ) from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CommandError(f"--app {spec}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise CommandError(f"--app {spec}: {attr!r} is a {type(target).__name__}, not a WSGI application")
    return target


def _app_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or isinstance(exc, ModuleNotFoundError):
        return ""
    last = frames[-1]
    return f" (at {last.filename}:{last.lineno})"


def middlewares_for(app: Any) -> Tuple[Any, List[Any], bool]:
    """The callable to send requests to, the timetracer middlewares to point at each cassette, and
    whether verify had to add one itself."""
    from timetracer._lifecycle import installed_middlewares
    from timetracer.config import Mode, TraceConfig
    from timetracer.wsgi import TimeTracerMiddleware

    found = installed_middlewares()
    added = False
    if not found:
        app = TimeTracerMiddleware(app, TraceConfig.from_env(mode="replay"))
        found = [app]
        added = True
    for middleware in found:
        if middleware.config.mode is not Mode.REPLAY:
            raise CommandError(
                f"the app's timetracer middleware is set to mode {middleware.config.mode.value!r} in code; "
                "verify needs it to follow TIMETRACER_MODE (do not pass mode= in its config)"
            )
    return app, found, added


# -- one request -----------------------------------------------------------------------------


def _body(request: Dict[str, Any]) -> Optional[bytes]:
    body = request.get("body")
    if body is None:
        return b""
    if request.get("body_encoding") == "base64":
        return base64.b64decode(str(body))
    return str(body).encode("utf-8")


def _redacted(request: Dict[str, Any]) -> bool:
    """Whether the stored query string or body holds values redacted when it was recorded."""
    from timetracer._response import REDACTED

    texts = (request.get("query"), request.get("body"))
    return any(isinstance(text, str) and (REDACTED in text or "%5BREDACTED%5D" in text) for text in texts)


def skip_reason(document: Dict[str, Any]) -> Optional[str]:
    """Why a cassette cannot be verified, or ``None``."""
    request = document.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("method"), str) or "path" not in request:
        return "not a web request (recorded by a script or test)"
    headers = request.get("headers") if isinstance(request.get("headers"), dict) else {}
    length = str(headers.get("content-length") or "0")
    has_body = request["method"].upper() in BODY_METHODS or (length.isdigit() and int(length) > 0)
    if "body" not in request and has_body:
        return "no request body stored"
    if request.get("body_truncated"):
        return "request body stored truncated"
    return None


def environ_for(request: Dict[str, Any], errors: io.StringIO) -> Dict[str, Any]:
    """A WSGI environ for the recorded request (headers stored redacted are left out)."""
    from timetracer._response import REDACTED

    body = _body(request) or b""
    path = str(request.get("path") or "/")
    environ: Dict[str, Any] = {
        "REQUEST_METHOD": str(request.get("method")).upper(),
        "SCRIPT_NAME": "",
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),  # as a server passes it
        "QUERY_STRING": str(request.get("query") or ""),
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": errors,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    headers = request.get("headers") if isinstance(request.get("headers"), dict) else {}
    for name, value in headers.items():
        if value == REDACTED or not isinstance(value, str):
            continue
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ[f"HTTP_{key}"] = value
    if body or "CONTENT_LENGTH" in environ:
        environ["CONTENT_LENGTH"] = str(len(body))
    host = headers.get("host")
    if isinstance(host, str) and host:
        environ["SERVER_NAME"] = host.split(":")[0]
    return environ


_MISMATCH_LOG = "timetracer replay mismatch: "


class _Errors(logging.Handler):
    """Keeps, while a request runs, the replay mismatches timetracer logs (even those the app
    catches) and the timetracer exceptions the framework logs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        from timetracer.errors import TimeTracerError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, TimeTracerError):
            self.messages.append(str(exc))
        elif record.name == "timetracer":
            text = record.getMessage()
            if text.startswith(_MISMATCH_LOG):
                self.messages.append(text[len(_MISMATCH_LOG) :])


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _miss_reason(message: str) -> str:
    """A replay mismatch in one line: what had no match, and its first difference from the nearest."""
    lines = [line.strip() for line in message.strip().splitlines()]
    if not lines:
        return message
    differences = [line for line in lines[1:] if " != " in line]
    return f"{lines[0]}; nearest differs in {differences[0]}" if differences else lines[0]


def send(app: Any, loaded: Loaded) -> Outcome:
    """Replay one cassette's request through ``app``; the outcome and its reason."""
    from timetracer._lifecycle import REPLAY_HEADER, SESSION_KEY
    from timetracer.errors import TimeTracerError
    from timetracer.report import build_report

    document = loaded.document
    request = document["request"]
    errors = io.StringIO()
    environ = environ_for(request, errors)
    held: Dict[str, Any] = {}

    def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        held["status"], held["headers"] = status, headers
        return lambda data: None

    capture = _Errors()
    root = logging.getLogger()
    root.addHandler(capture)
    raised: Optional[BaseException] = None
    try:
        result = app(environ, start_response)
        try:
            for _ in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except Exception as exc:  # the app raised: compared with what the recording ended in
        raised = exc
    finally:
        root.removeHandler(capture)
    session = environ.get(SESSION_KEY)
    if session is None or not getattr(session, "replaying", False):
        return Outcome(SKIPPED, "the app's timetracer middleware did not trace this request (excluded path?)")
    report = build_report(session)
    verdict = dict((k.lower(), v) for k, v in held.get("headers") or []).get(REPLAY_HEADER.lower())
    if isinstance(raised, TimeTracerError):
        capture.messages.append(str(raised))
    if report.mismatches or capture.messages:
        detail = (
            _miss_reason(capture.messages[0]) if capture.messages else f"{report.mismatches} calls unmatched"
        )
        return Outcome(MISMATCH, detail)
    if raised is not None:
        recorded = (document.get("error") or {}).get("type", "")
        name = f"{type(raised).__module__}.{type(raised).__qualname__}"
        if recorded == name:
            return Outcome(IDENTICAL, f"raised {type(raised).__name__} as recorded")
        return Outcome(DIFFERENT, f"the app raised {type(raised).__name__}: {_first_line(str(raised))}")
    if verdict == MISMATCH:
        return Outcome(MISMATCH, report.line())
    if report.response == DIFFERENT or verdict == DIFFERENT:
        return Outcome(DIFFERENT, "; ".join(report.response_diff[:3]) or "the response differs")
    calls = report.exact + report.fallback
    note = f", {report.fallback} by fallback" if report.fallback else ""
    unused = f", {len(report.unused)} recorded calls unused" if report.unused else ""
    return Outcome(IDENTICAL, f"{calls} call{'s' if calls != 1 else ''} replayed{note}{unused}")


# -- the command -----------------------------------------------------------------------------


def run(options: argparse.Namespace) -> int:
    cassettes = [load(path) for path in expand(options.paths)]
    # Before the app is imported: its middleware and its clients are made for replay.
    os.environ["TIMETRACER_MODE"] = "replay"
    os.environ["TIMETRACER_CASSETTE"] = str(cassettes[0].path.absolute())
    os.environ.setdefault("TIMETRACER_LOG", "off")  # verify prints its own line per cassette
    from timetracer.plugins import enable_pymongo

    try:
        enable_pymongo()
    except ImportError:
        raise CommandError("verify needs PyMongo (pip install timetracer[pymongo])") from None
    app, middlewares, added = middlewares_for(import_app(options.app))
    if added:
        print(f"note: {options.app} has no timetracer middleware; verify wrapped it in TimeTracerMiddleware")
    counts: Dict[str, int] = {IDENTICAL: 0, DIFFERENT: 0, MISMATCH: 0, SKIPPED: 0}
    bases = {id(m): m.config for m in middlewares}
    for loaded in cassettes:
        reason = skip_reason(loaded.document)
        if reason is not None:
            outcome = Outcome(SKIPPED, reason)
        else:
            for middleware in middlewares:
                middleware.config = dataclasses.replace(bases[id(middleware)], cassette=loaded.path)
            outcome = send(app, loaded)
            if outcome.verdict in (DIFFERENT, MISMATCH) and _redacted(loaded.document["request"]):
                outcome.reason += "; note: the request was stored with [REDACTED] values, re-sent as such"
        counts[outcome.verdict] += 1
        line = f"{outcome.verdict:<9} {display_path(loaded.path)}  {describe_request(loaded.document)}"
        if outcome.reason:
            line += f": {outcome.reason}"
        print(line, flush=True)
    verified = len(cassettes) - counts[SKIPPED]
    print(
        f"{len(cassettes)} cassette{'s' if len(cassettes) != 1 else ''}: "
        + ", ".join(f"{n} {name}" for name, n in counts.items())
    )
    if verified == 0:
        print("nothing was verified", file=sys.stderr)
        return EXIT_NEGATIVE
    return EXIT_OK if counts[DIFFERENT] == counts[MISMATCH] == 0 else EXIT_NEGATIVE
