"""Per-request cost of the WSGI middleware around a trivial app (no database calls).

Each request is driven the way a server drives one: call the app, iterate the response, call
``close()``. ``bare`` is the app alone; ``off``, ``record`` (the request's name claimed and its
cassette written, fsync included) and ``replay`` (the request's own recording found and read
through the parse cache) wrap it.
"""

from __future__ import annotations

import tempfile
from typing import Any, Callable, Dict

from benchmarks._timing import interleave, paired_difference, timed

_ENVIRON = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/hello",
    "QUERY_STRING": "",
    "SERVER_NAME": "bench",
    "SERVER_PORT": "80",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "bench",
    "HTTP_USER_AGENT": "timetracer-bench",
    "wsgi.url_scheme": "http",
}


def hello(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Any:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    return lambda data: None


def drive(app: Callable[..., Any], path: str = "/hello") -> None:
    """One request, as a server makes it: call, iterate the response, ``close()``."""
    result = app(dict(_ENVIRON, PATH_INFO=path), _start_response)
    try:
        for _chunk in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def _requests(app: Callable[..., Any], count: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(count):
            drive(app)

    return run


def _timed_requests(app: Callable[..., Any], count: int) -> Callable[[], tuple[float, float]]:
    run = _requests(app, count)
    return lambda: timed(run)


def wsgi(config: Dict[str, Any]) -> Dict[str, Any]:
    from timetracer.config import TraceConfig
    from timetracer.wsgi import TimeTracerMiddleware

    rounds, scale = config["rounds"], config["scale"]
    fast = max(1000, int(5_000 * scale))
    slow = max(20, int(100 * scale))
    with tempfile.TemporaryDirectory(prefix="timetracer-bench-") as folder:

        def middleware(mode: str) -> Any:
            # Every recorded request keeps its own cassette (GET__hello.json, GET__hello~2.json...):
            # no route limit here, so the record runs never turn into unrecorded requests.
            settings = TraceConfig.from_env(
                environ={}, mode=mode, cassette_dir=folder, max_recordings_per_route=0
            )
            return TimeTracerMiddleware(hello, settings)

        replays = slow * 4
        recorder = middleware("record")
        _requests(recorder, replays)()  # the n-th replayed request reads the n-th recording

        def replay_batch() -> None:
            _requests(middleware("replay"), replays)()  # a fresh middleware counts from 1 again

        apps = {
            "bare": (hello, fast),
            "off": (middleware("off"), fast),
            "record": (recorder, slow),
        }
        runs = {name: (_timed_requests(app, n), n) for name, (app, n) in apps.items()}
        runs["replay"] = (lambda: timed(replay_batch), replays)
        series = interleave(rounds, runs)
    out: Dict[str, Any] = {name: s.summary() for name, s in series.items()}
    for name in ("off", "record", "replay"):
        out[name]["added_us"] = paired_difference(series[name], series["bare"])
    return out
