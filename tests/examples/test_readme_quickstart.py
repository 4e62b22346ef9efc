"""The README's quickstart, run as pasted: its ``app.py`` and its shell lines, in a fresh folder.

The one stand-in is ``docker``: a shell function that runs the mongoeco test server on
``localhost:27017`` for ``docker run`` and stops it for ``docker stop`` (there is no Docker daemon
on the test machines). Everything else (``python``, ``curl``, ``kill $!``, ``ls``) is the README's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._support import REPO_ROOT, example_env, listening

README = REPO_ROOT / "README.md"

DOCKER_STAND_IN = """
docker() {{  # mongoeco on localhost:27017 instead of a MongoDB container
  case "$1" in
    run) "{python}" "{server}" serve --port 27017 > mongo.log 2>&1 & echo $! > mongo.pid
         for i in $(seq 300); do (echo > /dev/tcp/127.0.0.1/27017) 2>/dev/null && return; sleep 0.2; done
         echo "mongoeco did not start" >&2; exit 1;;
    stop) kill "$(cat mongo.pid)"; wait "$(cat mongo.pid)" 2>/dev/null; return 0;;
  esac
}}
"""


def quickstart() -> tuple:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quickstart") : text.index("### Next steps")]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    assert [kind for kind, _ in blocks] == ["python", "bash"], blocks
    return blocks[0][1], blocks[1][1]


def test_the_quickstart_runs_as_pasted(tmp_path: Path, mongoeco_python: Path) -> None:
    for port in (27017, 5000):
        deadline = time.monotonic() + 20  # another example's server on 27017 may still be stopping
        while listening(port):
            if time.monotonic() > deadline:
                pytest.fail(f"port {port} is in use; the quickstart needs it (stop what listens there)", pytrace=False)
            time.sleep(0.2)
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed; the quickstart uses it", pytrace=False)
    app, steps = quickstart()
    (tmp_path / "app.py").write_text(app, encoding="utf-8")
    prelude = DOCKER_STAND_IN.format(python=sys.executable, server=REPO_ROOT / "scripts" / "mongo_server.py")
    (tmp_path / "steps.sh").write_text(prelude + steps, encoding="utf-8")
    env = example_env()
    env.update({k: v for k, v in os.environ.items() if k.startswith("TIMETRACER_MONGOECO_")})  # the server's venv
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    run = subprocess.run(
        ["bash", "steps.sh"], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=180
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert out.count('{"_id":"123","name":"Alice"}') == 2, out  # recorded, then replayed
    assert "X-Timetracer-Replay: identical" in out
    assert "GET__users_123.json" in out  # ls cassettes/
    assert "timetracer: recorded GET /users/123 → cassettes/GET__users_123.json (1 call)" in run.stderr
    assert "timetracer replay cassettes/GET__users_123.json: 1 calls matched exactly" in run.stderr
    assert not listening(5000)
    assert not listening(27017)  # docker stop stopped the server
