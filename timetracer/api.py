"""``timetracer.record`` and ``timetracer.replay``: sessions for code outside a web request.

Both are context managers and decorators::

    with timetracer.record("nightly_job") as path:   # writes cassettes/nightly_job.json on exit
        run_job()

    with timetracer.replay("cassettes/nightly_job.json"):  # PyMongo calls answered from it
        run_job()

Around ``asyncio.run(...)``, as ``async with`` inside a coroutine, or decorating an ``async def``
they work the same (Motor and ``AsyncMongoClient`` calls, and tasks the block starts, included).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple, TypeVar, Union

from timetracer import context
from timetracer._logging import ensure_visible, log_recorded
from timetracer._s3path import S3Path, is_s3
from timetracer.cassette import read_cassette, write_cassette
from timetracer.config import Compression, Mode, TraceConfig
from timetracer.errors import CassetteError, TimeTracerError
from timetracer.report import finish_replay
from timetracer.session import Session

logger = logging.getLogger("timetracer")

F = TypeVar("F", bound=Callable[..., Any])
PathLike = Union[str, Path]

_SUFFIXES = (".json", ".json.gz", ".json.zst")


def has_cassette_suffix(name: str) -> bool:
    return name.endswith(_SUFFIXES)


def resolve_name(name: PathLike, config: TraceConfig, *, for_writing: bool) -> Path:
    """Where a cassette name points: a path is used as given, a bare name lives in the cassette dir.

    A name without a suffix gets the configured compression's suffix when writing; when reading,
    the first existing file among ``.json``, ``.json.gz`` and ``.json.zst`` is used.
    """
    text = str(name)
    path: Any = S3Path.parse(name) if is_s3(name) else Path(text)
    if not path.is_absolute() and path.parent == Path(".") and not text.startswith("."):
        path = config.cassette_dir / path
    if has_cassette_suffix(path.name):
        return path
    if for_writing:
        return path.with_name(path.name + config.compression.suffix)
    for suffix in (config.compression.suffix, *_SUFFIXES):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            return candidate
    return path.with_name(path.name + config.compression.suffix)


def _compression_for(path: Path, config: TraceConfig) -> Compression:
    for compression in (Compression.GZIP, Compression.ZSTD):
        if path.name.endswith(compression.suffix):
            return compression
    return Compression.NONE if path.name.endswith(".json") else config.compression


def save(session: Session) -> Optional[Path]:
    """Write a recording session's cassette; problems are logged, never raised."""
    path = session.cassette_path
    if path is None:
        return None
    try:
        config = session.config
        document = session.to_cassette(for_writing=True)
        written = write_cassette(path, document, _compression_for(path, config), file_mode=config.file_mode)
    except Exception as exc:
        logger.error("timetracer: could not write cassette %s: %s", path, exc)
        return None
    log_recorded(session.request, written, len(document["events"]))
    return written


class _Scope(contextlib.ContextDecorator):
    """Shared machinery: activate a session on enter, finish it on exit.

    Re-entrant: the same object may be entered again inside its own block (each entry gets its
    own session), so its state is a stack, not one slot.
    """

    def __init__(self) -> None:
        # (session, context token) per entry that has not exited yet, innermost last.
        self._entries: List[Tuple[Session, Any]] = []

    def _open(self) -> Session:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self, session: Session, exc: Optional[BaseException]) -> None:  # pragma: no cover
        raise NotImplementedError

    def __enter__(self) -> Any:
        session = self._open()
        self._entries.append((session, context.activate(session)))
        return session.cassette_path

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        session, token = self._entries.pop()
        context.deactivate(token)
        self._close(session, exc)

    # ``async with`` works the same: entering and leaving do no I/O the event loop would wait on
    # but the cassette write on exit; the session lives in the running task's context, so tasks
    # the block creates see it.
    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:  # a fresh scope per call, so decorated code can recurse
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def awaited(*args: Any, **kwargs: Any) -> Any:
                with self._copy():
                    return await func(*args, **kwargs)

            return awaited  # type: ignore[return-value]

        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with self._copy():
                return func(*args, **kwargs)

        return inner  # type: ignore[return-value]

    def _copy(self) -> _Scope:  # pragma: no cover - abstract
        raise NotImplementedError


class record(_Scope):
    """Record the PyMongo calls made inside the block; the cassette is written on exit.

    :param name: cassette name (in the cassette dir) or path; default: ``TIMETRACER_CASSETTE``,
        else the running script's name.
    :param config: settings; default from the ``TIMETRACER_*`` environment.

    The block's value (``as path``) is the :class:`~pathlib.Path` the cassette is written to. It is
    written even when the block raises; the error is stored in the cassette and re-raised.
    """

    def __init__(self, name: Optional[PathLike] = None, *, config: Optional[TraceConfig] = None) -> None:
        super().__init__()
        self.name = name
        self.config = config

    def _copy(self) -> _Scope:
        return record(self.name, config=self.config)

    def _open(self) -> Session:
        config = self.config or TraceConfig.from_env()
        if self.name is not None:
            path = resolve_name(self.name, config, for_writing=True)
        elif config.cassette is not None:
            path = config.cassette
        else:
            from timetracer.script import script_name

            path = resolve_name(script_name(), config, for_writing=True)
        ensure_visible()
        return Session(config, Mode.RECORD, cassette_path=path, request={"name": path.name})

    def _close(self, session: Session, exc: Optional[BaseException]) -> None:
        if exc is not None:
            session.record_error(exc)
        save(session)


class replay(_Scope):
    """Answer the PyMongo calls made inside the block from a cassette; no database is reached.

    :param cassette: cassette name (looked up in the cassette dir) or path.
    :param config: settings; default from the ``TIMETRACER_*`` environment.

    Raises :class:`~timetracer.CassetteNotFoundError` if the cassette does not exist. On exit a
    one-line report is logged; in strict mode, recorded calls left unused fail the block.
    """

    def __init__(self, cassette: PathLike, *, config: Optional[TraceConfig] = None) -> None:
        super().__init__()
        self.cassette = cassette
        self.config = config

    def _copy(self) -> _Scope:
        return replay(self.cassette, config=self.config)

    def _open(self) -> Session:
        config = self.config or TraceConfig.from_env()
        path = resolve_name(self.cassette, config, for_writing=False)
        document = read_cassette(path, config.max_cassette_bytes)
        ensure_visible()
        try:
            return Session(
                config, Mode.REPLAY, cassette_path=path, cassette=document, request={"name": path.name}
            )
        except TimeTracerError:
            raise
        except Exception as exc:  # a cassette whose events cannot be indexed for matching
            raise CassetteError(f"cassette {path}: cannot replay it ({exc})") from exc

    def _close(self, session: Session, exc: Optional[BaseException]) -> None:
        finish_replay(session, raise_on_strict=exc is None)
