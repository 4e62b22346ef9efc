"""A socket-connect counter for replay tests: replay must attempt no connection at all."""

from __future__ import annotations

import socket
from typing import Any, List

import pytest


class Connects:
    """Every TCP connection attempted while it is installed, by address."""

    def __init__(self) -> None:
        self.addresses: List[Any] = []

    def to(self, uri: str) -> int:
        port = int(uri.rsplit(":", 1)[1])
        return sum(1 for address in self.addresses if isinstance(address, tuple) and address[1] == port)


@pytest.fixture(name="connects")
def connects_fixture(monkeypatch: pytest.MonkeyPatch) -> Connects:
    counter = Connects()
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def counted_connect(self: socket.socket, address: Any) -> Any:
        counter.addresses.append(address)
        return connect(self, address)

    def counted_connect_ex(self: socket.socket, address: Any) -> Any:
        counter.addresses.append(address)
        return connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", counted_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", counted_connect_ex)
    return counter
