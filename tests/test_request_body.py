"""Request body capture and query/body redaction, through the WSGI middleware.

The application must read exactly the bytes it reads without timetracer, however it reads them;
the cassette's ``request`` keeps the body (text or base64, capped, redacted by field name).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
from werkzeug.serving import make_server
from werkzeug.test import Client, EnvironBuilder

from timetracer._body import BufferedInput, capture_body
from timetracer._redact import redact_body, redact_query
from timetracer.cassette import read_cassette
from timetracer.config import TraceConfig
from timetracer.errors import ConfigError
from timetracer.wsgi import TimeTracerMiddleware

WSGIApp = Callable[[Dict[str, Any], Callable[..., Any]], List[bytes]]


def config(tmp_path: Path, **overrides: Any) -> TraceConfig:
    overrides.setdefault("mode", "record")
    return TraceConfig.from_env({}, cassette_dir=tmp_path, **overrides)


def reader_app(how: str) -> WSGIApp:
    """An app that reads its body in one of the ways apps and frameworks do and echoes it back."""

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        stream = environ["wsgi.input"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if how == "read-length":
            data = stream.read(length)
        elif how == "small-reads":
            parts = []
            left = length
            while left > 0:
                part = stream.read(min(3, left))
                if not part:
                    break
                parts.append(part)
                left -= len(part)
            data = b"".join(parts)
        elif how == "readline":
            data = b""
            while len(data) < length:
                line = stream.readline(length - len(data))
                if not line:
                    break
                data += line
        elif how == "unread":
            data = b""
        else:
            raise AssertionError(how)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [data]

    return app


def only_file(tmp_path: Path) -> Dict[str, Any]:
    files = sorted(p for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert len(files) == 1, files
    return read_cassette(files[0])


BODIES = [
    pytest.param(b'{"name": "Alice", "tags": ["a", "b"]}\n', "application/json", id="json"),
    pytest.param(b"line one\nline two\nline three", "text/plain", id="lines"),
    pytest.param(bytes(range(256)) * 3, "application/octet-stream", id="binary"),
    pytest.param("naïve 日本 ✓".encode(), "text/plain; charset=utf-8", id="utf8"),
]


@pytest.mark.parametrize("how", ["read-length", "small-reads", "readline", "unread"])
@pytest.mark.parametrize("body, content_type", BODIES)
def test_the_app_reads_the_same_bytes_and_the_cassette_keeps_them(
    tmp_path: Path, how: str, body: bytes, content_type: str
) -> None:
    plain = Client(reader_app(how)).post("/echo", data=body, content_type=content_type)
    traced_app = TimeTracerMiddleware(reader_app(how), config(tmp_path))
    traced = Client(traced_app).post("/echo", data=body, content_type=content_type, buffered=True)
    assert traced.data == plain.data
    assert traced.data == (b"" if how == "unread" else body)

    request = only_file(tmp_path)["request"]
    assert request["body_truncated"] is False
    if request["body_encoding"] == "base64":
        assert base64.b64decode(request["body"]) == body
        assert content_type == "application/octet-stream"
    else:
        assert request["body_encoding"] == "text"
        assert request["body"] == body.decode("utf-8")


def test_a_body_over_the_limit_is_cut_in_the_cassette_but_whole_for_the_app(tmp_path: Path) -> None:
    body = b"x" * 100 + "é".encode() + b"y" * 50
    app = TimeTracerMiddleware(reader_app("small-reads"), config(tmp_path, max_body_bytes=101))
    response = Client(app).post("/echo", data=body, content_type="text/plain", buffered=True)
    assert response.data == body
    request = only_file(tmp_path)["request"]
    # The cut fell inside "é": its first byte is dropped rather than turning the body into base64.
    assert request == {**request, "body": "x" * 100, "body_encoding": "text", "body_truncated": True}


def test_max_body_bytes_zero_keeps_no_body_but_says_it_was_cut(tmp_path: Path) -> None:
    app = TimeTracerMiddleware(reader_app("read-length"), config(tmp_path, max_body_bytes=0))
    assert Client(app).post("/echo", data=b"abc", buffered=True).data == b"abc"
    request = only_file(tmp_path)["request"]
    assert (request["body"], request["body_truncated"]) == ("", True)


def test_no_body_is_null(tmp_path: Path) -> None:
    app = TimeTracerMiddleware(reader_app("read-length"), config(tmp_path))
    Client(app).get("/echo", buffered=True)
    request = only_file(tmp_path)["request"]
    assert request["body"] is None
    assert "body_encoding" not in request


def test_a_body_without_content_length_is_not_read_unless_the_server_ends_the_stream() -> None:
    class Endless(io.RawIOBase):
        """A socket that never ends: reading past what the client sent would block forever."""

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            raise AssertionError("read without CONTENT_LENGTH on an unterminated stream")

    stream = Endless()
    body, given = capture_body(stream, {}, 1024, terminated=False)
    assert body is None and given is stream

    terminated = io.BytesIO(b"chunked body")
    body, given = capture_body(terminated, {}, 5, terminated=True)
    assert body is not None and (body.data, body.truncated) == (b"chunk", True)
    assert given.read() == b"chunked body"


def test_a_chunked_request_to_a_real_server_is_captured_and_read_whole(tmp_path: Path) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        data = environ["wsgi.input"].read()  # a terminated stream may be read to its end
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [data]

    server = make_server("127.0.0.1", 0, TimeTracerMiddleware(app, config(tmp_path, max_body_bytes=10)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)

        def chunks() -> Iterator[bytes]:
            yield b"first-chunk;"
            yield b"second-chunk"

        connection.request("POST", "/upload", body=chunks(), encode_chunked=True)
        response = connection.getresponse()
        assert response.read() == b"first-chunk;second-chunk"
        connection.close()
    finally:
        server.shutdown()
        thread.join(10)
    request = only_file(tmp_path)["request"]
    assert (request["body"], request["body_truncated"]) == ("first-chun", True)


def test_an_error_while_reading_ahead_reaches_the_app_when_it_reads_on() -> None:
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls == 1:
                return b"abc"
            raise ConnectionResetError("client went away")

    body, stream = capture_body(Broken(), {"CONTENT_LENGTH": "10"}, 100)
    assert body is not None and body.data == b"abc"
    assert stream.read(3) == b"abc"
    with pytest.raises(ConnectionResetError, match="client went away"):
        stream.read(3)


@pytest.mark.parametrize(
    "prefix, rest, calls",
    [
        pytest.param(b"ab\ncd", b"ef\ngh", ["readline", "readline", "readline", "readline"], id="lines"),
        pytest.param(b"abcdef", b"ghij", ["read:4", "read:4", "read:4", "read:4"], id="reads"),
        pytest.param(b"ab\n", b"cd\n", ["readlines"], id="readlines"),
        pytest.param(b"a\nb", b"c\nd", ["iter"], id="iteration"),
        pytest.param(b"abc", b"def", ["read:-1"], id="read-all"),
        pytest.param(b"abcdef", b"\nxyz", ["readline:4", "readline:10", "readline:10"], id="capped-lines"),
        pytest.param(
            b"abcde", b"fghij", ["readinto:3", "readinto:4", "readinto:8", "readinto:2"], id="readinto"
        ),
    ],
)
def test_buffered_input_is_the_original_stream_call_for_call(
    prefix: bytes, rest: bytes, calls: List[str]
) -> None:
    def run(stream: Any) -> List[Any]:
        out: List[Any] = []
        for call in calls:
            name, _, arg = call.partition(":")
            if name == "iter":
                out.append(list(stream))
            elif name == "readlines":
                out.append(stream.readlines())
            elif name == "readinto":
                buffer = bytearray(int(arg))
                out.append((stream.readinto(buffer), bytes(buffer)))
            else:
                out.append(getattr(stream, name)(int(arg)) if arg else getattr(stream, name)())
        return out

    original = io.BytesIO(prefix + rest)
    inner = io.BytesIO(prefix + rest)
    inner.read(len(prefix))
    assert run(BufferedInput(prefix, inner)) == run(original)


# -- redaction ----------------------------------------------------------------------------------

NAMES = TraceConfig().redacted_query


@pytest.mark.parametrize(
    "query, expected",
    [
        pytest.param("page=2&token=abc", "page=2&token=[REDACTED]", id="token"),
        pytest.param("API_KEY=1&Password=2&x=3", "API_KEY=[REDACTED]&Password=[REDACTED]&x=3", id="any-case"),
        pytest.param("access%5Ftoken=s&sig=t", "access%5Ftoken=[REDACTED]&sig=[REDACTED]", id="encoded-name"),
        pytest.param("code=1&code=2&q=code", "code=[REDACTED]&code=[REDACTED]&q=code", id="repeated"),
        pytest.param("token&keys=1", "token&keys=1", id="no-value-and-near-names"),
        pytest.param("", "", id="empty"),
    ],
)
def test_query_parameters_are_redacted_by_name(query: str, expected: str) -> None:
    assert redact_query(query, NAMES) == expected


def test_json_and_form_body_fields_are_redacted_by_name_everywhere() -> None:
    body = json.dumps({"user": "a", "Password": "p", "nested": [{"api_key": 1, "keep": {"secret": None}}]})
    redacted = json.loads(redact_body(body, "application/json", NAMES))
    assert redacted == {
        "user": "a",
        "Password": "[REDACTED]",
        "nested": [{"api_key": "[REDACTED]", "keep": {"secret": "[REDACTED]"}}],
    }
    assert redact_body("user=a&password=p%20q", "application/x-www-form-urlencoded", NAMES) == (
        "user=a&password=[REDACTED]"
    )
    untouched = '{"user":  "a"}'
    assert redact_body(untouched, "application/json", NAMES) == untouched  # kept byte for byte
    cut = '{"user": "a", "password": "hunter2", "token": "abc\\"d'
    assert redact_body(cut, "application/json", NAMES) == (
        '{"user": "a", "password": "[REDACTED]", "token": "[REDACTED]"'
    )


def test_the_cassette_never_holds_the_secrets(tmp_path: Path) -> None:
    seen: List[bytes] = []

    def login(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        seen.append(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok": true}']

    app = TimeTracerMiddleware(login, config(tmp_path, redact_query="otp"))
    body = json.dumps({"login": "ann", "password": "hunter2", "otp": "123456"}).encode()
    url = "/login?token=tok-999&next=%2Fhome&OTP=654321"
    Client(app).post(url, data=body, content_type="application/json", buffered=True)
    assert seen == [body]  # the app still sees the real values
    text = next(p for p in tmp_path.iterdir()).read_text(encoding="utf-8")
    for secret in ("tok-999", "hunter2", "123456", "654321"):
        assert secret not in text
    request = json.loads(text)["request"]
    assert request["query"] == "token=[REDACTED]&next=%2Fhome&OTP=[REDACTED]"
    assert json.loads(request["body"]) == {"login": "ann", "password": "[REDACTED]", "otp": "[REDACTED]"}


def test_redact_query_setting_is_read_from_the_environment() -> None:
    built = TraceConfig.from_env({"TIMETRACER_REDACT_QUERY": "OTP, session_id"})
    assert {"otp", "session_id", "token"} <= built.redacted_query
    with pytest.raises(ConfigError, match="TIMETRACER_MAX_RECORDINGS_PER_ROUTE"):
        TraceConfig.from_env({"TIMETRACER_MAX_RECORDINGS_PER_ROUTE": "-1"})


def test_form_bodies_still_parse_for_a_framework(tmp_path: Path) -> None:
    from werkzeug.wrappers import Request, Response

    @Request.application  # type: ignore[misc]
    def app(request: Request) -> Response:
        return Response(json.dumps(request.form.to_dict(flat=False)), content_type="application/json")

    builder = EnvironBuilder(path="/form", method="POST", data={"a": "1", "password": "p", "b": ["x", "y"]})
    plain = Client(app).open(builder.get_environ())
    builder = EnvironBuilder(path="/form", method="POST", data={"a": "1", "password": "p", "b": ["x", "y"]})
    traced = Client(TimeTracerMiddleware(app, config(tmp_path))).open(builder.get_environ(), buffered=True)
    assert traced.data == plain.data
    assert json.loads(traced.data)["password"] == ["p"]
    assert only_file(tmp_path)["request"]["body"] == "a=1&password=[REDACTED]&b=x&b=y"


@pytest.mark.parametrize(
    "settings",
    [{"sample_rate": 0.0}, {"exclude_paths": "/echo"}, {"mode": "off"}],
    ids=["sampled-out", "excluded", "off"],
)
def test_an_untraced_request_gets_its_stream_untouched(tmp_path: Path, settings: Dict[str, Any]) -> None:
    seen: List[Any] = []

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        seen.append(environ["wsgi.input"])
        start_response("200 OK", [])
        return [environ["wsgi.input"].read(3)]

    original = io.BytesIO(b"abc")
    environ = EnvironBuilder(path="/echo", method="POST", data=b"abc").get_environ()
    environ["wsgi.input"] = original
    result = TimeTracerMiddleware(app, config(tmp_path, **settings))(environ, lambda *a: None)
    assert b"".join(result) == b"abc"
    getattr(result, "close", lambda: None)()
    assert seen == [original]
    assert list(tmp_path.iterdir()) == []
