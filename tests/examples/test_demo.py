"""``examples/demo.py`` (``make demo``): record, stop the database, replay, identical bodies."""

from __future__ import annotations

import re
from pathlib import Path

from ._support import EXAMPLES, REPO_ROOT, example_env, run_python


def test_demo_records_and_replays_identically(tmp_path: Path, mongoeco_python: Path) -> None:
    run = run_python([str(EXAMPLES / "demo.py"), "--cassette-dir", str(tmp_path)], REPO_ROOT, example_env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert "OK: all 3 replayed responses are byte-identical to the recorded ones." in run.stdout
    assert run.stdout.count("[X-Timetracer-Replay: identical]") == 3
    assert "nothing listens there now" in run.stdout
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[:2] == ["GET__products.json", "GET__users_123.json"]
    assert len(names) == 3 and re.fullmatch(r"POST__products~q[0-9a-f]{10}\.json", names[2]), names
