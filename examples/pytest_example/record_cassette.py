"""Regenerate ``cassettes/GET__users_123.json``, the cassette ``test_users.py`` replays.

It is a real recording: a MongoDB-compatible server (mongoeco, started by
``scripts/mongo_server.py``) is seeded with user "123", and ``GET /users/123`` is sent to the
Flask example app (``examples/pymongo_flask_app/app.py``) through timetracer's middleware in
record mode. Run it from anywhere::

    python examples/pytest_example/record_cassette.py [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
FLASK_APP = REPO_ROOT / "examples" / "pymongo_flask_app"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def record(out: Path) -> Path:
    """Record ``GET /users/123`` into ``out/GET__users_123.json``; return the cassette's path."""
    mongo_server = _load("mongo_server", REPO_ROOT / "scripts" / "mongo_server.py")
    seed = _load("shop_seed", FLASK_APP / "seed.py")
    with mongo_server.start_server() as server:
        seed.seed(server.uri)
        os.environ.update(MONGODB_URI=server.uri, TIMETRACER_MODE="record", TIMETRACER_CASSETTE_DIR=str(out))
        os.environ.pop("TIMETRACER_CASSETTE", None)
        shop = _load("shop_app", FLASK_APP / "app.py")
        try:
            response = shop.app.test_client().get("/users/123")
        finally:
            shop.client.close()  # before the server stops (see scripts/mongo_server.py)
    if response.status_code != 200 or response.get_json().get("name") != "Alice":
        raise SystemExit(f"unexpected response {response.status}: {response.get_data(as_text=True)}")
    return out / "GET__users_123.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "cassettes", help="default: %(default)s")
    path = record(parser.parse_args().out.resolve())
    print(f"recorded GET /users/123 into {path}")


if __name__ == "__main__":
    main()
