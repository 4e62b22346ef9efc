"""Configuration: one frozen dataclass built from arguments, ``TIMETRACER_*`` variables and defaults.

Precedence is explicit arguments, then the environment, then defaults. The environment is read
when :meth:`TraceConfig.from_env` is called (by a middleware, a session or the pytest plugin),
never at import, so a script may set ``os.environ`` after importing timetracer.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Tuple

from timetracer._s3path import SCHEME, S3Path
from timetracer.errors import ConfigError

# Each variable is one constant, so the docs and the parser cannot drift apart.
ENV_MODE = "TIMETRACER_MODE"
ENV_CASSETTE = "TIMETRACER_CASSETTE"
ENV_CASSETTE_DIR = "TIMETRACER_CASSETTE_DIR"
ENV_COMPRESSION = "TIMETRACER_COMPRESSION"
ENV_SAMPLE_RATE = "TIMETRACER_SAMPLE_RATE"
ENV_ERRORS_ONLY = "TIMETRACER_ERRORS_ONLY"
ENV_SERVICE = "TIMETRACER_SERVICE"
ENV_ENV = "TIMETRACER_ENV"
ENV_EXCLUDE_PATHS = "TIMETRACER_EXCLUDE_PATHS"
ENV_IGNORE_FIELDS = "TIMETRACER_IGNORE_FIELDS"
ENV_STRICT = "TIMETRACER_STRICT"
ENV_MAX_BODY_BYTES = "TIMETRACER_MAX_BODY_BYTES"
ENV_REDACT_HEADERS = "TIMETRACER_REDACT_HEADERS"
ENV_REDACT_QUERY = "TIMETRACER_REDACT_QUERY"
ENV_MAX_RECORDINGS_PER_ROUTE = "TIMETRACER_MAX_RECORDINGS_PER_ROUTE"
ENV_MAX_CASSETTE_BYTES = "TIMETRACER_MAX_CASSETTE_BYTES"
ENV_FILE_MODE = "TIMETRACER_FILE_MODE"

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f", ""})

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# A cassette larger than this once decompressed is refused (CassetteError) before it fills memory.
DEFAULT_MAX_CASSETTE_BYTES = 256 * 1024 * 1024
# Cassettes hold production data: readable and writable by their owner only. New cassette folders
# get the same bits plus search (x) wherever read is granted: 0600 -> 0700, 0640 -> 0750.
DEFAULT_FILE_MODE = 0o600
# Headers whose values never reach a cassette; TIMETRACER_REDACT_HEADERS adds to these.
DEFAULT_REDACTED_HEADERS = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
)
# Query parameters and JSON/form body fields (matched by name, any case) whose values never reach
# a cassette; TIMETRACER_REDACT_QUERY adds to these.
DEFAULT_REDACTED_QUERY = (
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "passwd",
    "secret",
    "signature",
    "sig",
    "code",
    "auth",
)
# How many recordings one route (method and path, all query strings and bodies) keeps; 0: no limit.
DEFAULT_MAX_RECORDINGS_PER_ROUTE = 100


class Mode(str, enum.Enum):
    """What timetracer does with a request or script: nothing, record it, or replay it."""

    OFF = "off"
    RECORD = "record"
    REPLAY = "replay"


class Compression(str, enum.Enum):
    """How cassettes are written; reading detects the format from the file itself."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"

    @property
    def suffix(self) -> str:
        return {"none": ".json", "gzip": ".json.gz", "zstd": ".json.zst"}[self.value]


def _enum(cls: type[enum.Enum]) -> Callable[[Any, str], Any]:
    def parse(value: Any, label: str) -> Any:
        if isinstance(value, cls):
            return value
        text = str(value).strip().lower()
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(repr(m.value) for m in cls)  # type: ignore[attr-defined]
            raise ConfigError(f"{label}={value!r} is not valid; use one of {valid}") from None

    return parse


def _bool(value: Any, label: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ConfigError(
        f"{label}={value!r} is not a boolean; use one of "
        f"{', '.join(sorted(TRUE_WORDS))} or {', '.join(sorted(w for w in FALSE_WORDS if w))}"
    )


def _rate(value: Any, label: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = float("nan")
    if isinstance(value, bool) or not 0.0 <= rate <= 1.0:  # also rejects NaN
        raise ConfigError(
            f"{label}={value!r} is not valid; "
            "use a number from 0.0 to 1.0 (the fraction of requests recorded)"
        )
    return rate


def _non_negative_int(value: Any, label: str) -> int:
    try:
        number = -1 if isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(f"{label}={value!r} is not valid; use a whole number of bytes >= 0")
    return number


def _count(value: Any, label: str) -> int:
    try:
        number = -1 if isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(f"{label}={value!r} is not valid; use a whole number >= 0 (0: no limit)")
    return number


def _positive_int(value: Any, label: str) -> int:
    try:
        number = 0 if isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigError(
            f"{label}={value!r} is not valid; use a whole number of bytes > 0 "
            f"(default {DEFAULT_MAX_CASSETTE_BYTES}, i.e. 256 MiB)"
        )
    return number


def _file_mode(value: Any, label: str) -> int:
    """An octal permission string (``"600"``, ``"0640"``, ``"0o644"``) or an int, as mode bits."""
    if isinstance(value, int) and not isinstance(value, bool):
        mode: Optional[int] = value
    else:
        text = str(value).strip().lower()
        text = text[2:] if text.startswith("0o") else text
        mode = int(text, 8) if text and all(c in "01234567" for c in text) else None
    if mode is None or not 0 <= mode <= 0o777 or mode & 0o600 != 0o600:
        raise ConfigError(
            f"{label}={value!r} is not valid; use octal permission bits from 600 to 777 that let "
            "the owner read and write (e.g. 600, 640 or 644)"
        )
    return mode


def folder_mode(file_mode: int) -> int:
    """The mode of a cassette folder timetracer creates: the file mode plus x wherever r is set."""
    return file_mode | ((file_mode & 0o444) >> 2)


def _csv(value: Any, label: str = "") -> Tuple[str, ...]:
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [str(v) for v in value]
    else:
        items = str(value).split(",")
    return tuple(item.strip() for item in items if item.strip())


def _lower_csv(value: Any, label: str = "") -> Tuple[str, ...]:
    return tuple(item.lower() for item in _csv(value))


def _path(value: Any, label: str = "") -> Path:
    if isinstance(value, S3Path) or str(value).strip().startswith(SCHEME):
        return S3Path.parse(value, label)  # type: ignore[return-value]  # see timetracer._s3path
    return Path(os.path.expanduser(str(value)))


def _optional_path(value: Any, label: str = "") -> Optional[Path]:
    if value is None or str(value).strip() == "":
        return None
    return _path(value)


def _text(value: Any, label: str = "") -> Optional[str]:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclass(frozen=True)
class TraceConfig:
    """Settings for one middleware, session or test run.

    :param mode: ``off``, ``record`` or ``replay`` (``TIMETRACER_MODE``).
    :param cassette: one cassette file to replay, or to write in script mode (``TIMETRACER_CASSETTE``).
    :param cassette_dir: where cassettes named after requests live (``TIMETRACER_CASSETTE_DIR``).
        ``cassette`` and ``cassette_dir`` may be ``s3://bucket/prefix`` URLs: they are then
        :class:`~timetracer._s3path.S3Path` values (needs ``pip install timetracer[s3]``).
    :param compression: ``none``, ``gzip`` or ``zstd`` for written cassettes (``TIMETRACER_COMPRESSION``).
    :param sample_rate: fraction of requests recorded, 0.0 to 1.0 (``TIMETRACER_SAMPLE_RATE``).
    :param errors_only: record only requests ending in status >= 500 or an exception.
    :param service: written into ``session.service`` (``TIMETRACER_SERVICE``).
    :param env: written into ``session.env`` (``TIMETRACER_ENV``).
    :param exclude_paths: path prefixes never recorded or replayed (``TIMETRACER_EXCLUDE_PATHS``).
    :param ignore_fields: dotted argument fields ignored when matching in replay.
    :param strict: replay with no fallback matching and fail on unused recorded calls.
    :param max_body_bytes: response bodies are captured up to this many bytes.
    :param redact_headers: extra header names whose values are never stored.
    :param redact_query: extra query parameter / JSON or form body field names whose values are
        never stored (``TIMETRACER_REDACT_QUERY``), added to ``DEFAULT_REDACTED_QUERY``.
    :param max_recordings_per_route: recordings kept per method and path; later requests of that
        route run unrecorded (``TIMETRACER_MAX_RECORDINGS_PER_ROUTE``, 0: no limit).
    :param max_cassette_bytes: a cassette larger than this (decompressed) is refused when read.
    :param file_mode: permission bits of written cassettes (``TIMETRACER_FILE_MODE``, default
        ``0600``); folders timetracer creates get :func:`folder_mode` of it (``0700``).

    Example::

        config = TraceConfig.from_env(mode="record", compression="gzip")
    """

    mode: Mode = Mode.OFF
    cassette: Optional[Path] = None
    cassette_dir: Path = Path("cassettes")
    compression: Compression = Compression.NONE
    sample_rate: float = 1.0
    errors_only: bool = False
    service: Optional[str] = None
    env: Optional[str] = None
    exclude_paths: Tuple[str, ...] = ()
    ignore_fields: Tuple[str, ...] = ()
    strict: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    redact_headers: Tuple[str, ...] = ()
    redact_query: Tuple[str, ...] = ()
    max_recordings_per_route: int = DEFAULT_MAX_RECORDINGS_PER_ROUTE
    max_cassette_bytes: int = DEFAULT_MAX_CASSETTE_BYTES
    file_mode: int = DEFAULT_FILE_MODE

    def __post_init__(self) -> None:
        # Direct construction (``TraceConfig(mode="record")``, ``dataclasses.replace``) gets the
        # same parsing as from_env, so a field always holds its declared type.
        for name, (_, parse) in _PARSERS.items():
            value = getattr(self, name)
            if value is None and name in _NULLABLE:
                continue
            object.__setattr__(self, name, parse(value, name))
        self.check()

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **overrides: Any) -> TraceConfig:
        """Build a config: ``overrides`` > ``environ`` (default ``os.environ``) > defaults.

        A variable set to an empty or blank string counts as unset. Raises :class:`ConfigError`
        for a bad value and ``TypeError`` for an unknown argument.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(
                f"TraceConfig got unknown argument(s) {', '.join(unknown)}; "
                f"valid ones are {', '.join(sorted(known))}"
            )
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (variable, parse) in _PARSERS.items():
            if name in overrides:
                raw = overrides[name]
                values[name] = raw if raw is None and name in _NULLABLE else parse(raw, name)
            else:
                text = env.get(variable)
                if text is not None and str(text).strip():
                    values[name] = parse(text, variable)
        return cls(**values)

    def check(self) -> None:
        """Raise :class:`ConfigError` if this combination of settings cannot work."""
        if self.compression is Compression.ZSTD:
            try:
                import zstandard  # noqa: F401
            except ImportError:
                raise ConfigError(
                    f"{ENV_COMPRESSION}=zstd needs the zstandard package; "
                    "install it with: pip install timetracer[zstd]"
                ) from None
        for label, value in ((ENV_CASSETTE_DIR, self.cassette_dir), (ENV_CASSETTE, self.cassette)):
            if isinstance(value, S3Path):
                from timetracer.cassette._s3 import check_settings, require_boto3

                require_boto3(f"{label}={value}")
                check_settings()

    @property
    def redacted_headers(self) -> frozenset[str]:
        return frozenset(DEFAULT_REDACTED_HEADERS) | frozenset(self.redact_headers)

    @property
    def redacted_query(self) -> frozenset[str]:
        """Lower-case names of query parameters and body fields whose values are redacted."""
        return frozenset(DEFAULT_REDACTED_QUERY) | frozenset(self.redact_query)

    def is_excluded(self, path: str) -> bool:
        return any(path.startswith(prefix) for prefix in self.exclude_paths)


_NULLABLE = {"cassette", "service", "env"}

_PARSERS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "mode": (ENV_MODE, _enum(Mode)),
    "cassette": (ENV_CASSETTE, _optional_path),
    "cassette_dir": (ENV_CASSETTE_DIR, _path),
    "compression": (ENV_COMPRESSION, _enum(Compression)),
    "sample_rate": (ENV_SAMPLE_RATE, _rate),
    "errors_only": (ENV_ERRORS_ONLY, _bool),
    "service": (ENV_SERVICE, _text),
    "env": (ENV_ENV, _text),
    "exclude_paths": (ENV_EXCLUDE_PATHS, _csv),
    "ignore_fields": (ENV_IGNORE_FIELDS, _csv),
    "strict": (ENV_STRICT, _bool),
    "max_body_bytes": (ENV_MAX_BODY_BYTES, _non_negative_int),
    "redact_headers": (ENV_REDACT_HEADERS, _lower_csv),
    "redact_query": (ENV_REDACT_QUERY, _lower_csv),
    "max_recordings_per_route": (ENV_MAX_RECORDINGS_PER_ROUTE, _count),
    "max_cassette_bytes": (ENV_MAX_CASSETTE_BYTES, _positive_int),
    "file_mode": (ENV_FILE_MODE, _file_mode),
}
