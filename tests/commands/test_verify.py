"""``timetracer verify --app``: recorded requests replayed against the shop app, no database."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

from .conftest import (
    APP_DIR,
    EXAMPLES,
    Recorded,
    assert_one_line_error,
    cli,
    example_env,
    free_port,
    load_example_module,
    run_app,
    wait_for,
)


def verify(dead_mongo_uri: str, *args: str, cwd: Path = APP_DIR) -> Any:
    # The app's client points at a port where nothing listens: any real call would fail.
    return cli("verify", *args, cwd=cwd, env=example_env(MONGODB_URI=dead_mongo_uri))


def lines_by_file(stdout: str) -> Dict[str, str]:
    out = {}
    for line in stdout.splitlines()[:-1]:
        path = line.split()[1]
        out[Path(path).name] = line
    return out


def edit(path: Path, change: Any) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")


def test_every_recorded_request_replays_identically(shop_copy: Recorded, dead_mongo_uri: str) -> None:
    run = verify(dead_mongo_uri, "--app", "app:app", str(shop_copy.directory))
    assert run.returncode == 0, run.stdout + run.stderr
    lines = lines_by_file(run.stdout)
    assert sorted(lines) == sorted(p.name for p in shop_copy.files)
    for line in lines.values():
        assert line.startswith("identical "), line
        assert line.endswith(": 1 call replayed"), line
    post = lines[shop_copy.find("POST__products").name]
    assert "POST /products" in post  # re-sent with its recorded body
    assert "wrapped" not in run.stdout  # the app's own middleware was used, not a second one
    assert run.stdout.splitlines()[-1] == "6 cassettes: 6 identical, 0 different, 0 mismatch, 0 skipped"
    assert run.stderr == ""


def test_changed_responses_and_unmatched_calls_fail(shop_copy: Recorded, dead_mongo_uri: str) -> None:
    def rename_bob(document: Dict[str, Any]) -> None:
        body = document["response"]["body"]
        body["data"] = body["data"].replace('"Bob"', '"Robert"')

    edit(shop_copy.find("GET__users_456"), rename_bob)  # the app now answers differently
    post = shop_copy.find("POST__products")
    edit(post, lambda d: d["request"].__setitem__("body", d["request"]["body"].replace("Desk lamp", "Chair")))
    run = verify(dead_mongo_uri, "--app", "app:app", str(shop_copy.directory))
    assert run.returncode == 1, run.stdout + run.stderr
    lines = lines_by_file(run.stdout)
    assert lines["GET__users_456.json"].startswith("different ")
    assert 'body.name: "Bob" != "Robert"' in lines["GET__users_456.json"]
    assert lines[post.name].startswith("mismatch ")
    assert "no recorded call matches INSERT_ONE on shop.products" in lines[post.name]
    assert 'nearest differs in document.name: "Chair" != "Desk lamp"' in lines[post.name]
    assert lines["GET__users_123.json"].startswith("identical ")
    assert run.stdout.splitlines()[-1] == "6 cassettes: 4 identical, 1 different, 1 mismatch, 0 skipped"


def test_old_cassettes_without_a_request_body(
    shop_copy: Recorded, dead_mongo_uri: str, tmp_path: Path
) -> None:
    post, get = shop_copy.find("POST__products"), shop_copy.find("GET__products")
    for path in (post, get):
        edit(path, lambda d: [d["request"].pop(k, None) for k in ("body", "body_encoding", "body_truncated")])
    script = tmp_path / "nightly.json"
    script.write_text(json.dumps({**json.loads(get.read_text()), "request": {"name": "nightly"}}))
    run = verify(dead_mongo_uri, "--app", "app:app", str(post), str(get), str(script))
    assert run.returncode == 0, run.stdout + run.stderr
    lines = lines_by_file(run.stdout)
    assert lines[post.name].endswith("POST /products: no request body stored")
    assert lines[post.name].startswith("skipped ")
    assert lines[get.name].startswith("identical ")  # a GET has no body to re-send
    assert lines["nightly.json"].startswith("skipped ")
    assert "not a web request" in lines["nightly.json"]

    run = verify(dead_mongo_uri, "--app", "app:app", str(post))
    assert run.returncode == 1  # nothing at all was verified
    assert run.stderr.strip() == "nothing was verified"


def test_an_app_without_timetracer_is_wrapped(
    shop_copy: Recorded, dead_mongo_uri: str, tmp_path: Path
) -> None:
    (tmp_path / "plain.py").write_text(
        textwrap.dedent(
            """
            import json
            import os

            from pymongo import MongoClient

            client = MongoClient(os.environ["MONGODB_URI"], serverSelectionTimeoutMS=500)


            def application(environ, start_response):
                user_id = environ["PATH_INFO"].rsplit("/", 1)[-1]
                user = client.myapp.users.find_one({"_id": user_id})
                body = (json.dumps(user, sort_keys=True, separators=(",", ":")) + "\\n").encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            """
        )
    )
    users = [shop_copy.find("GET__users_123"), shop_copy.find("GET__users_456")]
    run = verify(dead_mongo_uri, "--app", "plain:application", *map(str, users), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (
        run.stdout.splitlines()[0]
        == "note: plain:application has no timetracer middleware; verify wrapped it in TimeTracerMiddleware"
    )
    assert run.stdout.splitlines()[-1] == "2 cassettes: 2 identical, 0 different, 0 mismatch, 0 skipped"


def test_verify_bad_input(shop_copy: Recorded, dead_mongo_uri: str, tmp_path: Path) -> None:
    folder = str(shop_copy.directory)
    assert_one_line_error(
        verify(dead_mongo_uri, "--app", "nope:app", folder), "--app nope:app", "No module named 'nope'"
    )
    assert_one_line_error(
        verify(dead_mongo_uri, "--app", "app:nope", folder), "--app app:nope", "no attribute 'nope'"
    )
    assert_one_line_error(verify(dead_mongo_uri, "--app", "app", folder), "MODULE:ATTR")
    (tmp_path / "boom.py").write_text("raise RuntimeError('no config')\n")
    line = assert_one_line_error(
        verify(dead_mongo_uri, "--app", "boom:app", folder, cwd=tmp_path), "RuntimeError: no config"
    )
    assert "boom.py:1" in line
    assert_one_line_error(verify(dead_mongo_uri, folder), "the following arguments are required: --app")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(
        verify(dead_mongo_uri, "--app", "app:app", str(tmp_path / "empty")), "no cassette files"
    )
    assert_one_line_error(
        verify(dead_mongo_uri, "--app", "app:app", cwd=tmp_path / "empty"),
        "cassettes",
        "no such file or folder",
    )
    (shop_copy.directory / "GET__zz.json").write_text('{"schema_version": "1.0"}')
    assert_one_line_error(verify(dead_mongo_uri, "--app", "app:app", folder), "GET__zz.json", "'events'")


def test_default_folder_is_the_cassette_dir(shop_copy: Recorded, dead_mongo_uri: str) -> None:
    env = example_env(MONGODB_URI=dead_mongo_uri, TIMETRACER_CASSETTE_DIR=str(shop_copy.directory))
    run = cli("verify", "--app", "app:app", cwd=APP_DIR, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1].startswith("6 cassettes: 6 identical")


def test_a_django_project_is_verified_through_its_own_middleware(
    tmp_path: Path, mongo_uri: str, dead_mongo_uri: str
) -> None:
    """The Django example: recorded under runserver, verified through ``blog_site.wsgi``."""
    django_dir = EXAMPLES / "django_app"
    load_example_module(django_dir / "seed.py").seed(mongo_uri)
    cassettes = tmp_path / "cassettes"
    env = example_env(MONGODB_URI=mongo_uri, TIMETRACER_MODE="record", TIMETRACER_CASSETTE_DIR=str(cassettes))
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with run_app(command, django_dir, env, port, tmp_path / "record.log") as app:
        assert app.request("GET", "/posts/").status == 200
        assert app.request("GET", "/posts/hello-world/").status == 200
        wait_for(cassettes, 2)
    run = verify(dead_mongo_uri, "--app", "blog_site.wsgi:application", str(cassettes), cwd=django_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "wrapped" not in run.stdout  # the project's MIDDLEWARE entry replayed; none added
    lines = lines_by_file(run.stdout)
    assert lines["GET__posts.json"].endswith("GET /posts/: 1 call replayed")
    assert lines["GET__posts_hello-world.json"].startswith("identical ")
    assert run.stdout.splitlines()[-1] == "2 cassettes: 2 identical, 0 different, 0 mismatch, 0 skipped"


def test_a_mismatch_the_app_catches_is_still_a_mismatch(
    shop_copy: Recorded, dead_mongo_uri: str, tmp_path: Path
) -> None:
    (tmp_path / "careless.py").write_text(
        textwrap.dedent(
            """
            import os

            from pymongo import MongoClient

            from timetracer.wsgi import TimeTracerMiddleware

            client = MongoClient(os.environ["MONGODB_URI"], serverSelectionTimeoutMS=500)


            def lookup(environ, start_response):
                try:
                    client.myapp.users.find_one({"_id": environ["PATH_INFO"].rsplit("/", 1)[-1], "x": 1})
                except Exception:  # swallowed: the response alone would not show it
                    pass
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"ok"]


            application = TimeTracerMiddleware(lookup)
            """
        )
    )
    run = verify(
        dead_mongo_uri, "--app", "careless:application", str(shop_copy.find("GET__users_123")), cwd=tmp_path
    )
    assert run.returncode == 1, run.stdout + run.stderr
    line = run.stdout.splitlines()[0]
    assert line.startswith("mismatch ")
    assert "no recorded call matches FIND_ONE on myapp.users" in line
    assert "nearest differs in filter.x: 1 != <missing>" in line


def test_a_request_stored_with_redacted_values_says_so(shop_copy: Recorded, dead_mongo_uri: str) -> None:
    post = shop_copy.find("POST__products")
    edit(post, lambda d: d["request"].__setitem__("body", '{"name": "[REDACTED]", "price": 24.9}'))
    run = verify(dead_mongo_uri, "--app", "app:app", str(post))
    assert run.returncode == 1
    line = run.stdout.splitlines()[0]
    assert line.startswith("mismatch ")
    assert line.endswith("; note: the request was stored with [REDACTED] values, re-sent as such")
