"""One group of benchmarks in a process of its own.

``python -m benchmarks._worker TASK CONFIG_JSON OUTPUT_FILE`` runs ``TASK`` and writes its results
as JSON. Task modules are imported only when chosen, so the raw PyMongo task never imports
timetracer.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import List

# task name → (module, function)
TASKS = {
    "raw": ("benchmarks._calls", "raw"),
    "mongomock": ("benchmarks._calls", "mongomock_calls"),
    "timetracer": ("benchmarks._calls", "timetracer_calls"),
    "wsgi": ("benchmarks._wsgi", "wsgi"),
    "cassettes": ("benchmarks._cassettes", "cassettes"),
    "documents": ("benchmarks._documents", "documents"),
}


def main(argv: List[str]) -> int:
    task, config, output = argv
    module, function = TASKS[task]
    result = getattr(importlib.import_module(module), function)(json.loads(config))
    Path(output).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
