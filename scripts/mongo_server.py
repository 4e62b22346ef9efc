#!/usr/bin/env python3
"""Run a MongoDB-compatible test server (mongoeco's wire proxy) in its own process.

There is no ``mongod`` on the development and CI machines, so the test suite
talks to `mongoeco <https://pypi.org/project/mongoeco/>`_'s wire-protocol
server instead: real TCP, real PyMongo on the client side.  mongoeco needs
Python >= 3.13 while the project itself supports Python >= 3.9, so the server
lives in a venv of its own and runs as a child process.

This file is stdlib-only and works with Python >= 3.9.  It is both a module
(used by ``tests/conftest.py``)::

    from mongo_server import ensure_venv, start_server

    with start_server() as server:
        client = pymongo.MongoClient(server.uri)

and a command-line tool::

    python scripts/mongo_server.py ensure-venv      # create/repair the venv
    python scripts/mongo_server.py serve --port N   # print the URI, run until Ctrl-C

Environment variables:

``TIMETRACER_MONGOECO_VENV``
    Where the server venv lives (default: ``<repo>/.cache/mongoeco-venv``).
``TIMETRACER_MONGOECO_PYTHON``
    The Python >= 3.13 interpreter used to create that venv (default: found
    on PATH via pyenv shims, or under ``~/.pyenv/versions``).
``TIMETRACER_MONGOECO_REQUIREMENT``
    The pip requirement installed into the venv (default:
    :data:`DEFAULT_REQUIREMENT`).

Things to know about the server:

* Its data lives in memory: a new server (even on the same port) starts empty.
* ``MongoClient.server_info()`` fails ("unsupported wire command: buildinfo",
  PyMongo sends it lowercase); ``client.admin.command("buildInfo")`` works.
* Close PyMongo clients *before* stopping their server: once the server is
  gone, ``close()`` of a client that has pooled sessions waits up to
  ``serverSelectionTimeoutMS`` (PyMongo behaviour, same with a real mongod).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Iterator

__all__ = [
    "DEFAULT_REQUIREMENT",
    "MIN_SERVER_PYTHON",
    "MongoServer",
    "MongoServerError",
    "default_venv_path",
    "ensure_venv",
    "find_server_python",
    "main",
    "start_server",
]

#: The pip requirement installed into the server venv.
DEFAULT_REQUIREMENT = "mongoeco[wire]==4.11.*"
#: mongoeco needs at least this Python version.
MIN_SERVER_PYTHON = (3, 13)

REPO_ROOT = Path(__file__).resolve().parent.parent
_MARKER_NAME = ".timetracer-mongoeco-ready.json"
_MARKER_VERSION = 1
_READY_PREFIX = "READY "

# The script run by the server child process (``python -I -c SCRIPT HOST PORT``).
# It prints ``READY host:port`` once the listener is bound, and shuts down
# cleanly on SIGTERM/SIGINT or when its stdin reaches EOF, i.e. when the parent
# process closes the pipe or dies.  If a clean shutdown hangs, it hard-exits.
_SERVER_SCRIPT = r"""
import asyncio
import os
import signal
import sys
import threading
import time

HARD_EXIT_AFTER = 10.0


def hard_exit_later():
    time.sleep(HARD_EXIT_AFTER)
    os._exit(3)


async def main(host, port):
    from mongoeco.wire import AsyncMongoEcoProxyServer

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def request_stop():
        if not stop.is_set():
            stop.set()
            threading.Thread(target=hard_exit_later, daemon=True).start()

    def watch_stdin():
        # Returns when the parent closes our stdin or dies.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        try:
            loop.call_soon_threadsafe(request_stop)
        except RuntimeError:
            os._exit(0)  # the loop is already gone

    threading.Thread(target=watch_stdin, daemon=True).start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, request_stop)
        except (NotImplementedError, RuntimeError, ValueError):
            pass

    async with AsyncMongoEcoProxyServer(host=host, port=port) as server:
        address = server.address
        print(f"READY {address.host}:{address.port}", flush=True)
        await stop.wait()


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


class MongoServerError(RuntimeError):
    """The mongoeco venv could not be prepared or the server could not start."""


# --------------------------------------------------------------------------
# Finding Python >= 3.13 and preparing the venv
# --------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"[mongo_server] {message}", file=sys.stderr, flush=True)


def _requirement() -> str:
    return os.environ.get("TIMETRACER_MONGOECO_REQUIREMENT") or DEFAULT_REQUIREMENT


def default_venv_path() -> Path:
    """``$TIMETRACER_MONGOECO_VENV`` or ``<repo>/.cache/mongoeco-venv``."""
    configured = os.environ.get("TIMETRACER_MONGOECO_VENV")
    if configured:
        return Path(configured).expanduser().resolve()
    return REPO_ROOT / ".cache" / "mongoeco-venv"


def _venv_python(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


_PROBE = "import sys, venv, ensurepip; print(sys.version_info[0], sys.version_info[1], sys.executable)"


def _probe(command: str, env: dict[str, str] | None) -> tuple[tuple[int, int], str]:
    """Run ``command`` and return its (major, minor) and real ``sys.executable``.

    Raises ``MongoServerError`` with a short reason if it is unusable.
    """
    try:
        proc = subprocess.run(
            [command, "-c", _PROBE],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise MongoServerError(f"cannot run it ({exc})") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise MongoServerError(f"exit code {proc.returncode}: {detail[-1] if detail else 'no output'}")
    try:
        major, minor, executable = proc.stdout.strip().split(" ", 2)
        version = (int(major), int(minor))
    except ValueError as exc:
        raise MongoServerError(f"unexpected output {proc.stdout!r}") from exc
    if version < MIN_SERVER_PYTHON:
        raise MongoServerError(f"it is Python {version[0]}.{version[1]}")
    return version, executable


def _pyenv_versions() -> list[Path]:
    """pyenv installations of Python >= 3.13, newest first."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv").expanduser()
    found: list[tuple[tuple[int, ...], Path]] = []
    try:
        entries = list((root / "versions").iterdir())
    except OSError:
        return []
    for entry in entries:
        parts = entry.name.split(".")
        try:
            key = tuple(int(part) for part in parts[:3])
        except ValueError:
            continue  # e.g. "3.13.0t", "pypy3.10-7.3", virtualenvs
        if len(key) >= 2 and key[:2] >= MIN_SERVER_PYTHON:
            found.append((key, entry))
    return [path for _, path in sorted(found, reverse=True)]


def _candidates() -> Iterator[tuple[str, str, dict[str, str] | None]]:
    """Yield (description, command, env) for interpreters worth probing."""
    pyenv_dirs = _pyenv_versions()
    for minor in (13, 14, 15):
        name = f"python3.{minor}"
        command = shutil.which(name)
        if not command:
            continue
        # With pyenv shims, ``python3.13`` only works when a 3.13 version is
        # selected; select one explicitly, then try the environment as it is.
        versions = [p.name for p in pyenv_dirs if p.name.startswith(f"3.{minor}.")]
        if not versions and minor == 13:
            versions = ["3.13.0"]
        for version in versions:
            env = dict(os.environ, PYENV_VERSION=version)
            yield f"{command} (PYENV_VERSION={version})", command, env
        yield command, command, None
    for directory in pyenv_dirs:
        command = str(directory / "bin" / "python3")
        yield command, command, None
    command = shutil.which("python3")
    if command:
        yield command, command, None


def find_server_python() -> str:
    """Return the path of a Python >= 3.13 interpreter able to create venvs.

    Order: ``$TIMETRACER_MONGOECO_PYTHON``; ``python3.13``/``python3.14`` on
    PATH (with ``PYENV_VERSION`` set for pyenv shims);
    ``~/.pyenv/versions/3.13*/bin/python3``; ``python3`` if it is new enough.
    The returned path is the interpreter's real ``sys.executable`` (never a
    pyenv shim), so it can be run without any special environment.
    """
    configured = os.environ.get("TIMETRACER_MONGOECO_PYTHON")
    if configured:
        try:
            return _probe(configured, None)[1]
        except MongoServerError as exc:
            raise MongoServerError(
                f"TIMETRACER_MONGOECO_PYTHON={configured!r} is not a usable "
                f"Python >= 3.13 with the venv module: {exc}"
            ) from None
    reasons: list[str] = []
    seen: set[tuple[str, str | None]] = set()
    for description, command, env in _candidates():
        key = (command, (env or {}).get("PYENV_VERSION"))
        if key in seen:
            continue
        seen.add(key)
        try:
            return _probe(command, env)[1]
        except MongoServerError as exc:
            reasons.append(f"  - {description}: {exc}")
    tried = "\n".join(reasons) if reasons else "  (no candidate interpreter found)"
    raise MongoServerError(
        "mongoeco needs Python >= 3.13, and none was found.\n"
        f"Tried:\n{tried}\n"
        "Fix: install one (e.g. `pyenv install 3.13.0`) or point "
        "TIMETRACER_MONGOECO_PYTHON at a Python >= 3.13 executable; or set "
        "TIMETRACER_TEST_MONGODB_URI to use an existing MongoDB server in tests."
    )


def _marker_data(requirement: str) -> dict[str, object]:
    return {"marker_version": _MARKER_VERSION, "requirement": requirement}


def _venv_is_ready(venv: Path, requirement: str) -> bool:
    python = _venv_python(venv)
    try:
        marker = json.loads((venv / _MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if marker != _marker_data(requirement) or not python.exists():
        return False
    try:
        _check_venv_python(python)
    except MongoServerError:
        return False
    return True


def _check_venv_python(python: Path, *, need_mongoeco: bool = True) -> None:
    """Check that ``python`` runs, is >= 3.13 and (optionally) has mongoeco."""
    code = f"import sys; assert sys.version_info[:2] >= {MIN_SERVER_PYTHON!r}, sys.version"
    if need_mongoeco:
        code += (
            "; import importlib.util; "
            "assert importlib.util.find_spec('mongoeco') is not None, 'mongoeco missing'"
        )
    try:
        proc = subprocess.run(
            [str(python), "-I", "-c", code],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise MongoServerError(f"cannot run {python}: {exc}") from exc
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()
        raise MongoServerError(f"{python} is unusable: {detail[-1] if detail else proc.returncode}")


def _clean_env() -> dict[str, str]:
    """The environment without settings that would leak another Python's modules."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def _run_step(command: list[str], what: str, timeout: float, hint: str = "") -> None:
    _log(f"{what}: {' '.join(command)}")
    try:
        proc = subprocess.run(
            command,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise MongoServerError(f"{what} failed: {exc}") from exc
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip().splitlines()
        tail = "\n".join(output[-40:])
        raise MongoServerError(f"{what} failed (exit code {proc.returncode}):\n{tail}{hint}")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An inter-process lock (no-op where ``fcntl`` is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_venv(path: str | os.PathLike[str] | None = None) -> Path:
    """Make sure a venv with ``mongoeco[wire]`` exists at ``path``; return its python.

    ``path`` defaults to :func:`default_venv_path`.  A venv that is missing,
    broken, half-installed (no marker file) or installed for another
    requirement is (re)built.  Safe to call concurrently from several
    processes; fast (one short subprocess) when the venv is ready.
    """
    venv = Path(path).expanduser().resolve() if path else default_venv_path()
    requirement = _requirement()
    if _venv_is_ready(venv, requirement):
        return _venv_python(venv)
    with _file_lock(venv.parent / f".{venv.name}.lock"):
        if _venv_is_ready(venv, requirement):  # another process finished it
            return _venv_python(venv)
        _build_venv(venv, requirement)
    return _venv_python(venv)


def _build_venv(venv: Path, requirement: str) -> None:
    started = time.monotonic()
    marker = venv / _MARKER_NAME
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    python = _venv_python(venv)
    try:
        usable = python.exists() and (venv / "pyvenv.cfg").exists()
        if usable:
            _check_venv_python(python, need_mongoeco=False)
    except MongoServerError:
        usable = False
    if not usable and venv.exists():
        # Only ever delete something that is clearly a venv (or empty).
        if (venv / "pyvenv.cfg").exists() or not any(venv.iterdir()):
            _log(f"removing broken venv {venv}")
            shutil.rmtree(venv)
        else:
            raise MongoServerError(
                f"{venv} exists but is not a venv; refusing to overwrite it. "
                "Remove it or set TIMETRACER_MONGOECO_VENV to another path."
            )
    if not usable:
        base = find_server_python()
        venv.parent.mkdir(parents=True, exist_ok=True)
        _run_step([base, "-m", "venv", str(venv)], "creating the mongoeco venv", 300)
    _run_step(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            requirement,
        ],
        f"installing {requirement}",
        1800,
        hint="\n(pip needs access to PyPI; set TIMETRACER_MONGOECO_REQUIREMENT to install something else)",
    )
    _check_venv_python(python)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(_marker_data(requirement)), encoding="utf-8")
    os.replace(tmp, marker)
    _log(f"mongoeco venv ready at {venv} ({time.monotonic() - started:.1f}s)")


# --------------------------------------------------------------------------
# Running the server
# --------------------------------------------------------------------------


def _pump(
    fd: int,
    tail: collections.deque[str],
    ready: queue.Queue[str | None] | None,
) -> None:
    """Read a child pipe until EOF, without buffered-IO locks.

    Lines go to ``tail``, except the first READY line, which goes to ``ready``;
    ``None`` is put on ``ready`` at EOF.
    """
    pending = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                if ready is not None and line.startswith(_READY_PREFIX):
                    ready.put(line)
                    ready = None
                else:
                    tail.append(line)
        if pending:
            tail.append(pending.decode("utf-8", "replace"))
    finally:
        if ready is not None:
            ready.put(None)


class MongoServer:
    """A running mongoeco wire server child process.

    Attributes: ``host``, ``port``, ``uri`` (for ``pymongo.MongoClient``) and
    ``process`` (the :class:`subprocess.Popen`).  Use it as a context manager
    or call :meth:`stop`.  Construct it with :func:`start_server`.
    """

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int) -> None:
        self.process = process
        self.host = host
        self.port = port
        self._output: collections.deque[str] = collections.deque(maxlen=400)
        self._threads: list[threading.Thread] = []

    @property
    def uri(self) -> str:
        """A PyMongo connection string for this server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mongodb://{host}:{self.port}/?directConnection=true"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def output(self, limit: int = 4000) -> str:
        """The last ``limit`` characters the server printed (stderr + stdout)."""
        text = "\n".join(self._output).strip()
        if not text:
            return "(no output)"
        return text if len(text) <= limit else "...\n" + text[-limit:]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: stdin EOF + SIGTERM, wait ``timeout``, then SIGKILL.

        Idempotent.  When it returns the process is gone and the port is free.
        """
        process = self.process
        if process.poll() is None:
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()
            with contextlib.suppress(OSError):
                process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for thread in self._threads:
            thread.join(2.0)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> MongoServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<MongoServer {self.uri} pid={self.process.pid} {state}>"


def start_server(
    port: int = 0,
    venv: str | os.PathLike[str] | None = None,
    timeout: float = 60,
    host: str = "127.0.0.1",
) -> MongoServer:
    """Start a mongoeco wire server on ``host:port`` and wait until it listens.

    ``port=0`` picks a free port.  ``venv`` is the server venv directory
    (default :func:`default_venv_path`); it is created first if needed (which
    may take a minute and is not counted in ``timeout``).  ``timeout`` bounds
    the wait for the server's READY line.  Raises :class:`MongoServerError`,
    including the server's output, if the server cannot start.
    """
    python = ensure_venv(venv)
    popen_kwargs: dict[str, Any] = {}
    if os.name == "posix":
        # Keep a terminal's Ctrl-C away from the child: its owner stops it.
        popen_kwargs["start_new_session"] = True
    try:
        process = subprocess.Popen(
            [str(python), "-I", "-u", "-c", _SERVER_SCRIPT, host, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            **popen_kwargs,
        )
    except OSError as exc:
        raise MongoServerError(f"cannot run {python}: {exc}") from exc
    server = MongoServer(process, host, port)
    assert process.stdout is not None and process.stderr is not None
    ready: queue.Queue[str | None] = queue.Queue()
    for name, stream, target in (
        ("stdout", process.stdout, ready),
        ("stderr", process.stderr, None),
    ):
        thread = threading.Thread(
            target=_pump,
            args=(stream.fileno(), server._output, target),
            name=f"mongoeco-{name}-{process.pid}",
            daemon=True,
        )
        thread.start()
        server._threads.append(thread)

    def failure(problem: str) -> MongoServerError:
        server.stop()
        return MongoServerError(
            f"the mongoeco server ({python}, {host}:{port}) {problem}.\nIts output:\n{server.output()}"
        )

    try:
        line = ready.get(timeout=timeout)
    except queue.Empty:
        raise failure(f"did not report READY within {timeout:g}s") from None
    except BaseException:
        server.stop()
        raise
    if line is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        raise failure(f"exited with code {process.returncode} before READY")
    ready_host, _, ready_port = line[len(_READY_PREFIX) :].strip().rpartition(":")
    server.host = ready_host or host
    server.port = int(ready_port)
    return server


def _nothing_listens(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) != 0


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mongo_server.py",
        description="mongoeco-based MongoDB-compatible server for timetracer's tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_venv = sub.add_parser("ensure-venv", help="create or repair the mongoeco venv; print its python")
    venv_help = "venv directory (default: $TIMETRACER_MONGOECO_VENV or <repo>/.cache/mongoeco-venv)"
    p_venv.add_argument("--venv", help=venv_help)
    p_serve = sub.add_parser("serve", help="run a server until Ctrl-C; print its URI")
    p_serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--venv", help=venv_help)
    p_serve.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the server to listen"
    )
    args = parser.parse_args(argv)

    try:
        if args.command == "ensure-venv":
            print(ensure_venv(args.venv), flush=True)
            return 0
        return _serve(args.host, args.port, args.venv, args.timeout)
    except MongoServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _serve(host: str, port: int, venv: str | None, timeout: float) -> int:
    if port and not _nothing_listens(host, port):
        print(f"error: something already listens on {host}:{port}", file=sys.stderr)
        return 1

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        server = start_server(port=port, venv=venv, timeout=timeout, host=host)
    except KeyboardInterrupt:
        return 130
    try:
        print(server.uri, flush=True)
        _log(f"serving on {server.host}:{server.port} (pid {server.process.pid}); Ctrl-C to stop")
        while server.running:
            time.sleep(0.5)
        _log(f"server exited unexpectedly (code {server.process.returncode}):\n{server.output()}")
        return 1
    except KeyboardInterrupt:
        _log("stopping")
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
