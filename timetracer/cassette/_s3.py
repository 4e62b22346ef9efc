"""Cassettes in S3 (``s3://bucket/prefix``): read, list, write, and record without holding requests.

Imported only when a cassette location is an ``s3://`` URL (``pip install timetracer[s3]``); it
uses boto3, so the standard AWS configuration applies: ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
``AWS_PROFILE`` and the shared config files.

- Each cassette is one object, written by a single PUT: readers never see half of one.
- Recording a web request claims its name in memory (no network on the request's path); the
  encoded cassette is then uploaded by background threads with a conditional PUT
  (``If-None-Match: *``), so two processes recording into one prefix never overwrite each
  other: a name already taken moves the recording to the next free number. Pending uploads are
  bounded (``TIMETRACER_S3_QUEUE_BYTES``) and waited for at exit (``TIMETRACER_S3_FLUSH_SECONDS``).
- Replay reads with a conditional GET (``If-None-Match: <ETag>``) and reuses the parsed cassette
  while the object is unchanged.
- Every network call has connect/read timeouts (``TIMETRACER_S3_TIMEOUT``) and bounded retries.

Storage-level API for tools (``timetracer ls`` and friends): :func:`list_cassettes`,
:func:`stat`, :func:`read_bytes`, :func:`read_cassette`, :func:`exists`.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from timetracer._s3path import S3Path
from timetracer.cassette.format import validate
from timetracer.cassette.naming import (
    SUFFIXES,
    _Route,
    cassette_name,
    numbered,
    parse_name,
    request_stem,
)
from timetracer.cassette.storage import decode, encode
from timetracer.config import Compression
from timetracer.errors import CassetteError, CassetteNotFoundError, ConfigError

logger = logging.getLogger("timetracer")

ENV_S3_TIMEOUT = "TIMETRACER_S3_TIMEOUT"
ENV_S3_QUEUE_BYTES = "TIMETRACER_S3_QUEUE_BYTES"
ENV_S3_FLUSH_SECONDS = "TIMETRACER_S3_FLUSH_SECONDS"
DEFAULT_TIMEOUT = 5.0
DEFAULT_QUEUE_BYTES = 64 * 1024 * 1024
DEFAULT_FLUSH_SECONDS = 30.0
# botocore "standard" retry mode: attempts in all, the first included.
MAX_ATTEMPTS = 3
# Uploads run at once (one PUT each; S3 latency, not CPU, bounds them).
UPLOAD_THREADS = 4
# Names tried for one recording before giving up (each taken one moves it to the next number).
_MAX_NAME_TRIES = 1000


def require_boto3(what: str) -> None:
    """Raise :class:`ConfigError` naming ``what`` (a setting) if boto3 is not installed."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"{what} needs boto3 for s3:// cassette locations; install it with: pip install timetracer[s3]"
        ) from None


def check_settings() -> None:
    """Raise :class:`ConfigError` for a bad ``TIMETRACER_S3_*`` value (checked with the settings)."""
    _number(ENV_S3_TIMEOUT, DEFAULT_TIMEOUT, 0.1)
    _number(ENV_S3_QUEUE_BYTES, DEFAULT_QUEUE_BYTES, 0)
    _number(ENV_S3_FLUSH_SECONDS, DEFAULT_FLUSH_SECONDS, 0)


def _number(variable: str, default: float, minimum: float) -> float:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= minimum:  # also rejects NaN
        raise ConfigError(f"{variable}={text!r} is not valid; use a number >= {minimum:g}")
    return value


# -- the client --------------------------------------------------------------------------------

_AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    ENV_S3_TIMEOUT,
)
_clients: Dict[Tuple[Any, ...], Any] = {}
_client_lock = threading.Lock()


def client() -> Any:
    """The boto3 S3 client for the current AWS settings (one per process and settings)."""
    key = (os.getpid(), *(os.environ.get(name) for name in _AWS_VARIABLES))
    found = _clients.get(key)
    if found is not None:
        return found
    require_boto3("an s3:// cassette location")
    import boto3
    from botocore.config import Config

    timeout = _number(ENV_S3_TIMEOUT, DEFAULT_TIMEOUT, 0.1)
    with _client_lock:
        found = _clients.get(key)
        if found is None:
            settings = Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            )
            # A Session of its own: boto3's default session is not thread-safe to create clients from.
            found = boto3.session.Session().client("s3", config=settings)
            _clients.clear()
            _clients[key] = found
    return found


def _status(exc: BaseException) -> Tuple[Optional[int], str]:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None, ""
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status, str(response.get("Error", {}).get("Code", ""))


def reason(exc: BaseException) -> str:
    """What went wrong in an S3 call, in one line (error code and message, or the network error)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        code = error.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = error.get("Message") or ""
        return f"{code}: {message}" if message else str(code)
    if type(exc).__name__ == "NoCredentialsError":
        return "no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
    return f"{type(exc).__name__}: {exc}"


def _missing(exc: BaseException) -> bool:
    status, code = _status(exc)
    return status == 404 or code in ("NoSuchKey", "NoSuchBucket", "404")


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    """One object: its URL, size in bytes, ETag and last-modified time."""

    url: S3Path
    size: int
    etag: str
    modified: Optional[datetime]

    @property
    def name(self) -> str:
        return self.url.name


def _get(url: S3Path, etag: Optional[str] = None) -> Optional[Tuple[bytes, str]]:
    """The object's bytes and ETag, or ``None`` if its ETag is still ``etag``."""
    arguments: Dict[str, Any] = {"Bucket": url.bucket, "Key": url.key}
    if etag:
        arguments["IfNoneMatch"] = etag
    try:
        reply = client().get_object(**arguments)
        with reply["Body"] as body:
            return body.read(), str(reply.get("ETag", ""))
    except ConfigError:
        raise
    except Exception as exc:
        if _status(exc)[0] == 304:
            return None
        if _missing(exc):
            raise CassetteNotFoundError(f"cassette {url} does not exist ({reason(exc)})") from None
        raise CassetteError(f"cassette {url}: cannot read ({reason(exc)})") from exc


def read_bytes(url: S3Path) -> bytes:
    """The object's bytes. Raises :class:`CassetteNotFoundError` or :class:`CassetteError`."""
    got = _get(url)
    assert got is not None
    return got[0]


def stat(url: S3Path) -> ObjectInfo:
    """Size, ETag and last-modified time of an object (one HEAD request)."""
    try:
        reply = client().head_object(Bucket=url.bucket, Key=url.key)
    except ConfigError:
        raise
    except Exception as exc:
        if _missing(exc):
            raise CassetteNotFoundError(f"cassette {url} does not exist") from None
        raise CassetteError(f"cassette {url}: cannot read ({reason(exc)})") from exc
    return ObjectInfo(
        url, int(reply.get("ContentLength", 0)), str(reply.get("ETag", "")), reply.get("LastModified")
    )


def exists(url: S3Path) -> bool:
    """Whether the object exists; other failures (access denied, endpoint down) raise."""
    try:
        stat(url)
    except CassetteNotFoundError:
        return False
    return True


def list_objects(folder: S3Path, starting: str = "", recursive: bool = False) -> List[ObjectInfo]:
    """Every object directly in ``folder`` (with ``recursive``, under it at any depth) whose name
    begins with ``starting``, sorted by key."""
    found: List[ObjectInfo] = []
    arguments = {"Bucket": folder.bucket, "Prefix": folder.prefix + starting}
    if not recursive:
        arguments["Delimiter"] = "/"
    try:
        pages = client().get_paginator("list_objects_v2").paginate(**arguments)
        for page in pages:
            for item in page.get("Contents", ()):
                url = S3Path(folder.bucket, item["Key"])
                found.append(
                    ObjectInfo(
                        url, int(item.get("Size", 0)), str(item.get("ETag", "")), item.get("LastModified")
                    )
                )
    except ConfigError:
        raise
    except Exception as exc:
        if _status(exc)[1] == "NoSuchBucket":
            raise CassetteNotFoundError(f"cassette folder {folder} does not exist ({reason(exc)})") from None
        raise CassetteError(f"cannot list {folder} ({reason(exc)})") from exc
    return sorted(found, key=lambda info: info.url.key)


def list_cassettes(folder: S3Path, recursive: bool = False) -> List[ObjectInfo]:
    """The cassettes (``.json``, ``.json.gz``, ``.json.zst``, not hidden) directly in ``folder``,
    or with ``recursive`` under it at any depth (skipping hidden "folders"), sorted by key.

    Raises :class:`CassetteNotFoundError` for a missing bucket, :class:`CassetteError` otherwise.
    """
    return [
        info
        for info in list_objects(folder, recursive=recursive)
        if info.name.endswith(SUFFIXES)
        and not any(part.startswith(".") for part in info.url.key[len(folder.prefix) :].split("/"))
    ]


def route_recordings(folder: S3Path, route: str) -> Dict[Tuple[Optional[str], int], List[str]]:
    """:func:`timetracer.cassette.naming.route_recordings` for an S3 folder."""
    found: Dict[Tuple[Optional[str], int], List[str]] = {}
    try:
        objects = list_objects(folder, route)
    except CassetteNotFoundError:
        return found
    for info in objects:
        parsed = parse_name(info.name)
        if parsed is not None and parsed[0] == route:
            found.setdefault(parsed[1:], []).append(info.name)
    return found


# Parsed cassettes by URL, with the ETag they were parsed from.
_cache: Dict[str, Tuple[str, int, Dict[str, Any]]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 256


def read_cassette(url: S3Path, max_bytes: Optional[int] = None) -> Dict[str, Any]:
    """Load and check a cassette object; reused while its ETag is unchanged (conditional GET).

    The returned document is shared between callers: treat it as read-only. ``max_bytes`` caps
    the decompressed size as for files (default ``TIMETRACER_MAX_CASSETTE_BYTES``).
    """
    from timetracer.cassette.storage import _limit_from_env

    limit = _limit_from_env() if max_bytes is None else max_bytes
    key = str(url)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[1] > limit:
        hit = None  # parsed under a higher cap: check it against this one
    got = _get(url, hit[0] if hit else None)
    if got is None and hit is not None:
        return hit[2]
    assert got is not None
    data, etag = got
    document = validate(decode(data, key, max_bytes=limit), key)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = (etag, limit, document)
    return document


# -- writing -----------------------------------------------------------------------------------


def _put(url: S3Path, data: bytes, only_new: bool) -> bool:
    """One PUT of the whole object; with ``only_new``, ``False`` if the key already exists."""
    arguments: Dict[str, Any] = {"Bucket": url.bucket, "Key": url.key, "Body": data}
    if url.name.endswith((".json.gz", ".json.zst")):
        arguments["ContentType"] = "application/octet-stream"
    else:
        arguments["ContentType"] = "application/json"
    if only_new:
        arguments["IfNoneMatch"] = "*"
    try:
        client().put_object(**arguments)
    except ConfigError:
        raise
    except Exception as exc:
        status, code = _status(exc)
        # 412: the key exists. 409 ConditionalRequestConflict: another conditional PUT of the
        # same key is in progress; one of the two wins, so this name is not ours either.
        if only_new and (status == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict")):
            return False
        raise CassetteError(f"could not upload cassette {url}: {reason(exc)}") from exc
    return True


def write_cassette(url: S3Path, document: Dict[str, Any], compression: Compression) -> S3Path:
    """Upload a cassette now (one PUT, replacing any object of that name); for scripts and tests."""
    _put(url, encode(document, compression), only_new=False)
    return url


class _Uploader:
    """A few background threads running uploads in the order given; pending bytes bounded;
    flushed at exit."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.limit = int(_number(ENV_S3_QUEUE_BYTES, DEFAULT_QUEUE_BYTES, 0))
        self._jobs: Deque[Tuple[str, int, Callable[[], None]]] = collections.deque()
        self._pending_bytes = 0
        self._active = 0
        self._exiting = False
        self._cond = threading.Condition()
        for number in range(UPLOAD_THREADS):
            threading.Thread(target=self._run, name=f"timetracer-s3-upload-{number + 1}", daemon=True).start()
        atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        self._exiting = True
        self.flush()

    def submit(self, url: str, size: int, job: Callable[[], None]) -> bool:
        if self._exiting:
            # After the exit flush (a response finished by a later exit hook): upload right here,
            # as the upload threads may be gone any moment.
            self._run_job(url, job)
            return True
        with self._cond:
            # Pending counts the uploads in flight too; one cassette alone always goes.
            if self._pending_bytes and self._pending_bytes + size > self.limit:
                return False
            self._jobs.append((url, size, job))
            self._pending_bytes += size
            self._cond.notify_all()
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                url, size, job = self._jobs.popleft()
                self._active += 1
            try:
                self._run_job(url, job)
            finally:
                with self._cond:
                    self._pending_bytes -= size
                    self._active -= 1
                    self._cond.notify_all()

    @staticmethod
    def _run_job(url: str, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as exc:
            logger.error(
                "timetracer: %s",
                exc if isinstance(exc, CassetteError) else f"upload of {url} failed: {exc}",
            )

    def pending(self) -> int:
        with self._cond:
            return len(self._jobs) + self._active

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every submitted upload is done, up to ``timeout`` (default from the env)."""
        if self.pid != os.getpid():
            return True  # a forked child's copy of its parent's uploader: no thread runs its jobs
        if timeout is None:
            try:
                timeout = _number(ENV_S3_FLUSH_SECONDS, DEFAULT_FLUSH_SECONDS, 0)
            except ConfigError as exc:
                logger.error("timetracer: %s; waiting %gs", exc, DEFAULT_FLUSH_SECONDS)
                timeout = DEFAULT_FLUSH_SECONDS
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    names = [url for url, _, _ in self._jobs]
                    logger.error(
                        "timetracer: %d cassette upload(s) not finished after %gs (%s): %s",
                        len(names) + self._active,
                        timeout,
                        ENV_S3_FLUSH_SECONDS,
                        ", ".join(names[:6]) or "one in progress",
                    )
                    return False
                self._cond.wait(left)
        return True


_uploader: Optional[_Uploader] = None
_uploader_lock = threading.Lock()


def uploader() -> _Uploader:
    """The process's uploader (a new one after a fork: threads do not survive it)."""
    global _uploader
    current = _uploader
    if current is not None and current.pid == os.getpid():
        return current
    with _uploader_lock:
        if _uploader is None or _uploader.pid != os.getpid():
            _uploader = _Uploader()
        return _uploader


def flush(timeout: Optional[float] = None) -> bool:
    """Wait for the pending uploads of this process (see :class:`_Uploader`); ``True`` if all done."""
    return uploader().flush(timeout) if _uploader is not None else True


def upload_later(target: S3Path, document: Dict[str, Any], compression: Compression) -> bool:
    """Encode a recorded cassette now and upload it in the background; never raises for S3 reasons.

    A name claimed by :class:`S3RecordingFolder` is written only if free (the recording moves to
    the next free number otherwise); any other target is replaced. Returns ``False`` (logged)
    when the pending uploads are at their bound and this cassette is dropped.
    """
    data = encode(document, compression)
    claim = _claims.pop(str(target), None)
    if claim is not None:
        job: Callable[[], None] = lambda: claim.upload(data)  # noqa: E731
    else:
        job = lambda: _put(target, data, only_new=False)  # noqa: E731
    if uploader().submit(str(target), len(data), job):
        return True
    if claim is not None:
        claim.drop()
    logger.error(
        "timetracer: cassette %s dropped: the uploads pending reach %s=%d bytes (is the endpoint slow or down?)",
        target,
        ENV_S3_QUEUE_BYTES,
        uploader().limit,
    )
    return False


# -- recording folders ---------------------------------------------------------------------------

# Claimed recording names not yet handed to upload_later, by URL.
_claims: Dict[str, S3Claim] = {}


class S3Claim:
    """A recording name taken in memory for one request: written with a conditional PUT.

    Same interface as :class:`timetracer.cassette.naming.Claim` (``target``, ``release()``).
    """

    __slots__ = ("fingerprint", "folder", "number", "route", "stem", "suffix", "target")

    def __init__(
        self,
        folder: S3RecordingFolder,
        route: str,
        stem: str,
        fingerprint: Optional[str],
        number: int,
        suffix: str,
    ) -> None:
        self.folder = folder
        self.route = route
        self.stem = stem
        self.fingerprint = fingerprint
        self.number = number
        self.suffix = suffix
        self.target = folder.directory / f"{numbered(stem, number)}{suffix}"

    def release(self) -> None:
        """Give the number back if nothing was handed over for upload (errors-only, a failure)."""
        if _claims.pop(str(self.target), None) is not None:
            self.drop()

    def drop(self) -> None:
        self.folder._forget(self.route, self.fingerprint, self.number)

    def upload(self, data: bytes) -> None:
        """Write under the claimed name, or the next free one if another recorder has taken it."""
        number = self.number
        for _ in range(_MAX_NAME_TRIES):
            url = self.folder.directory / f"{numbered(self.stem, number)}{self.suffix}"
            try:
                written = _put(url, data, only_new=True)
            except Exception:
                self.folder._forget(self.route, self.fingerprint, number)
                raise
            if written:
                self.folder._uploaded(self.route, self.fingerprint, number)
                if number != self.number:
                    logger.debug(
                        "timetracer: %s was taken by another recorder; recorded as %s", self.target, url
                    )
                return
            number = self.folder._taken(self.route, self.fingerprint, number)
        raise CassetteError(
            f"could not upload cassette {self.target}: no free name in {_MAX_NAME_TRIES} tries"
        )


class S3RecordingFolder:
    """:class:`timetracer.cassette.naming.RecordingFolder` for an ``s3://`` folder.

    Names are handed out from memory (requests never wait for the network): from the folder's
    listing, made in the background when the folder is opened and again when a name turns out
    taken (at most every ``REFRESH_SECONDS``), plus this process's own claims. The conditional
    PUT settles races with other processes.
    """

    REFRESH_SECONDS = 5.0

    def __init__(self, directory: S3Path) -> None:
        self.directory = directory
        self._routes: Dict[str, _Route] = {}
        self._own: Dict[Tuple[str, Optional[str], int], int] = {}  # claims in flight, counted
        self._listed_at: Optional[float] = None
        self._lock = threading.Lock()
        uploader().submit(f"listing of {directory}", 0, self._refresh)

    def _refresh(self) -> None:
        """List the folder (in the upload thread) and merge in this process's claims in flight."""
        now = time.monotonic()
        if self._listed_at is not None and now - self._listed_at < self.REFRESH_SECONDS:
            return
        self._listed_at = now
        routes: Dict[str, _Route] = {}
        try:
            objects = list_objects(self.directory)
        except CassetteError as exc:
            logger.error("timetracer: cannot list %s, where requests are recorded: %s", self.directory, exc)
            return
        for info in objects:
            parsed = parse_name(info.name)
            if parsed is not None:
                routes.setdefault(parsed[0], _Route()).add(parsed[1], parsed[2])
        with self._lock:
            for route, fingerprint, number in self._own:
                routes.setdefault(route, _Route()).add(fingerprint, number)
            self._routes = routes

    def claim(
        self, method: str, path: str, fingerprint: Optional[str], suffix: str, limit: int
    ) -> Optional[S3Claim]:
        """The next free name for this request as far as known, or ``None`` if its route is full."""
        route = cassette_name(method, path)
        stem = request_stem(method, path, fingerprint)
        with self._lock:
            taken = self._routes.setdefault(route, _Route())
            if limit and taken.count >= limit:
                return None
            number = taken.next(fingerprint)
            taken.add(fingerprint, number)
            self._own[(route, fingerprint, number)] = 1
        claim = S3Claim(self, route, stem, fingerprint, number, suffix)
        _claims[str(claim.target)] = claim
        return claim

    def _taken(self, route: str, fingerprint: Optional[str], number: int) -> int:
        """``number`` is another recorder's: note it, and take the next free number instead."""
        self._refresh()
        with self._lock:
            self._own.pop((route, fingerprint, number), None)
            taken = self._routes.setdefault(route, _Route())
            taken.add(fingerprint, number)
            following = taken.next(fingerprint)
            taken.add(fingerprint, following)
            self._own[(route, fingerprint, following)] = 1
            return following

    def _uploaded(self, route: str, fingerprint: Optional[str], number: int) -> None:
        with self._lock:
            self._own.pop((route, fingerprint, number), None)  # the listing has it from now on

    def _forget(self, route: str, fingerprint: Optional[str], number: int) -> None:
        with self._lock:
            self._own.pop((route, fingerprint, number), None)
            known = self._routes.get(route)
            if known is not None:
                known.discard(fingerprint, number)
