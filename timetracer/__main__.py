"""``python -m timetracer``: the same as the ``timetracer`` command."""

from __future__ import annotations

import sys

from timetracer.cli import main

sys.exit(main())
