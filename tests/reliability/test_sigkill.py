"""A cassette is on disk before the client has the whole response: real servers, SIGKILLed.

Each round starts a real server process (the Flask development server, waitress, gunicorn)
serving ``served_app.py`` (Flask) or ``served_django.py`` (Django, under gunicorn) in record mode, makes one request that reads MongoDB, and SIGKILLs the
server's whole process group the moment the client has the complete response. The cassette of
that request must be on disk, complete, with the body the client got. Before timetracer wrote the
cassette ahead of the last chunk, 10 rounds lost 10 (Flask development server), 5 (waitress),
10 (gunicorn) and 5 (Django under gunicorn: every streaming response) cassettes.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from ._servers import ServerProcess, get

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses process groups and SIGKILL")

ROUNDS = {"flask-dev-server": 30, "waitress": 30, "gunicorn": 30, "gunicorn-django": 20}


@pytest.fixture(scope="module")
def seeded_db(mongo_uri: str) -> Any:
    from pymongo import MongoClient

    client: MongoClient[Any] = MongoClient(mongo_uri, serverSelectionTimeoutMS=10000)
    name = f"tt_reliability_{uuid.uuid4().hex[:8]}"
    client[name]["items"].insert_many(
        [{"name": "widget", "n": 1, "price": 9.5}, {"name": "gadget", "n": 2}, {"name": "doohickey", "n": 3}]
    )
    yield name
    client.drop_database(name)
    client.close()


def _server_env(mongo_uri: str, db: str, cassettes: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETRACER_")}
    env.update(
        SERVED_MONGODB_URI=mongo_uri,
        SERVED_DB=db,
        TIMETRACER_MODE="record",
        TIMETRACER_CASSETTE_DIR=str(cassettes),
    )
    return env


def _rounds(kind: str, rounds: int, mongo_uri: str, db: str, tmp_path: Path) -> Tuple[List[str], List[str]]:
    """Run ``rounds`` request-then-SIGKILL rounds; return the lost cassettes and the temp files left."""
    cassettes = tmp_path / "cassettes"
    env = _server_env(mongo_uri, db, cassettes)
    losses: List[str] = []
    for round_no in range(rounds):
        path, name = ("/item", "GET__item.json") if round_no % 2 == 0 else ("/stream", "GET__stream.json")
        target = cassettes / name
        if target.exists():
            target.unlink()
        server = ServerProcess(kind, env, tmp_path / f"{kind}.log")
        try:
            server.wait_ready()
            status, _, body = get(server.port, path)
        finally:
            server.kill()  # the moment the client has the whole response
        assert status == 200, (tmp_path / f"{kind}.log").read_text()
        if not target.exists():
            losses.append(f"round {round_no} {path}: no cassette")
            continue
        document = json.loads(target.read_text(encoding="utf-8"))
        if document["response"]["body"]["data"] != body.decode("utf-8") or not document["events"]:
            losses.append(f"round {round_no} {path}: incomplete cassette")
    return losses, sorted(p.name for p in cassettes.glob("*.tmp"))


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("flask-dev-server", id="0-of-30-lost-flask-dev-server"),
        pytest.param("waitress", id="0-of-30-lost-waitress"),
        pytest.param("gunicorn", id="0-of-30-lost-gunicorn"),
        pytest.param("gunicorn-django", id="0-of-20-lost-django-under-gunicorn"),
    ],
)
def test_no_cassette_lost_when_the_server_is_sigkilled_as_the_client_gets_the_response(
    kind: str, mongo_uri: str, seeded_db: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    rounds = ROUNDS[kind]
    losses, debris = _rounds(kind, rounds, mongo_uri, seeded_db, tmp_path)
    assert losses == [], f"{len(losses)} of {rounds} cassettes lost with {kind}: {losses}"
    assert debris == [], f"temp files left behind: {debris}"
    print(f"{kind}: 0 of {rounds} lost in {time.monotonic() - started:.1f}s")
