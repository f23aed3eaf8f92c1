"""Reading the websocket upgrade request with httptools, and answering it.

websockets' own request reader is pure Python and was a quarter of the server's time in a
500-client join storm, so the request is read with httptools (C) and given to websockets as its
``Request`` for the handshake checks. The 101 that accepts it is written here: websockets'
``accept`` dates it (``email.utils.formatdate``, optional on a 1xx) and builds it through its
``Headers`` class, two thirds of the handshake's cost. Every refusal is still websockets' own.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

import httptools
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from server.ws.frames import PATH_PREFIX, origin_allowed


class UpgradeRequestReader:
    """Collects one HTTP request head, fed in chunks; ``request`` is set once it is complete."""

    __slots__ = ("_headers", "_parser", "_url", "request", "rest")

    def __init__(self) -> None:
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.request: Request | None = None
        # Bytes after the head (a client that did not wait for the 101), if any.
        self.rest = b""

    def feed(self, data: bytes) -> None:
        """Raises ``ValueError`` for bytes that are not an HTTP request head (and for any
        after the head was read)."""
        parser = self._parser
        if parser is None:
            raise ValueError("the request head was already read")
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # The head is complete; what follows it is websocket frames.
            self.rest = data[upgrade.args[0] :] if upgrade.args else b""
        except httptools.HttpParserError as exc:
            self._parser = None
            raise ValueError(f"malformed upgrade request: {exc}") from exc
        if self.request is not None:
            # The parser holds this reader (its callbacks): a cycle the garbage collector would
            # have to find, keeping the request with it, for every connection of a join storm.
            self._parser = None

    def close(self) -> None:
        """The connection went before its head was read: let the parser go (see ``feed``)."""
        self._parser = None

    # httptools callbacks

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None  # it is feeding this reader
        self.request = Request(
            self._url.decode("latin-1"),
            Headers(self._headers),
            method=parser.get_method().decode("latin-1"),
            protocol=f"HTTP/{parser.get_http_version()}",
        )


def accept(ws: ServerProtocol, request: Request) -> bytes | Response:
    """The 101 that accepts a valid upgrade request, or websockets' refusal (400, 426...)."""
    try:
        # Checks the request and negotiates extensions (on ``ws``) and a subprotocol.
        key, extensions, subprotocol = ws.process_request(request)
    except Exception:  # noqa: BLE001 - accept() checks again and answers each with its status
        return ws.accept(request)
    head = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + key.encode(),
    ]
    if extensions is not None:
        head.append(b"Sec-WebSocket-Extensions: " + extensions.encode())
    if subprotocol is not None:
        head.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode())
    head.append(b"\r\n")
    return b"\r\n".join(head)


@dataclass(frozen=True, slots=True)
class Join:
    """A valid upgrade of ``/ws/{project}``: the 101 that accepts it, and what it asks for."""

    response: bytes
    project: str
    params: dict[str, list[str]]


def read_join(ws: ServerProtocol, request: Request, origins: frozenset[str]) -> Join | Response:
    """The join an upgrade request asks for, or its HTTP refusal: 404 on another path, 403 for
    an ``Origin`` that is not allowed (see ``origin_allowed``), websockets' 400/426 for an
    invalid upgrade."""
    path, _, query = request.path.partition("?")
    project = unquote(path[len(PATH_PREFIX) :]) if path.startswith(PATH_PREFIX) else ""
    if not project or "/" in project:
        return ws.reject(404, "no websocket endpoint here; use /ws/{project_id}")
    headers = request.headers
    if origins and not origin_allowed(headers.get_all("Origin"), _one(headers, "Host"), origins):
        return ws.reject(403, "this origin may not open a websocket here")
    response = accept(ws, request)
    if isinstance(response, Response):
        return response
    return Join(response, project, parse_qs(query))


def _one(headers: Headers, name: str) -> str:
    """The value of a header sent once; empty if it is missing or repeated."""
    values = headers.get_all(name)
    return values[0] if len(values) == 1 else ""
