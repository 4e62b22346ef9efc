"""Fixtures of the end-to-end tests of ``examples/`` (helpers are in ``_support.py``)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from ._support import DEFAULT_MONGO_PORT, listening


@pytest.fixture
def mongo_on_default_port(mongo_server_factory: Callable[..., Any]) -> Iterator[Any]:
    """A mongoeco server on localhost:27017, for the examples that hardcode that address."""
    if listening(DEFAULT_MONGO_PORT):
        pytest.fail(
            f"port {DEFAULT_MONGO_PORT} is already in use: this test starts its own MongoDB-compatible "
            f"server there because the example hardcodes mongodb://localhost:{DEFAULT_MONGO_PORT}. "
            "Stop whatever listens on it (e.g. a local mongod) and run the test again.",
            pytrace=False,
        )
    yield mongo_server_factory(port=DEFAULT_MONGO_PORT)
