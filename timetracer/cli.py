"""The ``timetracer`` command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from timetracer import __version__


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="timetracer", description="Record and replay MongoDB calls.")
    parser.add_argument("--version", action="version", version=f"timetracer {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
