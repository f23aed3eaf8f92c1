"""Driving a websocket connection protocol object directly, with no socket in between."""

from __future__ import annotations

import asyncio

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri


class RecordingTransport(asyncio.Transport):
    """What a connection writes, write by write, with nothing sent anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def upgrade_request(url: str) -> bytes:
    """The bytes of a websocket client's upgrade request for ``url``."""
    client = ClientProtocol(parse_uri(url))
    client.send_request(client.connect())
    return b"".join(client.data_to_send())


def client_frame(message: bytes) -> bytes:
    """``message`` as a (masked) binary frame from a client."""
    return Frame(Opcode.BINARY, message).serialize(mask=True)
