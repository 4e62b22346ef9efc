"""``s3://bucket/prefix`` cassette locations: a small path-like value, with no AWS import.

:class:`S3Path` stands where a :class:`~pathlib.Path` stands for local cassettes (the cassette
folder, one cassette file) and supports the path operations the cassette code uses (``/``,
``name``, ``parent``, ``with_name``). Reading, listing and existence checks import the S3 client
(:mod:`timetracer.cassette._s3`) only when called, so local paths never pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from timetracer.errors import ConfigError

SCHEME = "s3://"


def is_s3(value: Any) -> bool:
    """Whether ``value`` (a str, Path or S3Path) names an S3 location."""
    return isinstance(value, S3Path) or (isinstance(value, str) and value.startswith(SCHEME))


class S3Path:
    """An object key (or key prefix, for a folder) in an S3 bucket: ``s3://bucket/prefix/name``.

    :param bucket: the bucket name.
    :param key: the key, without leading or trailing ``/`` (``""``: the bucket's root).

    Example::

        folder = S3Path.parse("s3://recordings/shop")
        folder / "GET__items.json"   # S3Path('s3://recordings/shop/GET__items.json')
    """

    __slots__ = ("bucket", "key")

    def __init__(self, bucket: str, key: str = "") -> None:
        self.bucket = bucket
        self.key = "/".join(part for part in key.split("/") if part)

    @classmethod
    def parse(cls, text: Union[str, S3Path], label: str = "") -> S3Path:
        """``s3://bucket[/prefix]`` → S3Path; raises :class:`ConfigError` naming ``label`` if malformed."""
        if isinstance(text, S3Path):
            return text
        value = str(text).strip()
        rest = value[len(SCHEME) :] if value.startswith(SCHEME) else ""
        bucket, _, key = rest.partition("/")
        if not bucket or any(c in bucket for c in " \\?#"):
            where = f"{label}=" if label else ""
            raise ConfigError(
                f"{where}{value!r} is not a valid S3 location; use s3://bucket or s3://bucket/prefix"
            )
        return cls(bucket, key)

    # -- path-like operations ------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def parent(self) -> S3Path:
        return S3Path(self.bucket, self.key.rsplit("/", 1)[0] if "/" in self.key else "")

    @property
    def prefix(self) -> str:
        """The key prefix of the objects inside this location taken as a folder (``"shop/"``)."""
        return f"{self.key}/" if self.key else ""

    def __truediv__(self, name: Union[str, Path]) -> S3Path:
        text = str(name)
        return S3Path(self.bucket, f"{self.key}/{text}" if self.key else text)

    def with_name(self, name: str) -> S3Path:
        return self.parent / name

    def is_absolute(self) -> bool:
        return True

    def absolute(self) -> S3Path:
        return self

    # -- reading (imports the S3 client) -------------------------------------------------------

    def exists(self) -> bool:
        from timetracer.cassette import _s3

        return _s3.exists(self)

    def is_file(self) -> bool:
        return self.exists()

    def read_bytes(self) -> bytes:
        from timetracer.cassette import _s3

        return _s3.read_bytes(self)

    # -- value semantics -----------------------------------------------------------------------

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}" if self.key else f"{SCHEME}{self.bucket}"

    def __repr__(self) -> str:
        return f"S3Path({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S3Path) and (self.bucket, self.key) == (other.bucket, other.key)

    def __hash__(self) -> int:
        return hash((S3Path, self.bucket, self.key))
