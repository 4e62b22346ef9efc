"""Real server processes for the reliability tests: start one, send a request, SIGKILL it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

HERE = Path(__file__).resolve().parent
APP = HERE / "served_app.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(kind: str, port: int) -> List[str]:
    """The command line that serves ``served_app`` with server ``kind`` on ``port``."""
    if kind == "flask-dev-server":
        return [sys.executable, str(APP), str(port)]
    if kind == "waitress":
        return [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "served_app:app"]
    if kind == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "served_app:app"]
    if kind == "gunicorn-django":
        return [
            sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "served_django:application"
        ]
    raise ValueError(f"unknown server kind {kind!r}")


class ServerProcess:
    """A server in its own process group, so SIGKILL reaches every process it has (gunicorn's worker)."""

    def __init__(self, kind: str, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        with open(log, "ab") as sink:
            self.process = subprocess.Popen(
                server_command(kind, self.port),
                cwd=str(HERE),
                env={**env, "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])},
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"the server did not listen within {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL the whole process group, as a container stop or an OOM killer would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


def _dechunk(data: bytes) -> Tuple[bytes, bool]:
    """The body of a chunked transfer so far, and whether its terminating chunk has arrived."""
    body = b""
    while True:
        line_end = data.find(b"\r\n")
        if line_end < 0:
            return body, False
        size = int(data[:line_end].split(b";")[0], 16)
        if size == 0:
            return body, data[line_end + 2 :].startswith(b"\r\n")
        start = line_end + 2
        if len(data) < start + size + 2:
            return body, False
        body += data[start : start + size]
        data = data[start + size + 2 :]


def get(port: int, path: str, timeout: float = 30.0) -> Tuple[int, Dict[str, str], bytes]:
    """GET ``path``; return as soon as the whole response is here (not when the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            piece = conn.recv(65536)
            data += piece
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                if "content-length" in headers:
                    if len(rest) >= int(headers["content-length"]):
                        return status, headers, rest[: int(headers["content-length"])]
                elif headers.get("transfer-encoding", "").lower() == "chunked":
                    body, complete = _dechunk(rest)
                    if complete:
                        return status, headers, body
                elif not piece:
                    return status, headers, rest
            if not piece:
                raise ConnectionError(f"the connection closed before the response was complete: {data!r}")
