"""The websocket transport: ``/ws/{project_id}`` as a uvicorn protocol on the transport.

``connection`` is one client; ``handshake`` reads and answers the upgrade; ``router`` sends a
connection that opens with a join straight to ``WebSocketConnection``. uvicorn is given
``server.ws:WebSocketConnection`` and ``server.ws:JoinRouter`` (see ``server.app``).
"""

from server.ws.connection import JoinRouter, WebSocketConnection

__all__ = ["JoinRouter", "WebSocketConnection"]
