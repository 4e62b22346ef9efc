"""Cassettes: the JSON format, file names, and reading and writing them (plain, gzip or zstd)."""

from __future__ import annotations

from timetracer.cassette.format import SCHEMA_VERSION, load_schema, validate
from timetracer.cassette.naming import cassette_name, cassette_path
from timetracer.cassette.storage import cassette_files, is_temp_file, read_cassette, write_cassette

__all__ = [
    "SCHEMA_VERSION",
    "cassette_files",
    "cassette_name",
    "cassette_path",
    "is_temp_file",
    "load_schema",
    "read_cassette",
    "validate",
    "write_cassette",
]
