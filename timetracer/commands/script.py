"""``timetracer record`` and ``timetracer replay``: run a Python script recording or replaying.

    timetracer record [--cassette PATH] script.py [args...]
    timetracer replay CASSETTE script.py [args...]

The script runs as ``__main__`` in this process with the PyMongo plugin enabled and one session
around it, so a script that sets ``TIMETRACER_MODE`` itself still replays under ``replay``. A
missing script or cassette is bad input (one line, exit 2); what the script itself raises is shown
as ``python script.py`` would show it.
"""

from __future__ import annotations

import argparse
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any, List

from timetracer.commands._common import CommandError

RECORD_HELP = "run a script, recording its PyMongo calls into one cassette"
REPLAY_HELP = "run a script, answering its PyMongo calls from a cassette"


def add_parsers(commands: Any) -> None:
    rec = commands.add_parser("record", help=RECORD_HELP, description=RECORD_HELP + ".")
    rec.add_argument("--cassette", help="cassette name or path (default: named after the script)")
    rec.add_argument("script")
    rec.add_argument("args", nargs=argparse.REMAINDER)
    rec.set_defaults(run=run_record)
    rep = commands.add_parser("replay", help=REPLAY_HELP, description=REPLAY_HELP + ".")
    rep.add_argument("cassette")
    rep.add_argument("script")
    rep.add_argument("args", nargs=argparse.REMAINDER)
    rep.set_defaults(run=run_replay)


def _check_script(script: str) -> None:
    path = Path(script)
    if not path.exists():
        raise CommandError(f"{script}: no such script")
    if path.is_dir() and not (path / "__main__.py").exists():
        raise CommandError(f"{script}: is a folder with no __main__.py, not a script")


def _run_script(script: str, args: List[str]) -> None:
    """Run ``script`` as ``python script.py args...`` would.

    The script's folder comes first on ``sys.path``, so it imports its sibling modules. A
    successful ``sys.exit()`` / ``sys.exit(0)`` is a normal end, not an error of the session; any
    other exit code propagates (and is stored in the cassette as the error that ended the run).
    """
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise


def _config() -> Any:
    from timetracer._logging import requested_level
    from timetracer.config import TraceConfig
    from timetracer.errors import ConfigError

    try:
        requested_level()
        return TraceConfig.from_env()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def _script_error(script: str) -> int:
    """Print the exception the script raised as ``python script.py`` would (its frames only); 1."""
    exc_type, exc, tb = sys.exc_info()
    target = str(Path(script).resolve())
    while tb is not None and str(Path(tb.tb_frame.f_code.co_filename).resolve()) != target:
        tb = tb.tb_next
    if tb is None:  # not raised in the script: timetracer's own verdict (strict replay) or a bug
        from timetracer.errors import TimeTracerError

        if isinstance(exc, TimeTracerError):
            print(f"timetracer: {exc}", file=sys.stderr)
            return 1
        tb = exc.__traceback__ if exc is not None else None
    traceback.print_exception(exc_type, exc, tb)
    return 1


def _enable() -> None:
    from timetracer._logging import ensure_visible
    from timetracer.plugins import enable_pymongo

    try:
        enable_pymongo()
    except ImportError:
        raise CommandError(
            "timetracer record/replay need PyMongo (pip install timetracer[pymongo])"
        ) from None
    ensure_visible()


def _check_target(target: Path) -> None:
    """Refuse, before the script runs, a cassette path that cannot be written."""
    import os

    from timetracer._s3path import S3Path

    if isinstance(target, S3Path):
        return  # an object: written by one PUT when the script ends (a failure is logged naming it)
    if target.is_dir():
        raise CommandError(f"{target}: is a folder; give --cassette a file name (e.g. {target / 'run.json'})")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"{target}: cannot create its folder {parent} ({exc.strerror or exc})") from None
    if not os.access(parent, os.W_OK):
        raise CommandError(f"{target}: the folder {parent} is not writable")


def run_record(options: argparse.Namespace) -> int:
    import timetracer
    from timetracer.api import resolve_name

    _check_script(options.script)
    config = _config()
    target = resolve_name(options.cassette or Path(options.script).stem, config, for_writing=True)
    _check_target(target)
    recorder = timetracer.record(target, config=config)
    _enable()
    try:
        with recorder:
            _run_script(options.script, options.args)
    except SystemExit:
        raise
    except Exception:
        return _script_error(options.script)
    return 0


def run_replay(options: argparse.Namespace) -> int:
    import timetracer
    from timetracer.errors import TimeTracerError

    _check_script(options.script)
    config = _config()
    player = timetracer.replay(options.cassette, config=config)
    _enable()
    try:
        player.__enter__()
    except TimeTracerError as exc:
        raise CommandError(str(exc)) from None
    try:
        try:
            _run_script(options.script, options.args)
        except BaseException:
            player.__exit__(*sys.exc_info())
            raise
        player.__exit__(None, None, None)
    except SystemExit:
        raise
    except Exception:
        return _script_error(options.script)
    return 0
