"""Reading the websocket upgrade request with httptools, and answering it.

websockets' own request reader is pure Python and was a quarter of the server's time in a
500-client join storm, so the request head is read with httptools (C). Building websockets'
``Request`` and ``Headers`` from it and running its checks (``process_request``) was still a
fifth of a join's CPU, so the usual upgrade, the one every websocket client sends, is checked
here straight from what httptools read (``_plain_accept``): GET over HTTP/1.1, each header at
most once, ``Connection: Upgrade``, ``Upgrade: websocket``, a key of 16 bytes in base64,
version 13, and no subprotocol or extension (compression, when it is on) to negotiate. What it
takes, websockets takes with the same answer; anything else (a repeated header, a list in
``Connection``, an offer to negotiate, every invalid request) goes through websockets as
before, which accepts it or answers it with its own refusal (400, 405, 426, 505). The 101
that accepts is written here either way: websockets' ``accept`` dates it
(``email.utils.formatdate``, optional on a 1xx) and builds it through its ``Headers`` class.
"""

from __future__ import annotations

import binascii
import hashlib
from urllib.parse import parse_qs, unquote

import httptools
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.typing import Origin

from server.ws.frames import PATH_PREFIX, origin_allowed


class UpgradeHead:
    """An HTTP request head as httptools read it: the raw url, method, version and headers."""

    __slots__ = ("headers", "method", "url", "version")

    def __init__(
        self, url: bytes, method: bytes, version: str, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.url = url
        self.method = method
        self.version = version
        self.headers = headers

    def fields(self) -> dict[bytes, bytes] | None:
        """The headers by lower-case name, or None if a name occurs more than once."""
        fields = {name.lower(): value for name, value in self.headers}
        return fields if len(fields) == len(self.headers) else None

    def request(self) -> Request:
        """The head as websockets' ``Request``, for its checks and refusals."""
        return Request(
            self.url.decode("latin-1"),
            Headers([(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.headers]),
            method=self.method.decode("latin-1"),
            protocol=f"HTTP/{self.version}",
        )


# The longest request head read: room for an 8 KiB token in the query and another in a header
# (``FLOWAI_JWT_BYTES_MAX``), with the rest of a browser's headers. httptools itself reads a
# head of any length, which let a client grow a connection's memory without end.
HEAD_BYTES_MAX = 32 * 1024


class HeadTooLarge(ValueError):
    """The request head goes on past ``HEAD_BYTES_MAX`` (answered with 431)."""


class UpgradeRequestReader:
    """Collects one HTTP request head, fed in chunks; ``head`` is set once it is complete."""

    __slots__ = ("_fed", "_headers", "_parser", "_url", "head", "rest")

    def __init__(self) -> None:
        self._fed = 0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.head: UpgradeHead | None = None
        # Bytes after the head (a client that did not wait for the 101), if any.
        self.rest = b""

    def feed(self, data: bytes) -> None:
        """Raises ``ValueError`` for bytes that are not an HTTP request head (and for any
        after the head was read), ``HeadTooLarge`` for a head that does not end in time."""
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
        self._fed += len(data) - len(self.rest)
        if self.head is not None:
            # The parser holds this reader (its callbacks): a cycle the garbage collector would
            # have to find, keeping the request with it, for every connection of a join storm.
            self._parser = None
        if self._fed > HEAD_BYTES_MAX:
            self._parser = None
            raise HeadTooLarge(f"the request head is over {HEAD_BYTES_MAX} bytes")

    def close(self) -> None:
        """The connection went before its head was read: let the parser go (see ``feed``)."""
        self._parser = None

    # httptools callbacks

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None  # it is feeding this reader
        self.head = UpgradeHead(
            self._url, parser.get_method(), parser.get_http_version(), self._headers
        )


# RFC 6455's GUID, hashed after the client's key into Sec-WebSocket-Accept.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# A fresh SHA-1 state to copy: ``hashlib.sha1()`` looks the digest up in OpenSSL by name on
# every call, most of the cost of an accept key (about half of websockets' ``accept_key``).
_SHA1 = hashlib.sha1(usedforsecurity=False)  # RFC 6455 names SHA-1; nothing secret rides on it


def _accept_key(key: bytes) -> bytes:
    """websockets' ``accept_key(key)``, from and to bytes."""
    sha1 = _SHA1.copy()
    sha1.update(key + _ACCEPT_GUID)
    return binascii.b2a_base64(sha1.digest(), newline=False)


def _key_accepted(key: bytes) -> bool:
    """Whether websockets takes ``key`` as a Sec-WebSocket-Key: 16 bytes in base64.

    websockets decodes with ``base64.b64decode(key, validate=True)`` (a regular expression,
    then the decoding); strict decoding checks in one pass and takes less, never more: what it
    refuses goes to websockets, which decides."""
    try:
        return len(binascii.a2b_base64(key, strict_mode=True)) == 16
    except binascii.Error:
        return False


def _response(accept: bytes, extensions: str | None, subprotocol: str | None) -> bytes:
    """The 101 with ``accept`` as its Sec-WebSocket-Accept."""
    head = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + accept,
    ]
    if extensions is not None:
        head.append(b"Sec-WebSocket-Extensions: " + extensions.encode())
    if subprotocol is not None:
        head.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode())
    head.append(b"\r\n")
    return b"\r\n".join(head)


def accept(ws: ServerProtocol, request: Request) -> bytes | Response:
    """The 101 that accepts a valid upgrade request, or websockets' refusal (400, 426...)."""
    try:
        # Checks the request and negotiates extensions (on ``ws``) and a subprotocol.
        key, extensions, subprotocol = ws.process_request(request)
    except Exception:  # noqa: BLE001 - accept() checks again and answers each with its status
        return ws.accept(request)
    return _response(key.encode(), extensions, subprotocol)


def _plain_accept(
    ws: ServerProtocol, head: UpgradeHead, fields: dict[bytes, bytes]
) -> bytes | None:
    """The 101 for the usual upgrade request (see the module), as websockets' ``accept``
    would answer it; None for any other request, valid or not, which websockets decides."""
    if (
        head.method != b"GET"
        or head.version != "1.1"
        # websockets takes a list of options here (``keep-alive, Upgrade``); so does the
        # slower way.
        or fields.get(b"connection", b"").lower() != b"upgrade"
        or fields.get(b"upgrade", b"").lower() != b"websocket"
        or fields.get(b"sec-websocket-version") != b"13"
        # A subprotocol header is parsed (and may be refused) even when none is offered.
        or b"sec-websocket-protocol" in fields
        # Extensions are negotiated only when the server offers some.
        or (ws.available_extensions and b"sec-websocket-extensions" in fields)
        or ws.available_subprotocols
        or ws.origins is not None
    ):
        return None
    key = fields.get(b"sec-websocket-key")
    if key is None or not _key_accepted(key):
        return None
    origin = fields.get(b"origin")
    # What websockets' process_request records on the connection (extensions and
    # subprotocol: none, as the protocol object starts).
    ws.origin = Origin(origin.decode("latin-1")) if origin is not None else None
    return _response(_accept_key(key), None, None)


class Join:
    """A valid upgrade of ``/ws/{project}``: the 101 that accepts it, and what it asks for."""

    __slots__ = ("authorizations", "params", "project", "response")

    def __init__(
        self,
        response: bytes,
        project: str,
        params: dict[str, list[str]],
        authorizations: list[str],
    ) -> None:
        self.response = response
        self.project = project
        self.params = params
        # The ``Authorization`` headers, as sent.
        self.authorizations = authorizations


def read_join(ws: ServerProtocol, head: UpgradeHead, origins: frozenset[str]) -> Join | Response:
    """The join an upgrade request asks for, or its HTTP refusal: 404 on another path, 403 for
    an ``Origin`` that is not allowed (see ``origin_allowed``), websockets' 400/405/426/505
    for an invalid upgrade."""
    fields = head.fields()
    if fields is None:  # a header sent more than once: websockets' reading of it decides
        return _read_join(ws, head.request(), origins)
    path, _, query = head.url.decode("latin-1").partition("?")
    project = unquote(path[len(PATH_PREFIX) :]) if path.startswith(PATH_PREFIX) else ""
    if not project or "/" in project:
        return ws.reject(404, "no websocket endpoint here; use /ws/{project_id}")
    origin = fields.get(b"origin")
    if origins and not origin_allowed(
        [origin.decode("latin-1")] if origin is not None else [],
        fields.get(b"host", b"").decode("latin-1"),
        origins,
    ):
        return ws.reject(403, "this origin may not open a websocket here")
    response = _plain_accept(ws, head, fields)
    if response is None:
        answer = accept(ws, head.request())
        if isinstance(answer, Response):
            return answer
        response = answer
    authorization = fields.get(b"authorization")
    authorizations = [authorization.decode("latin-1")] if authorization is not None else []
    return Join(response, project, query_params(query), authorizations)


def _read_join(ws: ServerProtocol, request: Request, origins: frozenset[str]) -> Join | Response:
    """``read_join`` through websockets' ``Request``: for heads with repeated headers."""
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
    return Join(response, project, parse_qs(query), headers.get_all("Authorization"))


def query_params(query: str) -> dict[str, list[str]]:
    """``urllib.parse.parse_qs(query)``, a third of its cost for a query with nothing escaped
    (a token is base64url and a project id hex): without ``%`` or ``+`` its unquoting leaves
    every name and value as it is. Like it, this drops fields without ``=`` or a value."""
    if "%" in query or "+" in query:
        return parse_qs(query)
    params: dict[str, list[str]] = {}
    for field in query.split("&"):
        name, equals, value = field.partition("=")
        if equals and value:
            params.setdefault(name, []).append(value)
    return params


def _one(headers: Headers, name: str) -> str:
    """The value of a header sent once; empty if it is missing or repeated."""
    values = headers.get_all(name)
    return values[0] if len(values) == 1 else ""
