"""The ``timetracer`` command: run a Python script while recording or replaying its PyMongo calls.

    timetracer record [--cassette PATH] script.py [args...]
    timetracer replay CASSETTE script.py [args...]

The script runs as ``__main__`` in this process with the PyMongo plugin enabled and one session
around it, so a script that sets ``TIMETRACER_MODE`` itself still replays under ``replay``.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path
from typing import List, Optional

from timetracer import __version__


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


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="timetracer", description="Record and replay MongoDB calls.")
    parser.add_argument("--version", action="version", version=f"timetracer {__version__}")
    commands = parser.add_subparsers(dest="command")
    rec = commands.add_parser("record", help="run a script, recording its PyMongo calls into one cassette")
    rec.add_argument("--cassette", help="cassette name or path (default: named after the script)")
    rec.add_argument("script")
    rec.add_argument("args", nargs=argparse.REMAINDER)
    rep = commands.add_parser("replay", help="run a script, answering its PyMongo calls from a cassette")
    rep.add_argument("cassette")
    rep.add_argument("script")
    rep.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    if options.command is None:
        parser.print_help()
        return 0

    import timetracer
    from timetracer.plugins import enable_pymongo

    enable_pymongo()
    if options.command == "record":
        name = options.cassette or Path(options.script).stem
        with timetracer.record(name) as path:
            _run_script(options.script, options.args)
        print(f"timetracer: cassette written to {path}", file=sys.stderr)
    else:
        with timetracer.replay(options.cassette):
            _run_script(options.script, options.args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
