"""First-run visibility: record and replay say what they did on stderr when the app has not
configured logging, and step aside when it has (``timetracer/_logging.py`` has the rule)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Optional

import pytest

from .conftest import Recorded, example_env

# A WSGI app behind the middleware, called twice (record) with logging set up as BEFORE/AFTER say.
WSGI_SCRIPT = textwrap.dedent(
    """
    import io, logging, sys
    from timetracer.wsgi import TimeTracerMiddleware

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def call(path):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "wsgi.input": io.BytesIO(),
                   "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr}
        body = middleware(environ, lambda status, headers, exc_info=None: None)
        list(body)
        getattr(body, "close", lambda: None)()

    BEFORE
    middleware = TimeTracerMiddleware(app)
    call("/first")
    AFTER
    call("/second")
    print("handlers:", [type(h).__name__ for h in logging.getLogger("timetracer").handlers])
    """
)


def run_wsgi(tmp_path: Path, before: str = "", after: str = "", **env: str) -> subprocess.CompletedProcess:
    source = WSGI_SCRIPT.replace("BEFORE", before or "pass").replace("AFTER", after or "pass")
    (tmp_path / "serve.py").write_text(source)
    environ = example_env(**{"TIMETRACER_MODE": "record", **env})
    return subprocess.run(
        [sys.executable, "serve.py"],
        cwd=str(tmp_path),
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_example_app_says_what_it_recorded(recorded_shop: Recorded) -> None:
    lines = [line for line in recorded_shop.log.splitlines() if line.startswith("timetracer:")]
    directory = recorded_shop.directory
    # One line per cassette (written as each response closes, so not necessarily in request order).
    assert sorted(lines) == sorted(
        [
            f"timetracer: recorded GET /users/123 → {directory / 'GET__users_123.json'} (1 call)",
            f"timetracer: recorded GET /users/456 → {directory / 'GET__users_456.json'} (1 call)",
            f"timetracer: recorded GET /products → {directory / 'GET__products.json'} (1 call)",
            f"timetracer: recorded POST /products → {recorded_shop.find('POST__products')} (1 call)",
            f"timetracer: recorded GET /users/999 → {directory / 'GET__users_999.json'} (1 call)",
            f"timetracer: recorded GET /users/123 → {directory / 'GET__users_123~2.json'} (1 call)",
        ]
    )


def test_no_logging_configured_one_line_per_cassette_relative_path(tmp_path: Path) -> None:
    run = run_wsgi(tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == [
        "timetracer: recorded GET /first → cassettes/GET__first.json (0 calls)",
        "timetracer: recorded GET /second → cassettes/GET__second.json (0 calls)",
    ]
    assert "handlers: ['_FirstRunHandler']" in run.stdout


@pytest.mark.parametrize(
    ("before", "after", "env", "expected"),
    [
        # The app configured logging first: its levels decide (WARNING hides INFO), no handler added.
        ("logging.basicConfig(level=logging.WARNING)", "", {}, []),
        (
            "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s %(message)s')",
            "",
            {},
            [
                "INFO timetracer timetracer: recorded GET /first → cassettes/GET__first.json (0 calls)",
                "INFO timetracer timetracer: recorded GET /second → cassettes/GET__second.json (0 calls)",
            ],
        ),
        # Configured later, at WARNING: timetracer's handler steps aside, nothing shown twice.
        (
            "",
            "logging.basicConfig(level=logging.WARNING)",
            {},
            ["timetracer: recorded GET /first → cassettes/GET__first.json (0 calls)"],
        ),
        # Configured later, at INFO: the second line goes through the app's handler only.
        (
            "",
            "logging.basicConfig(level=logging.INFO, format='APP %(message)s')",
            {},
            [
                "timetracer: recorded GET /first → cassettes/GET__first.json (0 calls)",
                "APP timetracer: recorded GET /second → cassettes/GET__second.json (0 calls)",
            ],
        ),
        # An explicit TIMETRACER_LOG wins over the app's WARNING for timetracer's logger.
        (
            "logging.basicConfig(level=logging.WARNING, format='APP %(message)s')",
            "",
            {"TIMETRACER_LOG": "info"},
            [
                "APP timetracer: recorded GET /first → cassettes/GET__first.json (0 calls)",
                "APP timetracer: recorded GET /second → cassettes/GET__second.json (0 calls)",
            ],
        ),
        # Configured later, with the timetracer logger's level set by the app: that level applies.
        (
            "",
            "logging.basicConfig(level=logging.WARNING, format='APP %(message)s'); "
            "logging.getLogger('timetracer').setLevel(logging.DEBUG)",
            {},
            [
                "timetracer: recorded GET /first → cassettes/GET__first.json (0 calls)",
                "APP timetracer: recorded GET /second → cassettes/GET__second.json (0 calls)",
            ],
        ),
        ("", "", {"TIMETRACER_LOG": "off"}, []),
        ("", "", {"TIMETRACER_LOG": "warning"}, []),
    ],
    ids=[
        "configured-warning",
        "configured-info",
        "later-warning",
        "later-info",
        "explicit-info",
        "later-own-level",
        "off",
        "warning",
    ],
)
def test_the_apps_logging_configuration_is_respected(
    tmp_path: Path, before: str, after: str, env: Dict[str, str], expected: list
) -> None:
    run = run_wsgi(tmp_path, before, after, **env)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == expected


def test_off_mode_adds_nothing(tmp_path: Path) -> None:
    run = run_wsgi(tmp_path, TIMETRACER_MODE="off")
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert "handlers: []" in run.stdout
    assert not (tmp_path / "cassettes").exists()


def test_script_record_then_replay_say_what_they_did(
    tmp_path: Path, mongo_uri: str, dead_mongo_uri: str
) -> None:
    (tmp_path / "job.py").write_text(
        textwrap.dedent(
            """
            import sys
            import pymongo
            import timetracer
            from timetracer.plugins import enable_pymongo

            enable_pymongo()
            client = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=2000)
            with timetracer.record("job") if sys.argv[2] == "record" else timetracer.replay("job"):
                client.tt_first_run.users.find_one({"_id": "nobody"})
                client.tt_first_run.users.count_documents({})
            """
        )
    )

    def job(uri: str, mode: str, extra: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "job.py", uri, mode],
            cwd=str(tmp_path),
            env=example_env(**(extra or {})),
            capture_output=True,
            text=True,
            timeout=60,
        )

    recorded = job(mongo_uri, "record")
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stderr.splitlines() == ["timetracer: recorded 2 calls → cassettes/job.json"]
    replayed = job(dead_mongo_uri, "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stderr.splitlines() == [
        "timetracer replay cassettes/job.json: 2 calls matched exactly, 0 by fallback, 0 unmatched, "
        "0 recorded calls unused"
    ]
