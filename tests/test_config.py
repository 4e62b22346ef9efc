"""TraceConfig: precedence, parsing of every TIMETRACER_* variable, and the errors for bad values."""

from __future__ import annotations

import dataclasses
import enum
import math
import sys
from pathlib import Path

import pytest

import timetracer
from timetracer import config as config_module
from timetracer.config import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_REDACTED_HEADERS,
    Compression,
    Mode,
    TraceConfig,
)
from timetracer.errors import ConfigError, TimeTracerError

ALL_VARIABLES = [
    config_module.ENV_MODE,
    config_module.ENV_CASSETTE,
    config_module.ENV_CASSETTE_DIR,
    config_module.ENV_COMPRESSION,
    config_module.ENV_SAMPLE_RATE,
    config_module.ENV_ERRORS_ONLY,
    config_module.ENV_SERVICE,
    config_module.ENV_ENV,
    config_module.ENV_EXCLUDE_PATHS,
    config_module.ENV_IGNORE_FIELDS,
    config_module.ENV_STRICT,
    config_module.ENV_MAX_BODY_BYTES,
    config_module.ENV_REDACT_HEADERS,
    config_module.ENV_REDACT_QUERY,
    config_module.ENV_MAX_RECORDINGS_PER_ROUTE,
    config_module.ENV_MAX_CASSETTE_BYTES,
    config_module.ENV_FILE_MODE,
]


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TIMETRACER_* setting of the surrounding shell leaks into these tests."""
    for variable in ALL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


# -- constants and types --------------------------------------------------------------------------


def test_every_variable_is_a_documented_constant() -> None:
    names = {value for key, value in vars(config_module).items() if key.startswith("ENV_")}
    assert names == set(ALL_VARIABLES)
    assert all(name.startswith("TIMETRACER_") for name in names)
    # One variable per field, so docs, parser and dataclass cannot drift apart.
    assert len(ALL_VARIABLES) == len(dataclasses.fields(TraceConfig))


@pytest.mark.parametrize("cls", [Mode, Compression], ids=["Mode", "Compression"])
def test_enums_are_str_enums(cls: type[enum.Enum]) -> None:
    assert issubclass(cls, str)
    assert issubclass(cls, enum.Enum)
    for member in cls:
        assert member == member.value  # compares equal to its plain string
        assert isinstance(member, str)


def test_mode_values() -> None:
    assert [m.value for m in Mode] == ["off", "record", "replay"]


@pytest.mark.parametrize(
    ("compression", "suffix"),
    [
        pytest.param(Compression.NONE, ".json", id="none"),
        pytest.param(Compression.GZIP, ".json.gz", id="gzip"),
        pytest.param(Compression.ZSTD, ".json.zst", id="zstd"),
    ],
)
def test_compression_suffix(compression: Compression, suffix: str) -> None:
    assert compression.suffix == suffix


def test_public_exports() -> None:
    assert timetracer.TraceConfig is TraceConfig
    assert timetracer.Mode is Mode
    assert timetracer.Compression is Compression
    assert issubclass(ConfigError, TimeTracerError)
    assert issubclass(ConfigError, ValueError)


# -- defaults and precedence ----------------------------------------------------------------------


def test_defaults_with_empty_environ() -> None:
    config = TraceConfig.from_env({})
    assert config == TraceConfig()
    assert config.mode is Mode.OFF
    assert config.cassette is None
    assert config.cassette_dir == Path("cassettes")
    assert config.compression is Compression.NONE
    assert config.sample_rate == 1.0
    assert config.errors_only is False
    assert config.service is None
    assert config.env is None
    assert config.exclude_paths == ()
    assert config.ignore_fields == ()
    assert config.strict is False
    assert config.max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert config.redact_headers == ()
    assert config.redacted_headers == frozenset(DEFAULT_REDACTED_HEADERS)


def test_defaults_with_clean_os_environ() -> None:
    assert TraceConfig.from_env() == TraceConfig()


def test_environ_beats_defaults() -> None:
    config = TraceConfig.from_env({"TIMETRACER_MODE": "record", "TIMETRACER_SERVICE": "shop"})
    assert config.mode is Mode.RECORD
    assert config.service == "shop"
    assert config.compression is Compression.NONE  # untouched: default


def test_arguments_beat_environ() -> None:
    environ = {
        "TIMETRACER_MODE": "record",
        "TIMETRACER_COMPRESSION": "gzip",
        "TIMETRACER_SAMPLE_RATE": "0.5",
        "TIMETRACER_STRICT": "true",
        "TIMETRACER_SERVICE": "from-env",
        "TIMETRACER_EXCLUDE_PATHS": "/health",
    }
    config = TraceConfig.from_env(
        environ, mode="replay", compression=Compression.NONE, sample_rate=0.25, strict=False
    )
    assert config.mode is Mode.REPLAY
    assert config.compression is Compression.NONE
    assert config.sample_rate == 0.25
    assert config.strict is False
    # Not overridden: still from the environment.
    assert config.service == "from-env"
    assert config.exclude_paths == ("/health",)


def test_explicit_none_clears_a_nullable_setting() -> None:
    environ = {"TIMETRACER_CASSETTE": "x.json", "TIMETRACER_SERVICE": "svc", "TIMETRACER_ENV": "prod"}
    config = TraceConfig.from_env(environ, cassette=None, service=None, env=None)
    assert config.cassette is None
    assert config.service is None
    assert config.env is None


def test_explicit_mapping_ignores_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMETRACER_MODE", "record")
    assert TraceConfig.from_env({}).mode is Mode.OFF
    assert TraceConfig.from_env({"TIMETRACER_MODE": "replay"}).mode is Mode.REPLAY


def test_os_environ_is_read_at_call_time_not_import(monkeypatch: pytest.MonkeyPatch) -> None:
    # timetracer.config was imported long before this point.
    assert TraceConfig.from_env().mode is Mode.OFF
    monkeypatch.setenv("TIMETRACER_MODE", "record")
    monkeypatch.setenv("TIMETRACER_CASSETTE_DIR", "later")
    config = TraceConfig.from_env()
    assert config.mode is Mode.RECORD
    assert config.cassette_dir == Path("later")
    monkeypatch.setenv("TIMETRACER_MODE", "replay")
    assert TraceConfig.from_env().mode is Mode.REPLAY
    monkeypatch.delenv("TIMETRACER_MODE")
    assert TraceConfig.from_env().mode is Mode.OFF


def test_unrelated_variables_are_ignored() -> None:
    config = TraceConfig.from_env({"TIMETRACER_TEST_MONGODB_URI": "mongodb://x", "MODE": "record"})
    assert config == TraceConfig()


@pytest.mark.parametrize(
    "variable",
    [
        "TIMETRACER_MODE",
        "TIMETRACER_CASSETTE",
        "TIMETRACER_CASSETTE_DIR",
        "TIMETRACER_COMPRESSION",
        "TIMETRACER_SAMPLE_RATE",
        "TIMETRACER_ERRORS_ONLY",
        "TIMETRACER_MAX_BODY_BYTES",
        "TIMETRACER_STRICT",
    ],
)
@pytest.mark.parametrize("blank", ["", "   "], ids=["empty", "blank"])
def test_blank_variable_counts_as_unset(variable: str, blank: str) -> None:
    assert TraceConfig.from_env({variable: blank}) == TraceConfig()


# -- each variable --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("off", Mode.OFF, id="off"),
        pytest.param("record", Mode.RECORD, id="record"),
        pytest.param("replay", Mode.REPLAY, id="replay"),
        pytest.param("RECORD", Mode.RECORD, id="upper"),
        pytest.param("Replay", Mode.REPLAY, id="mixed-case"),
        pytest.param("  record\n", Mode.RECORD, id="whitespace"),
    ],
)
def test_mode(raw: str, expected: Mode) -> None:
    config = TraceConfig.from_env({"TIMETRACER_MODE": raw})
    assert config.mode is expected


def test_mode_argument_accepts_enum_and_string() -> None:
    assert TraceConfig.from_env({}, mode=Mode.REPLAY).mode is Mode.REPLAY
    assert TraceConfig.from_env({}, mode="Record").mode is Mode.RECORD


def test_cassette() -> None:
    config = TraceConfig.from_env({"TIMETRACER_CASSETTE": "./cassettes/GET__users_123.json"})
    assert config.cassette == Path("cassettes/GET__users_123.json")
    assert isinstance(config.cassette, Path)


def test_cassette_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    config = TraceConfig.from_env({"TIMETRACER_CASSETTE": "~/c.json", "TIMETRACER_CASSETTE_DIR": "~/tapes"})
    assert config.cassette == tmp_path / "c.json"
    assert config.cassette_dir == tmp_path / "tapes"


def test_cassette_dir() -> None:
    assert TraceConfig.from_env({}).cassette_dir == Path("cassettes")
    config = TraceConfig.from_env({"TIMETRACER_CASSETTE_DIR": "./etl_cassettes"})
    assert config.cassette_dir == Path("etl_cassettes")
    assert isinstance(config.cassette_dir, Path)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("none", Compression.NONE, id="none"),
        pytest.param("gzip", Compression.GZIP, id="gzip"),
        pytest.param("GZIP", Compression.GZIP, id="gzip-upper"),
        pytest.param("zstd", Compression.ZSTD, id="zstd"),
    ],
)
def test_compression(raw: str, expected: Compression) -> None:
    if expected is Compression.ZSTD:
        pytest.importorskip("zstandard")
    assert TraceConfig.from_env({"TIMETRACER_COMPRESSION": raw}).compression is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("0", 0.0, id="zero"),
        pytest.param("0.0", 0.0, id="zero-float"),
        pytest.param("0.1", 0.1, id="tenth"),
        pytest.param(".5", 0.5, id="no-leading-digit"),
        pytest.param("1", 1.0, id="one"),
        pytest.param("1.0", 1.0, id="one-float"),
        pytest.param(" 0.25 ", 0.25, id="whitespace"),
        pytest.param("1e-2", 0.01, id="exponent"),
    ],
)
def test_sample_rate(raw: str, expected: float) -> None:
    rate = TraceConfig.from_env({"TIMETRACER_SAMPLE_RATE": raw}).sample_rate
    assert isinstance(rate, float)
    assert rate == pytest.approx(expected)


TRUE_RAW = ["1", "true", "TRUE", "True", "yes", "on", "y", "t", " true "]
FALSE_RAW = ["0", "false", "FALSE", "no", "off", "n", "f"]


@pytest.mark.parametrize("variable", ["TIMETRACER_ERRORS_ONLY", "TIMETRACER_STRICT"])
@pytest.mark.parametrize("raw", TRUE_RAW)
def test_booleans_true(variable: str, raw: str) -> None:
    config = TraceConfig.from_env({variable: raw})
    field = "errors_only" if variable.endswith("ERRORS_ONLY") else "strict"
    assert getattr(config, field) is True


@pytest.mark.parametrize("variable", ["TIMETRACER_ERRORS_ONLY", "TIMETRACER_STRICT"])
@pytest.mark.parametrize("raw", FALSE_RAW)
def test_booleans_false(variable: str, raw: str) -> None:
    config = TraceConfig.from_env({variable: raw})
    field = "errors_only" if variable.endswith("ERRORS_ONLY") else "strict"
    assert getattr(config, field) is False
    # False is also the default; a true word flipping the field shows the variable is really read.
    assert getattr(TraceConfig.from_env({variable: "yes"}), field) is True


def test_service_and_env() -> None:
    config = TraceConfig.from_env({"TIMETRACER_SERVICE": " myapp ", "TIMETRACER_ENV": "production"})
    assert config.service == "myapp"
    assert config.env == "production"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("/health", ("/health",), id="one"),
        pytest.param("/health,/metrics", ("/health", "/metrics"), id="two"),
        pytest.param(" /health , /metrics ,", ("/health", "/metrics"), id="spaces-and-trailing-comma"),
        pytest.param(",,", (), id="only-commas"),
    ],
)
def test_exclude_paths(raw: str, expected: tuple[str, ...]) -> None:
    config = TraceConfig.from_env({"TIMETRACER_EXCLUDE_PATHS": raw})
    assert config.exclude_paths == expected


def test_exclude_paths_argument_accepts_a_list() -> None:
    config = TraceConfig.from_env({}, exclude_paths=["/health", " /static "])
    assert config.exclude_paths == ("/health", "/static")
    assert config.is_excluded("/health")
    assert config.is_excluded("/static/app.js")
    assert not config.is_excluded("/users/1")


def test_ignore_fields() -> None:
    config = TraceConfig.from_env({"TIMETRACER_IGNORE_FIELDS": "filter.updated_at, update.$set.ts"})
    assert config.ignore_fields == ("filter.updated_at", "update.$set.ts")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("0", 0, id="zero"),
        pytest.param("1024", 1024, id="kib"),
        pytest.param(" 2048 ", 2048, id="whitespace"),
        pytest.param("10485760", 10 * 1024 * 1024, id="ten-mib"),
    ],
)
def test_max_body_bytes(raw: str, expected: int) -> None:
    value = TraceConfig.from_env({"TIMETRACER_MAX_BODY_BYTES": raw}).max_body_bytes
    assert value == expected
    assert isinstance(value, int)


def test_redact_headers_are_lowercased_and_added_to_defaults() -> None:
    config = TraceConfig.from_env({"TIMETRACER_REDACT_HEADERS": "X-Secret, X-Tenant-Token"})
    assert config.redact_headers == ("x-secret", "x-tenant-token")
    assert {"x-secret", "x-tenant-token", "authorization", "cookie"} <= config.redacted_headers


def test_every_variable_at_once() -> None:
    pytest.importorskip("zstandard")
    environ = {
        "TIMETRACER_MODE": "replay",
        "TIMETRACER_CASSETTE": "c.json",
        "TIMETRACER_CASSETTE_DIR": "tapes",
        "TIMETRACER_COMPRESSION": "zstd",
        "TIMETRACER_SAMPLE_RATE": "0.3",
        "TIMETRACER_ERRORS_ONLY": "yes",
        "TIMETRACER_SERVICE": "svc",
        "TIMETRACER_ENV": "staging",
        "TIMETRACER_EXCLUDE_PATHS": "/a,/b",
        "TIMETRACER_IGNORE_FIELDS": "x.y",
        "TIMETRACER_STRICT": "1",
        "TIMETRACER_MAX_BODY_BYTES": "99",
        "TIMETRACER_REDACT_HEADERS": "X-One",
    }
    assert TraceConfig.from_env(environ) == TraceConfig(
        mode=Mode.REPLAY,
        cassette=Path("c.json"),
        cassette_dir=Path("tapes"),
        compression=Compression.ZSTD,
        sample_rate=0.3,
        errors_only=True,
        service="svc",
        env="staging",
        exclude_paths=("/a", "/b"),
        ignore_fields=("x.y",),
        strict=True,
        max_body_bytes=99,
        redact_headers=("x-one",),
    )


# -- bad values -----------------------------------------------------------------------------------

BAD_VALUES = [
    pytest.param("TIMETRACER_MODE", "recrod", ["'off'", "'record'", "'replay'"], id="mode-typo"),
    pytest.param("TIMETRACER_MODE", "on", ["'off'", "'record'", "'replay'"], id="mode-bool-word"),
    pytest.param("TIMETRACER_SAMPLE_RATE", "2", ["0.0", "1.0"], id="rate-above-one"),
    pytest.param("TIMETRACER_SAMPLE_RATE", "-0.1", ["0.0", "1.0"], id="rate-negative"),
    pytest.param("TIMETRACER_SAMPLE_RATE", "nan", ["0.0", "1.0"], id="rate-nan"),
    pytest.param("TIMETRACER_SAMPLE_RATE", "inf", ["0.0", "1.0"], id="rate-inf"),
    pytest.param("TIMETRACER_SAMPLE_RATE", "abc", ["0.0", "1.0"], id="rate-not-a-number"),
    pytest.param("TIMETRACER_SAMPLE_RATE", "50%", ["0.0", "1.0"], id="rate-percent"),
    pytest.param("TIMETRACER_ERRORS_ONLY", "maybe", ["true", "false", "yes", "no"], id="errors-only-maybe"),
    pytest.param("TIMETRACER_STRICT", "maybe", ["true", "false", "yes", "no"], id="strict-maybe"),
    pytest.param("TIMETRACER_STRICT", "2", ["true", "false"], id="strict-two"),
    pytest.param("TIMETRACER_COMPRESSION", "lz4", ["'none'", "'gzip'", "'zstd'"], id="compression-lz4"),
    pytest.param("TIMETRACER_COMPRESSION", "gz", ["'none'", "'gzip'", "'zstd'"], id="compression-gz"),
    pytest.param("TIMETRACER_MAX_BODY_BYTES", "-1", [">= 0"], id="max-body-negative"),
    pytest.param("TIMETRACER_MAX_BODY_BYTES", "1.5", [">= 0"], id="max-body-float"),
    pytest.param("TIMETRACER_MAX_BODY_BYTES", "1MB", [">= 0"], id="max-body-unit"),
]


@pytest.mark.parametrize(("variable", "raw", "accepted"), BAD_VALUES)
def test_bad_environment_value(variable: str, raw: str, accepted: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        TraceConfig.from_env({variable: raw})
    message = str(info.value)
    assert variable in message  # which setting
    assert repr(raw) in message  # the value that was given
    for word in accepted:  # what would have been accepted
        assert word in message


@pytest.mark.parametrize(("variable", "raw", "accepted"), BAD_VALUES)
def test_bad_environment_value_from_os_environ(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, accepted: list[str]
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigError, match=variable):
        TraceConfig.from_env()


@pytest.mark.parametrize(
    ("argument", "value", "accepted"),
    [
        pytest.param("mode", "recrod", "'replay'", id="mode"),
        pytest.param("sample_rate", 2, "1.0", id="rate"),
        pytest.param("sample_rate", float("nan"), "1.0", id="rate-nan"),
        pytest.param("sample_rate", True, "1.0", id="rate-bool"),
        pytest.param("strict", "maybe", "true", id="strict"),
        pytest.param("compression", "lz4", "'gzip'", id="compression"),
        pytest.param("max_body_bytes", -1, ">= 0", id="max-body"),
    ],
)
def test_bad_argument_names_the_argument(argument: str, value: object, accepted: str) -> None:
    with pytest.raises(ConfigError) as info:
        TraceConfig.from_env({}, **{argument: value})
    message = str(info.value)
    assert f"{argument}={value!r}" in message
    assert accepted in message


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        TraceConfig.from_env({"TIMETRACER_MODE": "recrod"})


def test_unknown_argument_is_a_type_error_listing_valid_names() -> None:
    with pytest.raises(TypeError) as info:
        TraceConfig.from_env({}, mdoe="record")
    message = str(info.value)
    assert "mdoe" in message
    for field in dataclasses.fields(TraceConfig):
        assert field.name in message


def test_unknown_argument_is_not_a_config_error() -> None:
    with pytest.raises(TypeError) as info:
        TraceConfig.from_env({}, cassete_dir="x")
    assert not isinstance(info.value, ConfigError)


# -- zstd availability ----------------------------------------------------------------------------


def test_zstd_without_zstandard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)  # makes `import zstandard` fail
    with pytest.raises(ConfigError) as info:
        TraceConfig.from_env({"TIMETRACER_COMPRESSION": "zstd"})
    message = str(info.value)
    assert "pip install timetracer[zstd]" in message
    assert "TIMETRACER_COMPRESSION" in message
    # The other compressions need nothing extra.
    assert TraceConfig.from_env({"TIMETRACER_COMPRESSION": "gzip"}).compression is Compression.GZIP


def test_zstd_without_zstandard_as_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(ConfigError, match=r"pip install timetracer\[zstd\]"):
        TraceConfig.from_env({}, compression=Compression.ZSTD)
    with pytest.raises(ConfigError, match=r"pip install timetracer\[zstd\]"):
        TraceConfig(compression=Compression.ZSTD)


def test_zstd_with_zstandard() -> None:
    pytest.importorskip("zstandard")
    assert TraceConfig.from_env({"TIMETRACER_COMPRESSION": "zstd"}).compression is Compression.ZSTD


# -- the dataclass --------------------------------------------------------------------------------


def test_frozen() -> None:
    config = TraceConfig.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mode = Mode.RECORD  # type: ignore[misc]
    assert dataclasses.is_dataclass(config)


def test_hashable_and_comparable() -> None:
    a = TraceConfig.from_env({"TIMETRACER_EXCLUDE_PATHS": "/a,/b"})
    b = TraceConfig.from_env({}, exclude_paths=("/a", "/b"))
    assert a == b
    assert hash(a) == hash(b)


def test_direct_construction_is_normalised_like_from_env() -> None:
    config = TraceConfig(
        mode="Record",  # type: ignore[arg-type]
        cassette_dir="tapes",  # type: ignore[arg-type]
        compression="gzip",  # type: ignore[arg-type]
        sample_rate="0.5",  # type: ignore[arg-type]
        strict="yes",  # type: ignore[arg-type]
        exclude_paths="/health, /metrics",  # type: ignore[arg-type]
        redact_headers=["X-Key"],  # type: ignore[arg-type]
    )
    assert config.mode is Mode.RECORD
    assert config.cassette_dir == Path("tapes")
    assert config.compression is Compression.GZIP
    assert config.compression.suffix == ".json.gz"
    assert config.sample_rate == 0.5
    assert config.strict is True
    assert config.exclude_paths == ("/health", "/metrics")
    assert config.redact_headers == ("x-key",)


def test_direct_construction_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="mode='recrod'"):
        TraceConfig(mode="recrod")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TraceConfig(mdoe="record")  # type: ignore[call-arg]


def test_replace_keeps_types() -> None:
    config = dataclasses.replace(TraceConfig(), mode="replay")  # type: ignore[arg-type]
    assert config.mode is Mode.REPLAY


def test_nan_is_never_a_rate() -> None:
    # NaN compares false with everything, so a naive range check would let it through.
    for raw in ["nan", "NaN", "-nan"]:
        with pytest.raises(ConfigError):
            TraceConfig.from_env({"TIMETRACER_SAMPLE_RATE": raw})
    assert not math.isnan(TraceConfig.from_env({}).sample_rate)


# -- cassette size cap and file mode (issue 10) -----------------------------------------------------


def test_max_cassette_bytes_default_and_setting() -> None:
    assert TraceConfig().max_cassette_bytes == config_module.DEFAULT_MAX_CASSETTE_BYTES == 256 * 1024 * 1024
    assert TraceConfig.from_env({"TIMETRACER_MAX_CASSETTE_BYTES": " 1048576 "}).max_cassette_bytes == 1048576


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5", "1e9"])
def test_bad_max_cassette_bytes_is_a_config_error_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="TIMETRACER_MAX_CASSETTE_BYTES") as info:
        TraceConfig.from_env({"TIMETRACER_MAX_CASSETTE_BYTES": value})
    assert repr(value) in str(info.value) and "> 0" in str(info.value)


def test_file_mode_from_an_int_and_from_text() -> None:
    assert TraceConfig(file_mode=0o640).file_mode == 0o640
    assert TraceConfig.from_env({"TIMETRACER_FILE_MODE": "0o644"}).file_mode == 0o644
    assert config_module.folder_mode(0o600) == 0o700 and config_module.folder_mode(0o644) == 0o755
