"""Every command's bad input: one line on stderr naming the file, exit status 2, no traceback.

Also through ``python -m timetracer``, and for ``record`` / ``replay`` (whose scripts' own errors
are shown as ``python script.py`` shows them).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import List

import pytest

from .conftest import Recorded, assert_one_line_error, cli, example_env


@pytest.fixture
def bad_files(tmp_path: Path) -> Path:
    (tmp_path / "corrupt.json").write_text('{"schema_version": "1.0", "events": [}')
    (tmp_path / "cut.json.gz").write_bytes(gzip.compress(b'{"schema_version": "1.0", "events": []}')[:-12])
    (tmp_path / "old.json").write_text('{"schema_version": "0.1", "events": []}')
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "script.py").write_text("print('ran')\n")
    return tmp_path


CASES = [
    # (arguments, what the line must name, why)
    (["show", "{d}/missing.json"], "{d}/missing.json", "no such file"),
    (["show", "{d}/corrupt.json"], "{d}/corrupt.json", "not valid JSON"),
    (["show", "{d}/cut.json.gz"], "{d}/cut.json.gz", "cannot decompress"),
    (["show", "{d}/old.json"], "{d}/old.json", "schema_version '0.1' is not supported"),
    (["show", "{d}/folder.json"], "{d}/folder.json", "is a folder"),
    (["show"], "show", "the following arguments are required: CASSETTE"),
    (["show", "--bogus", "x.json"], "show", "unrecognized arguments: --bogus"),
    (["ls", "{d}/missing"], "{d}/missing", "no such folder"),
    (["ls", "{d}/corrupt.json"], "{d}/corrupt.json", "not a folder"),
    (["ls", "--jsn"], "ls", "unrecognized arguments: --jsn"),
    (["diff", "{d}/corrupt.json", "{d}/old.json"], "{d}/corrupt.json", "not valid JSON"),
    (["diff", "{d}/missing.json", "{d}/old.json"], "{d}/missing.json", "no such file"),
    (["timeline", "{d}/cut.json.gz"], "{d}/cut.json.gz", "cannot decompress"),
    (["timeline", "{d}/missing.json", "-o"], "timeline", "argument -o/--output: expected one argument"),
    (["validate", "{d}/missing.json"], "{d}/missing.json", "no such file or folder"),
    (["verify", "--app", "app:app", "{d}/corrupt.json"], "{d}/corrupt.json", "not valid JSON"),
    (["replay", "{d}/missing.json", "{d}/script.py"], "{d}/missing.json", "does not exist"),
    (["replay", "{d}/corrupt.json", "{d}/script.py"], "{d}/corrupt.json", "not valid JSON"),
    (["replay", "{d}/old.json", "{d}/script.py"], "{d}/old.json", "not supported"),
    (["replay", "{d}/old.json", "{d}/nope.py"], "{d}/nope.py", "no such script"),
    (["record", "{d}/nope.py"], "{d}/nope.py", "no such script"),
    (["record", "--cassette", "{d}/folder.json", "{d}/script.py"], "{d}/folder.json", "is a folder"),
    (
        ["record", "--cassette", "{d}/script.py/x.json", "{d}/script.py"],
        "{d}/script.py/x.json",
        "cannot create",
    ),
    (["frobnicate"], "timetracer", "invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize("module", [False, True], ids=["console-script", "python-m"])
@pytest.mark.parametrize(("arguments", "names", "why"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input(bad_files: Path, arguments: List[str], names: str, why: str, module: bool) -> None:
    args = [a.format(d=bad_files) for a in arguments]
    run = cli(*args, cwd=bad_files, module=module)
    line = assert_one_line_error(run, names.format(d=bad_files), why)
    assert line.startswith("timetracer")
    assert "ran" not in run.stdout  # the script never ran


def test_bad_variable_is_one_line(bad_files: Path) -> None:
    env = example_env(TIMETRACER_COMPRESSION="brotli")
    run = cli("record", str(bad_files / "script.py"), cwd=bad_files, env=env)
    assert_one_line_error(run, "TIMETRACER_COMPRESSION='brotli'", "'gzip'")
    env = example_env(TIMETRACER_LOG="loud")
    run = cli("record", str(bad_files / "script.py"), cwd=bad_files, env=env)
    assert_one_line_error(run, "TIMETRACER_LOG='loud'", "'info'")


def test_a_scripts_own_error_is_shown_as_python_shows_it(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text("def run():\n    raise ValueError('bad row 7')\n\nrun()\n")
    run = cli("record", "job.py", cwd=tmp_path)
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip(" ^~")]  # no 3.11+ caret lines
    assert lines[1:] == [
        "Traceback (most recent call last):",
        '  File "job.py", line 4, in <module>',
        "    run()",
        '  File "job.py", line 2, in run',
        "    raise ValueError('bad row 7')",
        "ValueError: bad row 7",
    ]
    assert "timetracer/" not in run.stderr  # no frame of timetracer's
    assert lines[-1] == "ValueError: bad row 7"
    assert lines[0] == "timetracer: recorded 0 calls → cassettes/job.json"


def test_help_and_version(recorded_shop: Recorded) -> None:
    run = cli("--help")
    assert run.returncode == 0
    for command in ("record", "replay", "ls", "show", "diff", "verify", "timeline", "validate"):
        assert f"    {command} " in run.stdout
    run = cli("--version", module=True)
    assert run.returncode == 0 and run.stdout.startswith("timetracer ")
