"""``examples/demo.py`` (``make demo``): record, stop the database, replay, identical bodies; the
cassettes are kept (``./cassettes/demo``) and the printed next commands work on them."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from ._support import EXAMPLES, example_env, run_python


def test_demo_records_and_replays_identically(tmp_path: Path, mongoeco_python: Path) -> None:
    run = run_python([str(EXAMPLES / "demo.py")], tmp_path, example_env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert "OK: all 3 replayed responses are byte-identical to the recorded ones." in run.stdout
    assert run.stdout.count("[X-Timetracer-Replay: identical]") == 3
    assert "nothing listens there now" in run.stdout
    kept = tmp_path / "cassettes" / "demo"
    names = sorted(p.name for p in kept.iterdir())
    assert names[:2] == ["GET__products.json", "GET__users_123.json"]
    assert len(names) == 3 and re.fullmatch(r"POST__products~q[0-9a-f]{10}\.json", names[2]), names
    post = json.loads((kept / names[2]).read_text())
    assert json.loads(post["request"]["body"]) == {"name": "Desk lamp", "price": 24.9}

    # The app's own first-run log lines, one per cassette.
    for name, request in zip(names, ["GET /products", "GET /users/123", "POST /products"]):
        assert f"  app log: timetracer: recorded {request} → {kept / name} (1 call)" in run.stdout
        assert f"  app log: timetracer replay {kept / name}: 1 calls matched exactly" in run.stdout

    # Where they are, and the next commands, which work as printed.
    tail = run.stdout[run.stdout.index("Cassettes kept in cassettes/demo. Next, look at them:") :].splitlines()
    commands = [line.strip().split("      #")[0] for line in tail[1:]]
    assert [c.split()[1] for c in commands[:3]] == ["ls", "show", "timeline"]
    for command in commands[:3]:
        done = subprocess.run(shlex.split(command), cwd=str(tmp_path), capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert (kept / "GET__products.html").exists()
    assert commands[3].startswith("cd ") and " verify --app app:app " in commands[3]
    verified = subprocess.run(["bash", "-c", commands[3]], cwd=str(tmp_path), capture_output=True, text=True)
    assert verified.returncode == 0, (commands[3], verified.stdout, verified.stderr)
    assert verified.stdout.splitlines()[-1] == "3 cassettes: 3 identical, 0 different, 0 mismatch, 0 skipped"
