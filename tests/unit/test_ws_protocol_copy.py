"""The per-connection websockets protocol, copied from one built the usual way."""

from __future__ import annotations

import pytest
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from server.close_codes import CloseCode
from server.ws.connection import _ServerProtocol

# State the constructor gives each protocol object of its own.
_OWN = ("id", "reader", "events", "writes", "parser", "extensions")


@pytest.mark.parametrize("deflate", [False, True])
def test_a_copy_is_the_protocol_the_constructor_builds(deflate: bool) -> None:
    extensions = [ServerPerMessageDeflateFactory()] if deflate else None
    built = _ServerProtocol(state=State.OPEN, extensions=extensions, max_size=1000)
    first = _ServerProtocol.opened(extensions, 1000)
    second = _ServerProtocol.opened(extensions, 1000)
    assert type(first) is _ServerProtocol
    assert set(vars(first)) == set(vars(built))
    for name, value in vars(built).items():
        if name in _OWN:
            assert type(getattr(first, name)) is type(value)
            assert getattr(first, name) is not getattr(second, name)
        else:
            assert getattr(first, name) == value, name
    assert first.id != second.id
    assert first.state is State.OPEN


def test_copies_parse_apart_and_keep_their_limits() -> None:
    small, other = _ServerProtocol.opened(None, 10), _ServerProtocol.opened(None, 10)
    half = Frame(Opcode.BINARY, b"abc").serialize(mask=True)
    small.receive_data(half[:3])
    other.receive_data(Frame(Opcode.BINARY, b"xyz").serialize(mask=True))
    small.receive_data(half[3:])
    assert [bytes(f.data) for f in small.events_received()] == [b"abc"]
    assert [bytes(f.data) for f in other.events_received()] == [b"xyz"]
    small.receive_data(Frame(Opcode.BINARY, bytes(11)).serialize(mask=True))
    assert small.close_sent is not None and small.close_sent.code == CloseCode.MESSAGE_TOO_BIG
    assert other.state is State.OPEN
    assert _ServerProtocol.opened(None, 100).max_message_size == 100
