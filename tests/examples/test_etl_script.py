"""``examples/etl_script``: run the spec's ETL job against a server on localhost:27017 (it records
itself), then replay its cassette with ``python -m timetracer replay`` and no server."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from ._support import EXAMPLES, example_env, listening, methods, mongo_client, read_json, run_python

SCRIPT = EXAMPLES / "etl_script" / "etl_script.py"
USERS = [
    {"_id": "u1", "email": "ada@example.com"},
    {"_id": "u2", "email": "grace@example.com"},
    {"_id": "u3", "email": "linus@example.com"},
]
OUTPUT = "Found 3 users\nMigrated 3 users\n"


def test_record_then_replay_without_a_server(tmp_path: Path, mongo_on_default_port: Any) -> None:
    workdir = tmp_path / "etl_script"
    workdir.mkdir()
    shutil.copy(SCRIPT, workdir / "etl_script.py")
    client = mongo_client(mongo_on_default_port.uri)
    try:
        client.source.users.insert_many([dict(user) for user in USERS])

        recorded = run_python(["etl_script.py"], workdir, example_env())
        assert recorded.returncode == 0, recorded.stderr
        assert recorded.stdout == OUTPUT

        migrated = list(client.target.migrated_users.find({}, {"_id": 0, "user_id": 1, "email": 1}))
        assert migrated == [{"user_id": u["_id"], "email": u["email"]} for u in USERS]
    finally:
        client.close()
    cassette_dir = workdir / "etl_cassettes"
    assert [p.name for p in cassette_dir.iterdir()] == ["etl_script.json"]
    cassette = cassette_dir / "etl_script.json"
    assert methods(read_json(cassette)) == ["FIND", "INSERT_MANY"]
    written = cassette.read_bytes()

    mongo_on_default_port.stop()
    assert not listening(27017)

    started = time.monotonic()
    replayed = run_python(
        ["-m", "timetracer", "replay", "etl_cassettes/etl_script.json", "etl_script.py"],
        workdir,
        example_env(),
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == OUTPUT
    assert elapsed < 10, f"replay took {elapsed:.1f}s: did it try to reach a server?"
    assert [p.name for p in cassette_dir.iterdir()] == ["etl_script.json"]
    assert cassette.read_bytes() == written  # replay leaves the cassette alone
