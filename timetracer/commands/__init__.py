"""The ``timetracer`` subcommands, one module each; :mod:`timetracer.cli` dispatches to them.

Each module has ``add_parser(subparsers)`` (``script`` has ``add_parsers``) registering its
parser with ``run=`` set to a function taking the parsed options and returning the exit status.
Modules import what they need when they run, so ``timetracer --help`` stays quick.
"""

from __future__ import annotations

from typing import Any

from timetracer.commands import diff, ls, script, show, timeline, validate, verify
from timetracer.commands._common import EXIT_BAD_INPUT, EXIT_NEGATIVE, EXIT_OK, CommandError

__all__ = ["EXIT_BAD_INPUT", "EXIT_NEGATIVE", "EXIT_OK", "CommandError", "register"]


def register(subparsers: Any) -> None:
    """Add every subcommand's parser, in the order ``--help`` lists them."""
    script.add_parsers(subparsers)
    for module in (ls, show, diff, verify, timeline, validate):
        module.add_parser(subparsers)
