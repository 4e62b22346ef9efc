"""timetracer demo: record the Flask shop app against a real server, replay it with none.

1. Start a MongoDB-compatible server (mongoeco, via ``scripts/mongo_server.py``) and seed it.
2. Run ``examples/pymongo_flask_app`` (``flask run``) with ``TIMETRACER_MODE=record`` and send it
   ``GET /users/123``, ``GET /products`` and ``POST /products`` over HTTP.
3. Stop the app and the database.
4. Run the app again with ``TIMETRACER_MODE=replay``, send the same requests, and check that every
   response body is byte-identical to the recorded one. Exit status 1 if not.
5. Keep the cassettes (default ``./cassettes/demo``) and print the commands that look at them.

    python examples/demo.py [--cassette-dir DIR]     # or: make demo
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_DIR = REPO_ROOT / "examples" / "pymongo_flask_app"
REQUESTS: List[Tuple[str, str, Optional[Dict[str, Any]]]] = [
    ("GET", "/users/123", None),
    ("GET", "/products", None),
    ("POST", "/products", {"name": "Desk lamp", "price": 24.9}),
]
# Cassette names start with METHOD__path; a request with a query string or a body gets a digest
# after it (``POST__products~q1a2b3c4d5e.json``), so the demo finds its files by these prefixes.
PREFIXES = ["GET__users_123", "GET__products", "POST__products"]

Reply = Tuple[int, Optional[str], bytes]  # status, X-Timetracer-Replay, body


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def flask_app(env: Dict[str, str], log: Path) -> Iterator[int]:
    """Run ``flask --app app run`` in ``examples/pymongo_flask_app``; yield its port; stop it after."""
    port = _free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETRACER_")}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), child_env.get("PYTHONPATH")]))
    child_env.update(env)
    command = [sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port)]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, cwd=str(APP_DIR), env=child_env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the Flask app did not start; its output:\n{log.read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def send(port: int) -> List[Reply]:
    replies: List[Reply] = []
    for method, path, payload in REQUESTS:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {} if payload is None else {"Content-Type": "application/json"}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                replies.append(
                    (response.status, response.headers.get("X-Timetracer-Replay"), response.read())
                )
        except urllib.error.HTTPError as error:
            with error:
                replies.append((error.code, error.headers.get("X-Timetracer-Replay"), error.read()))
    return replies


def show(replies: List[Reply], *, replayed: bool) -> None:
    for (method, path, _), (status, verdict, body) in zip(REQUESTS, replies):
        header = f"  [X-Timetracer-Replay: {verdict}]" if replayed else ""
        print(f"  {method:<4} {path:<10} -> {status}{header}")
        print(f"       {body.decode('utf-8', 'replace').strip()}")


def demo_cassettes(directory: Path) -> List[Path]:
    """This demo's cassettes in ``directory``: one per request, in request order, once all exist."""
    found: List[Path] = []
    for prefix in PREFIXES:
        matches = sorted(p for p in directory.glob(f"{prefix}*.json") if p.name[len(prefix)] in ".~")
        found.extend(matches[:1])
    return found


def wait_for_cassettes(directory: Path, timeout: float = 15.0) -> List[Path]:
    # A cassette is written when the server closes the response, which can be just after the
    # client has read all of it: wait for the files before stopping the app.
    deadline = time.monotonic() + timeout
    while len(demo_cassettes(directory)) < len(PREFIXES):
        if time.monotonic() > deadline:
            raise SystemExit(f"cassettes missing in {directory}: {sorted(os.listdir(directory))}")
        time.sleep(0.05)
    return demo_cassettes(directory)


def run(cassette_dir: Path, logs: Path) -> int:
    mongo_server = _load("mongo_server", REPO_ROOT / "scripts" / "mongo_server.py")
    seed = _load("shop_seed", APP_DIR / "seed.py")
    env = {"TIMETRACER_CASSETTE_DIR": str(cassette_dir)}

    print("Starting a MongoDB-compatible server (mongoeco) ...", flush=True)
    server = mongo_server.start_server()
    try:
        seed.seed(server.uri)
        env["MONGODB_URI"] = server.uri
        print(f"\n1. RECORD  TIMETRACER_MODE=record, database at {server.host}:{server.port}")
        with flask_app({**env, "TIMETRACER_MODE": "record"}, logs / "record.log") as port:
            recorded = send(port)
            cassettes = wait_for_cassettes(cassette_dir)
        show(recorded, replayed=False)
        for line in (logs / "record.log").read_text(errors="replace").splitlines():
            if line.startswith("timetracer: recorded "):
                print(f"  app log: {line}")
        events = {path.name: len(json.loads(path.read_text())["events"]) for path in cassettes}
        print(
            "  cassettes: "
            + ", ".join(f"{name} ({n} call{'s' if n != 1 else ''})" for name, n in events.items())
        )
    finally:
        server.stop()
    state = "still listening?!" if _listening(server.port) else "nothing listens there now"
    print(f"\n2. STOPPED the app and the database ({server.host}:{server.port}: {state})")

    print("\n3. REPLAY  TIMETRACER_MODE=replay, no database")
    with flask_app({**env, "TIMETRACER_MODE": "replay"}, logs / "replay.log") as port:
        replayed = send(port)
    show(replayed, replayed=True)
    for line in (logs / "replay.log").read_text(errors="replace").splitlines():
        if line.startswith("timetracer replay "):
            print(f"  app log: {line}")

    same = [a[0] == b[0] and a[2] == b[2] for a, b in zip(recorded, replayed)]
    verdicts = [verdict for _, verdict, _ in replayed]
    print()
    if all(same) and verdicts == ["identical"] * len(REQUESTS):
        print(f"OK: all {len(REQUESTS)} replayed responses are byte-identical to the recorded ones.")
        return 0
    for (method, path, _), ok, verdict in zip(REQUESTS, same, verdicts):
        if not ok or verdict != "identical":
            print(f"DIFFERENT: {method} {path} (X-Timetracer-Replay: {verdict})")
    print("The replaying app's log:\n" + (logs / "replay.log").read_text(errors="replace")[-3000:])
    return 1


def _command() -> str:
    """How to run the ``timetracer`` command installed beside this Python."""
    script = Path(sys.executable).parent / "timetracer"
    if shutil.which("timetracer") == str(script) or not script.exists():
        return "timetracer"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def next_steps(cassette_dir: Path) -> str:
    command = _command()
    try:
        shown = cassette_dir.relative_to(Path.cwd())
    except ValueError:
        shown = cassette_dir
    app_dir = os.path.relpath(APP_DIR)
    back = os.path.relpath(Path.cwd(), APP_DIR)
    verify_command = command if command == "timetracer" else os.path.join(back, command)
    return "\n".join(
        [
            f"Cassettes kept in {shown}. Next, look at them:",
            f"  {command} ls {shown}",
            f"  {command} show {shown / 'GET__products.json'}",
            f"  {command} timeline {shown / 'GET__products.json'}      # an HTML page; open it in a browser",
            f"  cd {app_dir} && {verify_command} verify --app app:app {os.path.join(back, str(shown))}",
        ]
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cassette-dir", type=Path, default=Path("cassettes") / "demo", help="where to keep the cassettes"
    )
    options = parser.parse_args(argv)
    cassette_dir = options.cassette_dir.absolute()
    cassette_dir.mkdir(parents=True, exist_ok=True)
    for path in cassette_dir.glob("*.json"):  # this demo's cassettes from an earlier run only
        if any(path.name.startswith(prefix) and path.name[len(prefix)] in ".~" for prefix in PREFIXES):
            path.unlink()
    with tempfile.TemporaryDirectory(prefix="timetracer-demo-") as logs:
        status = run(cassette_dir, Path(logs))
    print()
    print(next_steps(cassette_dir))
    return status


if __name__ == "__main__":
    sys.exit(main())
