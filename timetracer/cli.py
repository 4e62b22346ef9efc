"""The ``timetracer`` command (also ``python -m timetracer``): dispatch to :mod:`timetracer.commands`.

    timetracer record [--cassette PATH] script.py [args...]
    timetracer replay CASSETTE script.py [args...]
    timetracer ls [DIR] [--json]
    timetracer show CASSETTE [--json]
    timetracer diff A B
    timetracer verify --app MODULE:ATTR [PATH ...]
    timetracer timeline CASSETTE [-o OUT.html]
    timetracer validate [CASSETTE ...]

Exit status: 0 success; 1 a negative result (diff: different, verify: not identical, validate:
invalid); 2 bad input (a bad argument, a missing or corrupt file), reported as one line on stderr
naming the file, never a traceback. ``record``/``replay`` exit as the script does.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, NoReturn, Optional

from timetracer import __version__
from timetracer.commands import EXIT_BAD_INPUT, CommandError, register


class _Parser(argparse.ArgumentParser):
    """An argument error is one line on stderr (with where to get help), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="timetracer",
        description="Record and replay MongoDB calls; list, show, compare, verify, draw and check cassettes.",
        epilog="Exit status: 0 ok, 1 negative result (diff, verify, validate), 2 bad input.",
    )
    parser.add_argument("--version", action="version", version=f"timetracer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    register(commands)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    options, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand's parser, so the message names it
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        owner = subparsers.choices.get(options.command, parser) if options.command else parser
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    if options.command is None:
        parser.print_help()
        return 0
    prog = f"timetracer {options.command}"
    try:
        status = int(options.run(options))
        if options.command not in ("record", "replay"):
            sys.stdout.flush()  # a closed pipe is seen here, not at exit
        return status
    except BrokenPipeError:
        if options.command in ("record", "replay"):
            raise  # the script's own output: as `python script.py` would do
        return _reader_gone()
    except CommandError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if options.command in ("record", "replay"):
            raise  # the script's own error: shown as `python script.py` would show it
        print(f"{prog}: internal error: {type(exc).__name__}: {exc} (please report it)", file=sys.stderr)
        return EXIT_BAD_INPUT


def _reader_gone() -> int:
    """The reader of stdout closed it (``timetracer ls | head -1``): stop quietly, as ``ls`` does,
    with 128 + SIGPIPE; what is still buffered goes nowhere, not to a traceback at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (embedded): nothing is flushed at exit anyway
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())
