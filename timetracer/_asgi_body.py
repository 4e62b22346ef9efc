"""An ASGI request body read ahead of the application, which then receives the very same messages.

The ASGI twin of :mod:`timetracer._body`: :func:`read_ahead` awaits ``http.request`` messages
until the body is complete or is longer than the cap (``TIMETRACER_MAX_BODY_BYTES``), and returns
the captured :class:`~timetracer._body.Body` (the first ``limit`` bytes, marked truncated when the
body is longer) with a :class:`ReplayedReceive` that hands the application exactly the messages
read, in order, and then the server's own ``receive`` (more body, ``http.disconnect``…).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Awaitable, Callable, Deque, List, Mapping, MutableMapping, Optional, Tuple

from timetracer._body import Body

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]


class ReplayedReceive:
    """A ``receive`` that returns ``messages`` first, then calls the server's ``receive``.

    An exception raised while reading ahead (a client gone mid-body) is raised again when the
    application asks for the message that failed, as it would have been without timetracer.

    Example::

        receive = ReplayedReceive([{"type": "http.request", "body": b"{}"}], receive)
    """

    def __init__(
        self, messages: List[Message], receive: Receive, error: Optional[BaseException] = None
    ) -> None:
        self._messages: Deque[Message] = deque(messages)
        self._receive = receive
        self._error = error

    async def __call__(self) -> Message:
        if self._messages:
            return self._messages.popleft()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return await self._receive()


async def read_ahead(
    receive: Receive, meta: Mapping[str, Any], limit: int
) -> Tuple[Optional[Body], ReplayedReceive]:
    """Read up to ``limit`` bytes of the request body from ``receive`` (``meta``: the request's
    WSGI-style headers, for the content type and length).

    Reads every ``http.request`` message when the body fits in ``limit``; when it is longer, stops
    after the message that goes past the cap and keeps the first ``limit`` bytes (``truncated``).
    ``body`` is ``None`` when the request has no body (or a client gone before sending one).
    """
    content_type = str(meta.get("CONTENT_TYPE") or "")
    messages: List[Message] = []
    chunks: List[bytes] = []
    total = 0
    error: Optional[BaseException] = None
    if limit <= 0:
        declared = str(meta.get("CONTENT_LENGTH") or "").strip()
        has_body = declared.isdigit() and int(declared) > 0
        return (Body(b"", True, content_type) if has_body else None), ReplayedReceive([], receive)
    try:
        while total <= limit:
            message = await receive()
            messages.append(message)
            if message.get("type") != "http.request":
                break  # http.disconnect: the app meets it next, as it would have
            data = bytes(message.get("body") or b"")
            chunks.append(data)
            total += len(data)
            if not message.get("more_body", False):
                break
    except Exception as exc:  # the app meets it when it asks for the next message
        error = exc
    replayed = ReplayedReceive(messages, receive, error)
    if total == 0:
        return None, replayed
    data = b"".join(chunks)
    return Body(data[:limit], total > limit, content_type), replayed
